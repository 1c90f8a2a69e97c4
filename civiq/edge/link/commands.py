"""Commands from the gateway: decode, run off the network thread, answer on ``cmd_result``.

A command arrives on ``civiq/v1/<center>/<node>/cmd/<name>`` and is validated against
:data:`civiq.contract.COMMAND_MODELS`. Anything that does not validate is counted, logged and answered with
``ok=false`` and the reason (when a request id can be recovered from the payload); it never raises into the
caller. Valid commands run one at a time in a worker thread, so a slow handler (a test print takes seconds)
never stalls paho's network thread and its keepalives.

>>> r = CommandRunner(on_command=lambda name, cmd: {"shown": cmd.text}, publish_result=print)
>>> r.process("display", b'{"id": "r1", "text": "A001"}').data
{'shown': 'A001'}
>>> r.process("display", b'{"id": "r2"}').error
"DisplayCmd: field 'text': Field required"
>>> r.stats["bad_commands"]
1
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from civiq.contract import COMMAND_MODELS, CmdResult, Command, ContractError, parse_payload

log = logging.getLogger(__name__)

Outcome = CmdResult | dict[str, Any] | None
Handler = Callable[[str, Command], Outcome]

_RESULT_KEYS = {"ok", "error", "data"}


def decode_command(name: str, payload: bytes | str) -> Command:
    """The command model for ``name`` parsed from ``payload``; :class:`ContractError` says why not."""
    model = COMMAND_MODELS.get(name)
    if model is None:
        raise ContractError(f"unknown command {name!r} (known: {', '.join(sorted(COMMAND_MODELS))})")
    return parse_payload(model, payload)


def recover_id(payload: bytes | str) -> str | None:
    """The request id of a payload that failed validation, if it has a usable one (so it can be answered)."""
    try:
        raw = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if isinstance(raw, dict):
        rid = raw.get("id")
        if isinstance(rid, str) and 1 <= len(rid) <= 64:
            return rid
    return None


def to_result(request_id: str, name: str, outcome: object) -> CmdResult:
    """Turn what a handler returned into a :class:`CmdResult` for request ``request_id``.

    ``None`` means success; a :class:`CmdResult` is used as is (id and cmd forced to the request's); a dict with
    an ``ok`` key and only ``ok``/``error``/``data`` keys gives those fields; any other dict is the result's
    ``data`` of a success.
    """
    if outcome is None:
        return CmdResult(id=request_id, cmd=name, ok=True)
    if isinstance(outcome, CmdResult):
        return outcome.model_copy(update={"id": request_id, "cmd": name})
    if isinstance(outcome, Mapping):
        try:
            if "ok" in outcome and set(outcome) <= _RESULT_KEYS:
                return CmdResult(id=request_id, cmd=name, **outcome)
            return CmdResult(id=request_id, cmd=name, ok=True, data=dict(outcome))
        except ValidationError as e:
            return CmdResult(id=request_id, cmd=name, ok=False, error=f"handler returned a bad result: {e}")
    return CmdResult(id=request_id, cmd=name, ok=False,
                     error=f"handler returned {type(outcome).__name__}, expected CmdResult, dict or None")


class CommandRunner:
    """Validates commands and runs them in one worker thread, publishing each result.

    ``builtins`` maps command names the link handles itself (``rebirth``) to handlers; every other valid
    command goes to ``on_command``. ``publish_result`` is called from the worker thread.
    """

    def __init__(self, on_command: Handler | None, publish_result: Callable[[CmdResult], object],
                 builtins: Mapping[str, Handler] | None = None, max_queued: int = 1000) -> None:
        self.on_command = on_command
        self.publish_result = publish_result
        self.builtins = dict(builtins or {})
        self.stats = {"commands": 0, "bad_commands": 0, "dropped_commands": 0}
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(max_queued)
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ thread
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="civiq-link-cmd", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                pass
            self._thread.join(timeout)
            self._thread = None

    def submit(self, name: str, payload: bytes) -> None:
        """Queue a command (called from paho's network thread: never blocks, never raises)."""
        try:
            self._queue.put_nowait((name, bytes(payload)))
        except queue.Full:
            self._count("dropped_commands")
            log.warning("command queue full: dropped a %r command", name)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            name, payload = item
            try:
                result = self.process(name, payload)
                if result is not None:
                    self.publish_result(result)
            except Exception:  # the worker must outlive any bug in a handler or publisher
                log.exception("command %r failed unexpectedly", name)

    # ------------------------------------------------------------------------------------------ logic
    def process(self, name: str, payload: bytes | str) -> CmdResult | None:
        """Validate and run one command; the result to publish, or None when no id could be recovered."""
        try:
            cmd = decode_command(name, payload)
        except ContractError as e:
            self._count("bad_commands")
            rid = recover_id(payload)
            log.warning("rejected %r command%s: %s", name, f" {rid!r}" if rid else " (no usable id)", e)
            return CmdResult(id=rid, cmd=name, ok=False, error=str(e)) if rid else None
        self._count("commands")
        handler = self.builtins.get(name) or self.on_command
        if handler is None:
            return CmdResult(id=cmd.id, cmd=name, ok=False, error=f"no handler for command {name!r} on this node")
        try:
            outcome = handler(name, cmd)
        except Exception as e:
            log.exception("handler for %r command %r raised", name, cmd.id)
            return CmdResult(id=cmd.id, cmd=name, ok=False, error=f"{type(e).__name__}: {e}")
        return to_result(cmd.id, name, outcome)

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1
