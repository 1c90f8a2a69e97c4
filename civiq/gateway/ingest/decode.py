"""The fast decoder of the ingest's hot leaves (``event``, ``queue``, ``health``): msgspec structs.

The pydantic models of :mod:`civiq.contract` stay **the** contract (documented in docs/mqtt.md, used by the
edge and by every other gateway path). Validating a queue snapshot with them costs ~33 µs, a third of what a
gateway process spends per message; these msgspec structs decode and validate the same JSON in ~3 µs.

The two must agree on what they accept (tests/gateway/test_ingest_decode.py checks both on valid and broken
payloads). Where msgspec is stricter (a ``"3"`` or ``3.0`` for an int, a date without a time: pydantic's lax
mode coerces them), :func:`decode` falls back to the contract's own :func:`~civiq.contract.parse_payload`,
which then decides, with its readable reason; so the fast path can only be faster, never more lenient. The
places where msgspec alone would be *more* lenient are closed here: integers beyond 64 bits, times finer than the
microsecond and unknown fields (see ``_DIGITS``), ids ending in a newline (``\\Z`` instead of ``$``), and
the string leaves stay pydantic models (status, alive, cmd_result: a few per node per minute).

The structs carry the contract's field names, so the live state, the alert conditions and the ticket book
read them as they read the models; ``model_dump(mode="json")`` gives the same plain data.

>>> ev = decode("event", b'{"seq": 7, "ts": "2026-01-05T01:00:00Z", "type": "ticket.issued", "data": {"service": "a"}}')
>>> ev.seq, ev.type.value, ev.data
(7, 'ticket.issued', {'service': 'a'})
>>> decode("event", b'{"seq": 0, "ts": "2026-01-05T01:00:00Z", "type": "ticket.issued"}')
Traceback (most recent call last):
...
civiq.contract.ContractError: Event: field 'seq': Input should be greater than or equal to 1
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec

from civiq.contract import (
    LEAF_MODELS,
    MAX_PAYLOAD_BYTES,
    ClockQuality,
    ContractError,
    CounterStateName,
    DeviceState,
    EventType,
    parse_payload,
)

_I64 = 2**63
Int64 = Annotated[int, msgspec.Meta(ge=-_I64, le=_I64 - 1)]
NonNeg = Annotated[int, msgspec.Meta(ge=0, le=_I64 - 1)]
NonNegF = Annotated[float, msgspec.Meta(ge=0)]
Ident = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}\Z")]


class Fast(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    """Base of the fast structs: attribute access as on the pydantic models, plus ``model_dump``.
    (``gc=False``: a struct holds no reference cycle, and the collector has thousands fewer objects to
    walk in a gateway holding every node's last snapshot.)"""

    def model_dump(self, mode: str = "python", **_: Any) -> dict[str, Any]:
        """Plain data like pydantic's ``model_dump``: ``mode="json"`` gives ISO strings and enum values."""
        if mode == "json":
            return msgspec.to_builtins(self)
        return {f: getattr(self, f) for f in self.__struct_fields__}


class Event(Fast):
    seq: Annotated[int, msgspec.Meta(ge=1, le=_I64 - 1)]
    ts: datetime
    type: EventType
    clock: ClockQuality = ClockQuality.unsynced
    data: dict[str, Any] = {}


class ServiceQueue(Fast):
    waiting: NonNeg
    oldest_wait_s: NonNegF = 0.0
    eta_s: float | None = None
    served_today: NonNeg = 0
    issued_today: NonNeg = 0
    priority_waiting: NonNeg = 0
    priority_by_class: dict[str, Int64] = {}
    held: NonNeg = 0


class PriorityRule(Fast):
    service: str
    over_minutes: Annotated[float, msgspec.Meta(gt=0)]


class CounterState(Fast):
    state: CounterStateName
    ticket: str | None = None
    services: list[str] = []
    served_today: NonNeg = 0
    priority: str | None = None
    held: list[str] = []
    rules: list[PriorityRule] = []


class QueueSnapshot(Fast):
    ts: datetime
    day: str
    services: dict[str, ServiceQueue] = {}
    counters: dict[str, CounterState] = {}
    last_seq: NonNeg = 0


class HostHealth(Fast):
    cpu_temp_c: float | None = None
    load1: float | None = None
    mem_used_pct: float | None = None
    disk_used_pct: float | None = None
    disk_free_mb: float | None = None
    clock_offset_s: float | None = None
    clock: ClockQuality = ClockQuality.unsynced
    uptime_s: float | None = None


class DeviceHealth(Fast):
    id: Ident
    kind: str
    state: DeviceState
    detail: str = ""


class OutboxHealth(Fast):
    pending: NonNeg
    oldest_s: NonNegF = 0.0


class Health(Fast):
    ts: datetime
    host: HostHealth = msgspec.field(default_factory=HostHealth)
    devices: list[DeviceHealth] = []
    outbox: OutboxHealth = msgspec.field(default_factory=lambda: OutboxHealth(pending=0))


FAST_MODELS: dict[str, type[Fast]] = {"event": Event, "queue": QueueSnapshot, "health": Health}
_DECODERS = {leaf: msgspec.json.Decoder(t) for leaf, t in FAST_MODELS.items()}
# Where msgspec alone would accept what the contract refuses, the exact path decides: an integer literal of
# 19+ digits (the contract refuses any integer beyond 64 bits, even where a float is expected) and a time
# finer than the microsecond (msgspec rounds it, pydantic truncates). Unknown fields are not skipped (msgspec
# would not check their UTF-8 or their numbers): a payload with one takes the exact path too.
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN = b"0" * 19
_SUBMICRO = re.compile(rb":\d\d\.\d{7}")


def decode(leaf: str, payload: bytes) -> Any:
    """The validated payload of an edge leaf: a fast struct for event/queue/health, else the contract's
    pydantic model. Raises :class:`ContractError` (with the contract's own reason) for anything invalid."""
    dec = _DECODERS.get(leaf)
    if dec is None:
        return parse_payload(LEAF_MODELS[leaf], payload)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD_BYTES} limit")
    if payload.translate(_DIGITS).find(_NINETEEN) < 0 and _SUBMICRO.search(payload) is None:
        try:
            return dec.decode(payload)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # stricter than the contract, or really broken: the contract decides, and says why
    model = parse_payload(LEAF_MODELS[leaf], payload)
    return msgspec.convert(model.model_dump(), FAST_MODELS[leaf])
