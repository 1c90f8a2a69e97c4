"""The rating window of each counter: when a rating press counts, and the one ``ticket.rated`` it makes.

When a ``ticket.completed`` event is committed for a counter, that counter's window opens for
``rating.window_s`` seconds for that ticket (its service, day, and the ``clerk`` / ``dossier`` of the
completion when present). Within it, the first score pressed on one of the counter's rating devices (a GPIO
pad, an RS-485 pad, the rating page) is THE rating of that ticket:

* a score above ``reasons_max_score``, or from a device that has no reason keys, is recorded at once;
* a low score from a device with reasons waits ``reasons_wait_s`` for reason keys (each one restarts the
  wait; the page's "Gửi" button, :meth:`RatingDesk.finish`, ends it) and is then recorded with the reasons
  chosen;
* a second score for the same ticket is ignored (counted as a repeat);
* a press when no window is open (nobody was served there in the last ``window_s`` seconds) is ignored and
  counted per device (``outside_window``), shown in the device's health and in ``/api/rating``;
* a new completion at the same counter closes the previous window (a low score still waiting for reasons is
  recorded with those chosen so far).

The event goes through the queue engine's ``rate`` (one SQLite append under the engine's lock: the outbox
path of every event, so nothing is lost offline), never from inside an engine subscriber: a rating due
because of a completion is recorded by the next :meth:`RatingDesk.tick` (the agent calls it several times a
second), so subscribers still see events in seq order. Times come from the injected clock
(``clock.monotonic()``), so tests drive the window with a :class:`~civiq.clock.FakeClock`.

    desk = RatingDesk(cfg.rating, clock=clock, commit=engine.rate, devices={"r1": RatingDevice("r1", "c1", "gpio", True)})
    engine.subscribe(desk.on_event)
    desk.press("r1", 5)        # -> Outcome("recorded", ...) within the window, Outcome("no_window") outside

No personal data: a rating holds a ticket number, a counter, a clerk id, a score and reason ids.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from civiq.clock import Clock
from civiq.contract import Event, EventType
from civiq.listeners import subscribe

log = logging.getLogger(__name__)

KIND_BY = {"gpio": "keys", "serial": "pad"}  # ``by`` of the event: keys:<id>, pad:<id>, page


@dataclass(frozen=True)
class RatingDevice:
    """A rating device as the desk knows it: its counter, its kind (gpio, serial, page) and whether it can
    give reasons (a page always can; a pad only with reason keys)."""

    id: str
    counter: str
    kind: str
    reasons: bool

    @property
    def by(self) -> str:
        return "page" if self.kind == "page" else f"{KIND_BY.get(self.kind, self.kind)}:{self.id}"


@dataclass(frozen=True)
class Outcome:
    """What a press did: ``recorded`` (the event is in the log: ``event``), ``reasons`` (a low score waits
    for reasons), ``reason`` (a reason was taken), ``no_window`` (ignored, counted), ``repeat`` (the ticket
    already has its rating), ``ignored`` (a reason key with no low score waiting), ``error``."""

    result: str
    counter: str | None = None
    ticket: str | None = None
    event: Event | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.result in ("recorded", "reasons", "reason")


@dataclass
class Window:
    counter: str
    ticket: str
    service: str
    day: str
    clerk: str | None
    dossier: str | None
    closes_at: float  # clock.monotonic()
    state: str = "open"  # open -> reasons -> recording -> done; or closed (expired / replaced unrated)
    score: int | None = None
    reasons: list[str] = field(default_factory=list)
    by: str = ""
    device: str | None = None
    reasons_until: float | None = None
    seq: int | None = None  # the ticket.rated event

    def view(self, now: float) -> dict[str, Any]:
        return {"counter": self.counter, "state": self.state, "ticket": self.ticket, "service": self.service,
                "seconds_left": max(0.0, round(self.closes_at - now, 1)), "score": self.score,
                "reasons": list(self.reasons),
                "reasons_left_s": (max(0.0, round(self.reasons_until - now, 1))
                                   if self.reasons_until is not None and self.state == "reasons" else None)}


Commit = Callable[..., Event]
Listener = Callable[[str, dict], None]


class RatingDesk:
    """The rating windows of every counter and the per-device counts. Thread-safe."""

    def __init__(self, cfg: Any, *, clock: Clock, commit: Commit,
                 devices: Mapping[str, RatingDevice] = ()) -> None:  # type: ignore[assignment]
        self.cfg = cfg
        self.scale: int = cfg.scale
        self.window_s: float = float(cfg.window_s)
        self.low_max: int = cfg.low_max()
        self.reasons_wait_s: float = float(cfg.reasons_wait_s)
        self.reason_ids: tuple[str, ...] = tuple(cfg.reasons)
        self.clock = clock
        self.commit = commit
        self.devices: dict[str, RatingDevice] = dict(devices or {})
        self._lock = threading.RLock()
        self._windows: dict[str, Window] = {}  # by counter
        self._due: list[Window] = []  # low scores whose window was replaced: recorded by the next tick
        self._listeners: list[Listener] = []
        self.counts: dict[str, dict[str, int]] = {d: self._zero() for d in self.devices}

    @staticmethod
    def _zero() -> dict[str, int]:
        return {"ratings": 0, "outside_window": 0, "repeats": 0, "ignored_reasons": 0}

    def add_device(self, dev: RatingDevice) -> None:
        with self._lock:
            self.devices[dev.id] = dev
            self.counts.setdefault(dev.id, self._zero())

    # ------------------------------------------------------------------------------------ inputs
    def on_event(self, ev: Event) -> None:
        """Engine subscriber: a completion opens its counter's window (closing the previous one)."""
        if ev.type != EventType.ticket_completed:
            return
        d = ev.data
        counter, ticket, day = d.get("counter"), d.get("ticket"), d.get("day")
        if not counter or not ticket or not day:
            return
        now = self.clock.monotonic()
        with self._lock:
            old = self._windows.get(counter)
            if old is not None and old.state == "reasons":
                old.state = "recording"
                self._due.append(old)  # its low score is recorded by the next tick
            dossier = d.get("dossier")
            self._windows[counter] = Window(
                counter=str(counter), ticket=str(ticket), service=str(d.get("service", "")), day=str(day),
                clerk=str(d["clerk"]) if d.get("clerk") else None, dossier=str(dossier) if dossier else None,
                closes_at=now + self.window_s)
            view = self._windows[counter].view(now)
        self._notify(str(counter), view)

    def press(self, device_id: str, score: int) -> Outcome:
        """A score key (or the page's face) on ``device_id``."""
        dev = self._device(device_id)
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= self.scale:
            return Outcome("error", dev.counter, error=f"a score is 1 to {self.scale}, not {score!r}")
        now = self.clock.monotonic()
        with self._lock:
            w = self._open_window(dev.counter, now)
            if w is None:
                self.counts[dev.id]["outside_window"] += 1
                log.info("rating %s on %s ignored: no ticket to rate at counter %s", score, dev.id, dev.counter)
                return Outcome("no_window", dev.counter)
            if w.state != "open":
                self.counts[dev.id]["repeats"] += 1
                return Outcome("repeat", dev.counter, w.ticket)
            w.score, w.by, w.device = score, dev.by, dev.id
            if score <= self.low_max and dev.reasons and self.reason_ids:
                w.state = "reasons"
                w.reasons_until = now + self.reasons_wait_s
                view = w.view(now)
                waiting = True
            else:
                w.state = "recording"
                waiting = False
        if waiting:
            self._notify(dev.counter, view)
            return Outcome("reasons", dev.counter, w.ticket)
        return self._record(w)

    def reason(self, device_id: str, reason: str) -> Outcome:
        """A reason key: taken (toggled on a page) while a low score waits for reasons; else ignored."""
        dev = self._device(device_id)
        now = self.clock.monotonic()
        with self._lock:
            w = self._open_window(dev.counter, now)
            if w is None:
                self.counts[dev.id]["outside_window"] += 1
                return Outcome("no_window", dev.counter)
            if w.state != "reasons" or reason not in self.reason_ids:
                self.counts[dev.id]["ignored_reasons"] += 1
                return Outcome("ignored", dev.counter, w.ticket)
            if reason in w.reasons:
                w.reasons.remove(reason)
            else:
                w.reasons.append(reason)
            w.reasons_until = now + self.reasons_wait_s
            view = w.view(now)
        self._notify(dev.counter, view)
        return Outcome("reason", dev.counter, w.ticket)

    def finish(self, device_id: str, reasons: list[str] | None = None) -> Outcome:
        """The page's "Gửi" (send): record the waiting low score now, with ``reasons`` when given."""
        dev = self._device(device_id)
        now = self.clock.monotonic()
        with self._lock:
            w = self._open_window(dev.counter, now)
            if w is None:
                self.counts[dev.id]["outside_window"] += 1
                return Outcome("no_window", dev.counter)
            if w.state != "reasons":
                return Outcome("repeat" if w.state in ("done", "recording") else "ignored", dev.counter, w.ticket)
            if reasons is not None:
                w.reasons = [r for r in dict.fromkeys(reasons) if r in self.reason_ids]
            w.state = "recording"
        return self._record(w)

    def tick(self) -> list[Outcome]:
        """Record low scores whose reason wait is over (or whose window was replaced); close expired
        windows. Returns what was recorded."""
        now = self.clock.monotonic()
        due: list[Window] = []
        expired: list[tuple[str, dict]] = []
        with self._lock:
            due, self._due = self._due, []
            for w in self._windows.values():
                if w.state == "reasons" and w.reasons_until is not None and now >= w.reasons_until:
                    w.state = "recording"
                    due.append(w)
                elif w.state == "open" and now > w.closes_at:
                    w.state = "closed"
                    expired.append((w.counter, w.view(now)))
        for counter, view in expired:
            self._notify(counter, view)
        return [self._record(w) for w in due]

    # ------------------------------------------------------------------------------------ internals
    def _device(self, device_id: str) -> RatingDevice:
        dev = self.devices.get(device_id)
        if dev is None:
            raise KeyError(f"no rating device {device_id!r}")
        return dev

    def _open_window(self, counter: str, now: float) -> Window | None:
        """The counter's window if a press may still count there (expired: closed now)."""
        w = self._windows.get(counter)
        if w is None or w.state == "closed":
            return None
        if w.state == "open" and now > w.closes_at:
            w.state = "closed"
            return None
        if w.state == "done" and now > w.closes_at:
            return None
        return w

    def _record(self, w: Window) -> Outcome:
        """Commit the rating (outside the desk's lock: the engine dispatches to subscribers)."""
        try:
            ev = self.commit(ticket=w.ticket, day=w.day, counter=w.counter, service=w.service, score=w.score,
                             scale=self.scale, reasons=list(w.reasons), clerk=w.clerk, by=w.by,
                             dossier=w.dossier)
        except Exception as e:  # noqa: BLE001 - e.g. already rated (after a restart), disk full
            log.warning("rating of %s at counter %s not recorded: %s", w.ticket, w.counter, e)
            with self._lock:
                w.state = "done"
            self._notify(w.counter, w.view(self.clock.monotonic()))
            return Outcome("error", w.counter, w.ticket, error=str(e))
        with self._lock:
            w.state, w.seq = "done", ev.seq
            if w.device in self.counts:
                self.counts[w.device]["ratings"] += 1
            view = w.view(self.clock.monotonic())
        self._notify(w.counter, view)
        return Outcome("recorded", w.counter, w.ticket, event=ev)

    # ------------------------------------------------------------------------------------ outputs
    def window(self, counter: str) -> dict[str, Any]:
        """What the counter's devices should show: state ``idle`` (nothing to rate), ``open`` (a score is
        welcome), ``reasons`` (a low score waits for reasons), ``recording``, ``done`` (thank you)."""
        now = self.clock.monotonic()
        with self._lock:
            w = self._open_window(counter, now)
            if w is None:
                return {"counter": counter, "state": "idle", "ticket": None, "seconds_left": 0.0, "score": None,
                        "reasons": [], "reasons_left_s": None}
            return w.view(now)

    def listen(self, cb: Listener) -> Callable[[], None]:
        """``cb(counter, window view)`` on every change of a counter's window (any thread)."""
        return subscribe(self._lock, self._listeners, cb)

    def _notify(self, counter: str, view: dict) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for cb in listeners:
            try:
                cb(counter, view)
            except Exception:  # noqa: BLE001 - a dead page or pad must not break the rating
                log.debug("rating listener failed", exc_info=True)

    def device_counts(self, device_id: str) -> dict[str, int]:
        with self._lock:
            return dict(self.counts.get(device_id) or self._zero())

    def status_note(self, device_id: str) -> str:
        """The counts shown in the device's health detail."""
        c = self.device_counts(device_id)
        return (f"ratings {c['ratings']}, ignored outside a rating window {c['outside_window']}, "
                f"repeats {c['repeats']}")

    def state(self) -> dict[str, Any]:
        """``GET /api/rating``: the scale, levels, reasons, every counter's window and every device's counts."""
        cfg = self.cfg
        counters = sorted({d.counter for d in self.devices.values()} | set(self._windows))
        return {"scale": self.scale, "window_s": self.window_s, "reasons_max_score": self.low_max,
                "reasons_wait_s": self.reasons_wait_s,
                "levels": [{"score": i + 1, "vi": t.vi, "en": t.en} for i, t in enumerate(cfg.level_texts())],
                "reasons": [{"id": k, "vi": t.vi, "en": t.en} for k, t in cfg.reasons.items()],
                "windows": {c: self.window(c) for c in counters},
                "devices": {d.id: {"counter": d.counter, "kind": d.kind, "reasons": d.reasons,
                                   **self.device_counts(d.id)} for d in self.devices.values()}}
