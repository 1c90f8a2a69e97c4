"""The counter router: a counter's operations (keypad key, call pad, local API, gateway command) -> the queue
engine -> what the counter's displays, call pad LCDs and the hall speaker say.

One of the edge agent's collaborators (:mod:`civiq.edge.agent` wires them); it knows nothing of MQTT.

    router = CounterRouter(cfg, engine, hw, watch, clock=clock, issue=desk.press, announcer=announcer)
    engine.subscribe(router.on_event)         # calls -> displays, pads, voice
    router.action("c1", "next").label         # the ticket called at counter 1
    router.on_key("c1", "sign_in:4821", keypad="k1")

A refused operation from a keypad is shown on the counter's pad (``LOI``, or ``CHO 8S`` while a recall
waits for its cooldown) and never raised into the keypad's thread; from the API or the gateway it is raised
(:class:`~civiq.edge.queue.engine.QueueError`) for the caller to report.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from civiq.clock import Clock
from civiq.contract import Event, EventType
from civiq.edge.config import CenterConfig
from civiq.edge.device_watch import DeviceWatch
from civiq.edge.queue.engine import QueueEngine, QueueError, RecallCooldown
from civiq.edge.queue.store import StoreFull

log = logging.getLogger(__name__)

CALL_EVENTS = {EventType.ticket_called, EventType.ticket_recalled}
FLASH_S = 3.0  # a clerk's name after a sign-in, or "Sai mã" after a wrong code, stays this long on the counter
WRONG_CODE_TEXT = "Sai mã"  # shown as "Sai ma" by 7-bit boards and pad LCDs


class WrongCode(QueueError):
    """A sign-in code that belongs to no clerk of this center."""


def refusal_text(e: Exception) -> str:
    """What a counter's pad LCD shows when its key was refused.

    >>> refusal_text(QueueError("no ticket"))
    'LOI'
    >>> refusal_text(RecallCooldown("c1", 7.6))
    'CHO 8S'
    """
    return f"CHO {min(999, round(e.left_s))}S" if isinstance(e, RecallCooldown) else "LOI"


class CounterRouter:
    """Counter operations on ``engine`` for the counters of ``cfg``; output to ``hw``'s counter displays and
    call pads through ``watch`` (each device's worker), calls to ``announcer`` (or none). ``issue(service,
    priority, by)`` gives a ticket for a reception desk's ``issue:`` key (the ticket desk's ``press``);
    ``wake()`` tells the scheduler loop a flashed text has an end to wait for."""

    def __init__(self, cfg: CenterConfig, engine: QueueEngine, hw: Any, watch: DeviceWatch, *, clock: Clock,
                 issue: Callable[[str, str | None, str], object] = lambda s, p, by: None,
                 announcer: Any | None = None, wake: Callable[[], None] = lambda: None) -> None:
        self.cfg = cfg
        self.engine = engine
        self.hw = hw
        self.watch = watch
        self.clock = clock
        self.announcer = announcer
        self._issue = issue
        self._wake = wake
        self._clerk_of_code = {c.code: cid for cid, c in cfg.clerks.items() if c.code}
        self.flash_s = FLASH_S
        self.wrong_codes = 0  # sign-in codes typed on a keypad that match no clerk (no event: counted only)
        self._flash_lock = threading.Lock()
        self._flash_until: dict[str, float] = {}  # counter -> monotonic time its flashed text ends

    # -------------------------------------------------------------------------------- inputs
    def on_key(self, counter: str, action: str, keypad: str | None = None) -> None:
        """A keypad key: a counter action (``call:<label>`` and ``call_held[:<label>]`` carry the typed
        ticket, ``sign_in:<code>`` the clerk's typed code), or ``issue:<service>:<priority>`` from a
        reception desk key. Never raises: a refusal is shown on the counter's pad."""
        by = f"keypad:{keypad or counter}"
        if action.startswith("issue:"):
            _, service, priority = (action.split(":") + ["", ""])[:3]
            self._issue(service, priority or None, by)
            return
        name, _, ticket = action.partition(":")
        try:
            if name == "sign_in":  # the typed code names the clerk
                try:
                    self.sign_in_code(counter, ticket, by=by)
                except WrongCode:
                    pass  # refused, counted, "Sai mã" on the counter: nothing more to say
                return
            self.action(counter, name, ticket=ticket or None, by=by)
        except (QueueError, StoreFull) as e:
            if isinstance(e, StoreFull):
                self.watch.store_full(e)
            log.warning("counter %s: %s refused: %s", counter, "sign_in" if name == "sign_in" else action, e)
            text = refusal_text(e)
            for pad in self.hw.counter_pads.get(counter, []):
                self.watch.show(pad, text if action else "", key=f"lcd-{pad.id}")

    def action(self, counter: str, action: str, to_service: str | None = None, to_counter: str | None = None,
               ticket: str | None = None, by: str = "api", clerk: str | None = None,
               dossier: str | None = None) -> object:
        """One counter action; ``by`` (who asked: ``keypad:<id>``, ``api``, ``gateway:<command id>``) is
        written in the event of every recall, out-of-order call, hold and call back (audit), and of every
        sign-in and sign-out. ``sign_in`` takes ``clerk`` (a clerk id); ``complete`` / ``done`` may carry
        ``dossier`` (the one-stop system's dossier code)."""
        e = self.engine
        if action == "sign_in":
            if not clerk:
                raise QueueError("signing in needs the clerk's id (clerk)")
            result = e.sign_in(counter, clerk, by=by)
            self._greet(counter, clerk)
            return result
        if action == "sign_out":
            return e.sign_out(counter, by=by)
        if dossier is not None and action not in ("done", "complete"):
            raise QueueError("a dossier code goes with the completion of a ticket (complete)")
        if action == "next":
            return e.call_next(counter)
        if action == "recall":
            return e.recall(counter, by=by)
        if action == "call":
            if not ticket:
                raise QueueError("calling a specific ticket needs its number (e.g. B012)")
            return e.call_ticket(counter, ticket, by=by)
        if action == "hold":
            return e.hold(counter, by=by)
        if action == "call_held":
            return e.call_held(counter, ticket, by=by)
        if action == "no_show":
            return e.no_show(counter)
        if action in ("done", "complete"):
            return e.complete(counter, dossier=dossier)
        if action == "transfer":
            if to_service is None and to_counter is None:
                to_service = self.transfer_target(counter)
            return e.transfer(counter, to_service=to_service, to_counter=to_counter)
        if action == "open":
            return e.open_counter(counter)
        if action == "close":
            return e.close_counter(counter, by=by)
        if action == "break":
            return e.break_counter(counter)
        raise QueueError(f"unknown counter action {action!r}")

    def sign_in_code(self, counter: str, code: str | None, by: str) -> object:
        """Sign in the clerk whose code is ``code`` (typed on the keypad or the counter's PC). A code that
        matches nobody is refused (:class:`WrongCode`), counted in ``wrong_codes`` and shown on the counter
        as "Sai mã" for a moment; no event is logged for it."""
        self.engine.counter(counter)  # an unknown counter is a QueueError, not a wrong code
        clerk = self._clerk_of_code.get(code or "")
        if clerk is None:
            self.wrong_codes += 1
            log.warning("counter %s: a wrong sign-in code was typed (%d so far)", counter, self.wrong_codes)
            self.flash(counter, WRONG_CODE_TEXT)
            raise WrongCode(f"wrong sign-in code at counter {counter}")
        return self.action(counter, "sign_in", clerk=clerk, by=by)

    def transfer_target(self, counter: str) -> str:
        """A keypad's transfer key has no target: send the citizen to the next service in the counter's
        profile after the ticket's own (the usual case: they queued for the wrong procedure)."""
        view = self.engine.counter(counter)
        if view.ticket is None:
            raise QueueError(f"counter {counter} has no ticket to transfer")
        current = self.engine.ticket(view.ticket)
        services = list(self.engine.profile(counter).services)
        others = [s for s in services if current is None or s != current.service]
        if not others:
            raise QueueError(f"counter {counter} serves only one service: transfer from the dashboard")
        if current is not None and current.service in services:
            i = services.index(current.service)
            rotated = services[i + 1:] + services[:i]
            return rotated[0]
        return others[0]

    # -------------------------------------------------------------------------------- outputs
    def on_event(self, event: Event) -> None:
        """A queue event (subscribed to the engine): a call shows on the counter's displays and pads and is
        announced; a closed counter goes blank, a break shows ``----``; a held ticket leaves the board blank
        and the pad says ``GIU <ticket>``."""
        counter = event.data.get("counter")
        if event.type in CALL_EVENTS:
            label = event.data.get("ticket", "")
            for d in self.hw.counter_displays.get(counter, []):
                self.watch.show(d, label, key=f"show-{d.id}")
            for pad in self.hw.counter_pads.get(counter, []):
                self.watch.show(pad, label, key=f"lcd-{pad.id}")
            if self.announcer is not None:  # only queued here: the engine thread never waits for a sound
                self.announcer.announce(label, counter, recall=event.type == EventType.ticket_recalled,
                                        priority=event.data.get("priority"), service=event.data.get("service"))
        elif event.type in (EventType.counter_closed, EventType.counter_break):
            text = "" if event.type == EventType.counter_closed else "----"
            for d in self.hw.counter_displays.get(counter, []):
                self.watch.show(d, text, key=f"show-{d.id}")
        elif event.type == EventType.ticket_held:  # parked: nobody is served there now; the pad says what
            label = str(event.data.get("ticket", ""))
            for d in self.hw.counter_displays.get(counter, []):
                self.watch.show(d, "", key=f"show-{d.id}")
            for pad in self.hw.counter_pads.get(counter, []):
                text = f"GIU {label}" if len(label) <= pad.lcd_width - 4 else label[: pad.lcd_width]
                self.watch.show(pad, text, key=f"lcd-{pad.id}")

    def message(self, text: str, device: str | None = None) -> list[str]:
        """``text`` on one display (or every display); returns the displays it went to. An unknown display
        is a KeyError."""
        targets = [self.hw.displays[device]] if device else list(self.hw.displays.values())
        for d in targets:
            self.watch.show(d, text, key=f"show-{d.id}")
        return [d.id for d in targets]

    def display_test(self) -> dict[str, str]:
        """Show ``8888`` then the display's own id on every display; returns what went wrong per display."""
        results = {}
        for d in self.hw.displays.values():
            try:
                for text in ("8888", d.id[-4:].upper()):
                    d.show(text)
                results[d.id] = "ok"
            except Exception as e:  # noqa: BLE001 - reported per display
                results[d.id] = str(e)
            self.watch.check(d)
        return results

    # -------------------------------------------------------------------------------- flashed texts
    def _greet(self, counter: str, clerk: str) -> None:
        """After a sign-in: the clerk's short name on the counter's pad LCD and text display for a moment."""
        c = self.cfg.clerks.get(clerk)
        if c is not None:
            self.flash(counter, c.display_name())

    def flash(self, counter: str, text: str) -> None:
        """``text`` on the counter's call pad LCDs and text (ASCII-frame) displays for ``flash_s`` seconds;
        ``tick`` then puts the ticket in hand back. 7-segment boards keep showing the ticket."""
        self._show_text_at(counter, text)
        with self._flash_lock:
            self._flash_until[counter] = self.clock.monotonic() + self.flash_s
        self._wake()

    def _show_text_at(self, counter: str, text: str) -> None:
        from civiq.edge.devices.display.asciiframe import AsciiFrameDisplay

        for pad in self.hw.counter_pads.get(counter, []):
            self.watch.show(pad, text[: pad.lcd_width], key=f"lcd-{pad.id}")
        for d in self.hw.counter_displays.get(counter, []):
            if isinstance(d, AsciiFrameDisplay):
                self.watch.show(d, text[: d.width], key=f"show-{d.id}")

    def tick(self) -> None:
        """Put the ticket in hand (or nothing) back where a flashed text has had its time (the scheduler
        loop calls this often)."""
        if not self._flash_until:
            return
        now = self.clock.monotonic()
        with self._flash_lock:
            done = [c for c, until in self._flash_until.items() if now >= until]
            for c in done:
                del self._flash_until[c]
        for counter in done:
            try:
                view = self.engine.counter(counter)
            except QueueError:
                continue
            self._show_text_at(counter, view.ticket or ("----" if str(view.state) == "break" else ""))
