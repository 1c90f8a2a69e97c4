"""The center's queue, event-sourced: every state is a fold of the edge store's event log.

On construction :class:`QueueEngine` replays ``store.events()`` through the same ``_apply`` that live
operations use, so a restart rebuilds exactly the state (and snapshot) the engine had. So that start-up does
not grow with the log (a year of a busy center is a million events: minutes on a Pi, past systemd's start
timeout), :meth:`QueueEngine.checkpoint` saves the folded state at its last seq in the store's ``meta``
table, and a restart replays only the events after it. A checkpoint from other code (the fingerprint of the
state's fields, the time zone and the estimate window) or one that does not match the log is ignored and
the whole log is replayed, as before: the checkpoint can only save time, never change the state. An operation holds the
engine lock, decides, appends its event(s) (one SQLite transaction when more than one), and only then applies
them to memory: a failed write (disk full, crash) leaves memory and log in agreement. Subscribers get each
committed :class:`~civiq.contract.Event`, in seq order, after the lock is released.

Choices worth knowing (see also :mod:`civiq.edge.queue.profiles` for the next-ticket rule):

* Labels are the service prefix and a 3-digit daily number (``A001``; ``A1000`` after 999). Numbers restart at
  local midnight in the center's time zone. The day never goes backwards: a clock that jumps back or reports
  1970 keeps numbering on the last known day, so a ``(day, label)`` is never issued twice.
* Events are stamped ``clock=suspect`` when the wall clock is implausible or more than 2 s behind the latest
  event; the first suspect event of an incident is preceded by a ``clock.jump`` event. Waits are measured on
  an *effective* clock that never goes backwards (the latest plausible event time), so a jump cannot make a
  wait negative or reorder the line.
* A ticket still waiting when the local day changes is closed by the next operation of the new day with a
  ``ticket.no_show`` event (``counter: null``, ``reason: "day_end"``): the morning's first call must not be
  yesterday's ticket. :meth:`QueueEngine.roll_day` does it on demand (the agent calls it on its timer).
* A configured counter is *open* until an event says otherwise. Calling at a *closed* counter is an error
  (open it first); calling at a counter *on break* reopens it (the staff member is back).
* Closing a counter or putting it on break with a ticket in hand **completes** that ticket (the citizen was
  being served; sending them back to the line would make them wait twice). Closing also unpins the tickets
  transferred to that counter, so they go back to their service's line; a break keeps them pinned.
* A transfer keeps the ticket's label and its original issue time (the citizen does not start over).
  ``to_counter`` pins it to that counter, which calls it before anything else.
* A policy's work profiles replace the configured ones for the counters it names; counters it does not
  name use their configured profile. Counters unknown to this node are ignored, unknown services are an error.
* Priority tickets (``issue(service, priority="elderly")``) go ahead by the center's
  :class:`~civiq.edge.queue.profiles.PriorityOrder`; each counter's run of priority calls in a row is part
  of the folded state (``max_in_row``), so a restart decides exactly as before.
* Clerk operations out of the line's order are events with ``by`` (who asked): :meth:`QueueEngine.call_ticket`
  (``ticket.called`` with ``out_of_order: true``), :meth:`QueueEngine.hold` (``ticket.held``: the ticket
  leaves the counter and the line, parked at that counter) and :meth:`QueueEngine.call_held` (a
  ``ticket.called`` with ``from_hold: true``, at any counter). A recall within ``recall_cooldown_s`` of the
  ticket's last call or recall is refused (:class:`QueueError` saying how long to wait); past
  ``max_recalls`` a recall makes it a no-show. A ticket still held when its day ends is a day-end no-show.
* Who is signed in at each counter is folded state too (``clerk.signed_in`` / ``clerk.signed_out``, see
  :meth:`QueueEngine.sign_in`): a restart keeps the clerk. Signing in at a second counter signs out from the
  first (``reason: "signed_in_elsewhere"``), a new clerk at an occupied counter signs the previous one out
  (``manual``), closing the counter signs its clerk out after the ``counter.closed`` (``counter_closed``)
  and the first operation of a new local day signs out everyone still signed in (``day_end``, like the
  day-end no-shows). While a clerk is signed in, every event about the counter's work gets ``clerk``
  (added in one place, :meth:`QueueEngine._commit`); with no clerks configured no event has the key.

>>> from civiq.clock import FakeClock
>>> from civiq.contract import WorkProfile
>>> from civiq.edge.queue.store import EdgeStore
>>> eng = QueueEngine(EdgeStore(":memory:"), FakeClock(), {"A": ServiceDef("A", "Đất đai")},
...                   {"c1": WorkProfile(services=["A"])})
>>> eng.issue("A").label
'A001'
>>> eng.call_next("c1").counter
'c1'
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import pickle
import threading
import zlib
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from civiq.clock import DEFAULT_TZ, Clock, local_day, plausible
from civiq.contract import (
    ClockQuality,
    CounterState,
    CounterStateName,
    Event,
    EventType,
    Policy,
    QueueSnapshot,
    ServiceQueue,
    WorkProfile,
)
from civiq.edge.queue.estimate import MEMORY_S as ESTIMATE_MEMORY_S
from civiq.edge.queue.estimate import CounterLoad, Departure, estimate_wait_s
from civiq.edge.queue.profiles import PriorityOrder, WaitingTicket, choose_next
from civiq.edge.queue.store import EdgeStore
from civiq.errors import EdgeError
from civiq.listeners import subscribe

log = logging.getLogger(__name__)

JUMP_TOLERANCE_S = 2.0
DEVICE_EVENTS = (EventType.device_fault, EventType.device_recovered)
# the events about a counter's work: they carry ``clerk`` while someone is signed in there
CLERK_WORK = frozenset({EventType.ticket_called, EventType.ticket_recalled, EventType.ticket_held,
                        EventType.ticket_no_show, EventType.ticket_completed, EventType.ticket_transferred,
                        EventType.counter_opened, EventType.counter_closed, EventType.counter_break})
SIGN_OUT_REASONS = ("manual", "counter_closed", "signed_in_elsewhere", "day_end")
DOSSIER_MAX = 40

Key = tuple[str, str]  # (day, label)


class QueueError(EdgeError, ValueError):
    """A request the queue cannot carry out (unknown service or counter, no ticket in hand, ...)."""


class RecallCooldown(QueueError):
    """A recall inside ``recall_cooldown_s``: ``left_s`` seconds to wait."""

    def __init__(self, message: str, left_s: float) -> None:
        super().__init__(message)
        self.left_s = left_s


@dataclass(frozen=True)
class ServiceDef:
    """A service the center offers; ``prefix`` is its key everywhere (labels, profiles, topics)."""

    prefix: str
    name_vi: str
    name_en: str = ""
    portal_url: str = ""


class TicketStatus(StrEnum):
    waiting = "waiting"
    called = "called"  # in hand at a counter
    completed = "completed"
    no_show = "no_show"
    held = "held"  # parked by a counter (``counter``), out of the line until called back


@dataclass(frozen=True)
class Ticket:
    label: str
    service: str
    number: int
    day: str
    status: TicketStatus
    issued_at: datetime
    counter: str | None = None  # the counter serving it (called) or that served it
    pinned_to: str | None = None  # waiting for this counter only (transfer)
    recalls: int = 0
    ahead: int | None = None  # waiting: people before it in its line
    eta_s: float | None = None  # waiting: estimated seconds until called; None = unknown
    wait_s: float | None = None  # called: seconds it waited
    service_s: float | None = None  # finished: seconds at the counter
    priority: str | None = None  # priority class id (elderly, ...), None for a normal ticket


@dataclass(frozen=True)
class RecallResult:
    ticket: Ticket
    recalls: int
    no_show: bool  # True: the recall limit was reached and the ticket became a no-show


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in or sign-out: ``changed`` False when the clerk was already signed in there."""

    counter: str
    clerk: str
    changed: bool = True


@dataclass(frozen=True)
class CounterView:
    counter: str
    state: CounterStateName
    ticket: str | None
    services: tuple[str, ...]
    served_today: int = 0


@dataclass
class _T:
    label: str
    service: str
    number: int
    day: str
    seq: int
    issued_at: datetime
    since: datetime  # effective time it first entered the line (line order, rules)
    queued_at: datetime  # effective time it entered the line this time (wait_s)
    status: TicketStatus = TicketStatus.waiting
    counter: str | None = None
    pinned_to: str | None = None
    recalls: int = 0
    called_at: datetime | None = None
    wait_s: float | None = None
    service_s: float | None = None
    priority: str | None = None
    last_call: datetime | None = None  # effective time of its last call or recall (recall cooldown)
    rated: bool = False  # a ticket.rated event exists for it (at most one per ticket)

    @property
    def key(self) -> Key:
        return (self.day, self.label)


@dataclass
class _C:
    state: CounterStateName = CounterStateName.open
    ticket: Key | None = None
    served: dict[str, int] = field(default_factory=dict)  # day -> completed
    priority_run: int = 0  # priority tickets called here in a row (PriorityOrder.max_in_row)
    clerk: str | None = None  # the clerk signed in here
    clerk_day: str | None = None  # the local day of that sign-in (a new day signs everyone out)


Callback = Callable[[Event], object]


CHECKPOINT_KEY = "engine.checkpoint"
_CHECKPOINT_FORMAT = 1
# every attribute the fold writes (see _apply and its handlers): what a checkpoint holds
_STATE = ("_tickets", "_line", "_held", "_numbers", "_served", "_counters", "_policy_version",
          "_policy_profiles", "_departures", "_day", "_eff", "_last_clock", "_last_seq")
REPLAY_PAGE = 5000


class QueueEngine:
    """The queue of one center (see the module docstring). All public methods are thread-safe."""

    def __init__(self, store: EdgeStore, clock: Clock, services: Mapping[str, ServiceDef],
                 counters: Mapping[str, WorkProfile], tz: str = DEFAULT_TZ, max_recalls: int = 3,
                 estimate_window_min: float = 60,
                 clock_quality: Callable[[], ClockQuality] | None = None,
                 on_replay: Callable[[int], object] | None = None,
                 priority: PriorityOrder | None = None, priority_classes: Collection[str] = (),
                 recall_cooldown_s: float = 0.0, clerks: Collection[str] = (),
                 counter_clerks: Mapping[str, Collection[str]] | None = None) -> None:
        if max_recalls < 0:
            raise QueueError("max_recalls must be 0 or more")
        if recall_cooldown_s < 0:
            raise QueueError("recall_cooldown_s must be 0 or more")
        self.priority = priority or PriorityOrder()
        self.priority_classes = frozenset(priority_classes)  # the classes issue() accepts
        self.recall_cooldown_s = recall_cooldown_s
        self.clerks = frozenset(clerks)  # the clerk ids that may sign in
        self.counter_clerks = {c: frozenset(v) for c, v in (counter_clerks or {}).items()}  # absent: anyone
        if estimate_window_min <= 0:
            raise QueueError("estimate_window_min must be positive")
        self.store = store
        self.clock = clock
        self.tz = tz
        self.max_recalls = max_recalls
        self.window_s = estimate_window_min * 60
        self.services: dict[str, ServiceDef] = dict(services)
        for prefix, sdef in self.services.items():
            if sdef.prefix != prefix:
                raise QueueError(f"service key {prefix!r} differs from its prefix {sdef.prefix!r}")
        self.configured: dict[str, WorkProfile] = dict(counters)
        for cid, prof in self.configured.items():
            self._check_profile(cid, prof)
        self._clock_quality = clock_quality
        self._lock = threading.RLock()
        self._dispatch_lock = threading.RLock()
        self._outq: deque[Event] = deque()
        self._subscribers: list[Callback] = []
        # ---- state, rebuilt from the log
        self._tickets: dict[Key, _T] = {}
        self._line: dict[Key, _T] = {}  # waiting tickets
        self._held: dict[Key, _T] = {}  # parked tickets (status held)
        self._numbers: dict[tuple[str, str], int] = {}  # (day, service) -> last number = issued that day
        self._served: dict[tuple[str, str], int] = {}  # (day, service) -> completed that day
        self._counters: dict[str, _C] = {c: _C() for c in self.configured}
        self._policy_version = 0
        self._policy_profiles: dict[str, WorkProfile] = {}
        self._departures: deque[Departure] = deque(maxlen=20_000)
        self._day: str | None = None
        self._eff: datetime | None = None
        self._last_clock: ClockQuality | None = None
        self._last_seq = 0
        self.replayed = 0  # events folded at start-up (after the checkpoint, if one was usable)
        self.restored_from: int | None = None  # the checkpoint's seq, when one was used
        with self._lock:
            self._restore()
            while True:  # in pages: a long log never sits in memory whole
                page = list(store.events(after_seq=self._last_seq, limit=REPLAY_PAGE))
                for ev in page:
                    self._apply(ev)
                self.replayed += len(page)
                if on_replay is not None and page:
                    on_replay(self.replayed)
                if len(page) < REPLAY_PAGE:
                    break

    # =========================================================================================== checkpoint
    def _fingerprint(self) -> str:
        fields = [f.name for cls in (_T, _C) for f in dataclasses.fields(cls)]
        return (f"{_CHECKPOINT_FORMAT}|{self.tz}|{self.window_s}|{','.join(sorted(self.configured))}|"
                f"{','.join(_STATE)}|{','.join(fields)}")

    def checkpoint(self) -> int:
        """Save the folded state at the last seq (one ``meta`` row); a restart replays only what follows.
        Returns that seq. Raises what the store raises (e.g. ``sqlite3.OperationalError`` when the disk is
        full): the caller decides; an old checkpoint stays valid, it only means a longer replay."""
        with self._lock:
            blob = pickle.dumps({k: getattr(self, k) for k in _STATE}, protocol=pickle.HIGHEST_PROTOCOL)
            seq = self._last_seq
        self.store.set_meta(CHECKPOINT_KEY, json.dumps({
            "fingerprint": self._fingerprint(), "seq": seq,
            "state": base64.b64encode(zlib.compress(blob)).decode()}))
        return seq

    def _restore(self) -> None:
        """Load the checkpoint if it is ours and matches the log; else leave the fresh state (full replay)."""
        raw = self.store.get_meta(CHECKPOINT_KEY)
        if not raw:
            return
        try:
            cp = json.loads(raw)
            if cp.get("fingerprint") != self._fingerprint():
                log.info("engine checkpoint from another version or setup: replaying the whole log")
                return
            seq = int(cp["seq"])
            if seq > self.store.last_seq():
                log.warning("engine checkpoint at seq %d is ahead of the log (%d): ignored", seq,
                            self.store.last_seq())
                return
            # the checkpoint is this store's own meta row, written by checkpoint() above: not outside input
            state = pickle.loads(zlib.decompress(base64.b64decode(cp["state"])))  # noqa: S301
            if set(state) != set(_STATE) or state["_last_seq"] != seq:
                raise ValueError("checkpoint fields do not match")
        except Exception as e:  # noqa: BLE001 - anything odd: the full replay is always right
            log.warning("engine checkpoint not usable (%s): replaying the whole log", e)
            return
        for k, v in state.items():
            setattr(self, k, v)
        loaded = self._counters  # configured counters first, in their order, as a full replay has them
        self._counters = {c: loaded.get(c, _C()) for c in self.configured}
        self._counters.update({c: v for c, v in loaded.items() if c not in self._counters})
        self.restored_from = seq

    # =========================================================================================== reads
    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def policy_version(self) -> int:
        return self._policy_version

    @property
    def day(self) -> str:
        """The numbering day now (never earlier than the last event's)."""
        with self._lock:
            return self._day_for(self.clock.now())

    def profile(self, counter: str) -> WorkProfile:
        """The work profile in force at ``counter`` (the last policy's, else the configured one)."""
        with self._lock:
            self._counter(counter)
            return self._profile(counter)

    def counter(self, counter: str) -> CounterView:
        with self._lock:
            return self._counter_view(counter, self._day_for(self.clock.now()))

    def clerk_at(self, counter: str) -> str | None:
        """The clerk signed in at ``counter`` (None: nobody)."""
        with self._lock:
            return self._counter(counter).clerk

    def signed_in(self) -> dict[str, str]:
        """counter -> the clerk signed in there, for every counter with someone signed in."""
        with self._lock:
            return {cid: c.clerk for cid, c in self._counters.items() if c.clerk is not None}

    def ticket(self, label: str, day: str | None = None) -> Ticket | None:
        """A ticket by label: today's if ``day`` is not given, else a still-active one from an earlier day."""
        with self._lock:
            t = self._find(label, day)
            return self._view(t) if t else None

    def position(self, label: str, day: str | None = None) -> int | None:
        """People ahead of a waiting ticket in its line; None when it is not waiting (or unknown)."""
        with self._lock:
            t = self._find(label, day)
            if t is None or t.status is not TicketStatus.waiting:
                return None
            return self._ahead(t)

    def waiting(self, service: str) -> list[Ticket]:
        """The waiting tickets of ``service`` in line order (pinned ones included)."""
        with self._lock:
            line = sorted((t for t in self._line.values() if t.service == service), key=self._rank)
            return [self._view(t) for t in line]

    def held(self, counter: str | None = None) -> list[Ticket]:
        """Held (parked) tickets, oldest hold first: all, or those parked at ``counter``."""
        with self._lock:
            return [self._view(t) for t in sorted(self._held.values(), key=lambda t: (t.queued_at, t.seq))
                    if counter is None or t.counter == counter]

    def snapshot(self) -> QueueSnapshot:
        with self._lock:
            now = self.clock.now()
            eff = self._eff_for(now)
            day = self._day_for(now)
            services: dict[str, ServiceQueue] = {}
            names = list(self.services) + sorted({t.service for t in self._line.values()} - set(self.services))
            for s in names:
                line = [t for t in self._line.values() if t.service == s]
                free = [t for t in line if t.pinned_to is None]
                oldest = min((t.since for t in line), default=None)
                by_class: dict[str, int] = {}
                for t in line:
                    if t.priority is not None:
                        by_class[t.priority] = by_class.get(t.priority, 0) + 1
                services[s] = ServiceQueue(
                    waiting=len(line),
                    oldest_wait_s=round(max(0.0, (eff - oldest).total_seconds()), 1) if oldest else 0.0,
                    eta_s=self._eta(s, len(free), eff),
                    served_today=self._served.get((day, s), 0),
                    issued_today=self._numbers.get((day, s), 0),
                    priority_waiting=sum(by_class.values()),
                    priority_by_class=dict(sorted(by_class.items())),
                    held=sum(1 for t in self._held.values() if t.service == s),
                )
            held_at: dict[str, list[str]] = {}
            for t in sorted(self._held.values(), key=lambda t: (t.queued_at, t.seq)):
                held_at.setdefault(t.counter or "", []).append(t.label)
            counters = {}
            for c in self.configured:
                v = self._counter_view(c, day)
                key = self._counters[c].ticket
                in_hand = self._tickets.get(key) if key else None
                counters[c] = CounterState(state=v.state, ticket=v.ticket, services=list(v.services),
                                           served_today=v.served_today,
                                           priority=in_hand.priority if in_hand else None,
                                           held=held_at.get(c, []), rules=list(self._profile(c).rules))
            return QueueSnapshot(ts=now, day=day, services=services, counters=counters, last_seq=self._last_seq)

    # =========================================================================================== subscribe
    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(event)`` for every committed event, in seq order, outside the engine lock.
        Returns a function that unsubscribes. Exceptions in callbacks are logged and swallowed."""
        return subscribe(self._dispatch_lock, self._subscribers, callback)

    def _dispatch(self) -> None:
        with self._dispatch_lock:
            while True:
                with self._lock:
                    if not self._outq:
                        return
                    ev = self._outq.popleft()
                for cb in list(self._subscribers):
                    try:
                        cb(ev)
                    except Exception:  # a broken display must not break the queue
                        log.exception("queue event subscriber %r failed on seq %s", cb, ev.seq)

    # =========================================================================================== operations
    def issue(self, service: str, priority: str | None = None, by: str | None = None) -> Ticket:
        """Issue the next ticket of ``service`` (e.g. "A001"), with its position and wait estimate.
        ``priority``: a priority class id (one of ``priority_classes``); ``by``: what issued it (audit)."""
        with self._lock:
            if service not in self.services:
                raise QueueError(f"unknown service {service!r} (known: {', '.join(self.services) or 'none'})")
            if priority is not None and priority not in self.priority_classes:
                known = ", ".join(sorted(self.priority_classes)) or "none configured"
                raise QueueError(f"unknown or disabled priority class {priority!r} (known: {known})")
            now, q = self._begin()
            eff, day = self._eff_for(now), self._day_for(now)
            number = self._numbers.get((day, service), 0) + 1
            label = f"{service}{number:03d}"
            mine = (*self.priority.rank(_Prio(priority), eff, 0), 1 << 62)
            ahead = sum(1 for t in self._line.values()
                        if t.service == service and t.pinned_to is None and self._rank(t) < mine)
            data = {"ticket": label, "service": service, "number": number, "day": day, "ahead": ahead,
                    "eta_s": self._eta(service, ahead, eff)}
            if priority is not None:
                data["priority"] = priority
            if by is not None:
                data["by"] = by
            self._commit(now, q, [(EventType.ticket_issued, data)])
            result = self._view(self._tickets[(day, label)])
        self._dispatch()
        return result

    def call_next(self, counter: str) -> Ticket | None:
        """Complete the counter's current ticket (if any) and call the next one; None when nobody waits."""
        with self._lock:
            c = self._counter(counter)
            if c.state is CounterStateName.closed:
                raise QueueError(f"counter {counter} is closed: open it before calling")
            now, q = self._begin()
            eff = self._eff_for(now)
            items = self._clear_for_call(counter, eff)
            line = [WaitingTicket(t.key, t.service, t.since, t.seq, t.pinned_to, t.priority)
                    for t in self._line.values()]
            choice = choose_next(counter, self._profile(counter), line, eff, self.priority, c.priority_run)
            if choice is not None:
                t = self._line[choice.key]  # type: ignore[index]
                items.append((EventType.ticket_called, self._call_data(t, counter, eff)))
            if items:
                self._commit(now, q, items)
            result = self._view(self._tickets[choice.key]) if choice is not None else None  # type: ignore[index]
        self._dispatch()
        return result

    def recall(self, counter: str, by: str | None = None) -> RecallResult:
        """Call the ticket in hand again; past ``max_recalls`` recalls it becomes a no-show instead. Within
        ``recall_cooldown_s`` of its last call or recall: refused (:class:`QueueError` with the time left)."""
        with self._lock:
            t = self._in_hand(counter)
            eff = self._eff_for(self.clock.now())
            if self.recall_cooldown_s and t.last_call is not None:
                left = self.recall_cooldown_s - (eff - t.last_call).total_seconds()
                if left > 0:
                    raise RecallCooldown(f"recall of {t.label} refused: called {self.recall_cooldown_s - left:.0f} s "
                                     f"ago, wait {left:.0f} s more (recall_cooldown_s {self.recall_cooldown_s:g})", left)
            now, q = self._begin()
            eff = self._eff_for(now)
            if t.recalls >= self.max_recalls:
                etype, data = self._finish(EventType.ticket_no_show, counter, eff)
                data.update(recalls=t.recalls, reason="recalls")
                self._commit(now, q, [(etype, data)])
                result = RecallResult(self._view(t), t.recalls, True)
            else:
                data = {"ticket": t.label, "service": t.service, "counter": counter, "day": t.day,
                        "wait_s": t.wait_s, "recalls": t.recalls + 1}
                if t.priority is not None:
                    data["priority"] = t.priority
                if by is not None:
                    data["by"] = by
                self._commit(now, q, [(EventType.ticket_recalled, data)])
                result = RecallResult(self._view(t), t.recalls, False)
        self._dispatch()
        return result

    def call_ticket(self, counter: str, label: str, by: str) -> Ticket:
        """Call the ticket ``label`` at ``counter`` now, out of the line's order (the clerk chose it): a
        waiting ticket (``out_of_order: true``) or a held one (``from_hold: true``). The counter's ticket in
        hand is completed first, as with :meth:`call_next`. ``by`` names who asked (audit)."""
        with self._lock:
            t = self._find(label.strip().upper(), None)
            if t is None or t.status not in (TicketStatus.waiting, TicketStatus.held):
                state = "unknown" if t is None else str(t.status).replace("_", "-")
                raise QueueError(f"ticket {label} is {state}: only a waiting or held ticket can be called")
            result = self._call_specific(counter, t, by)
        self._dispatch()
        return result

    def call_held(self, counter: str, label: str | None = None, by: str = "api") -> Ticket:
        """Call a held ticket back: ``label``, or the oldest held at ``counter`` (``from_hold: true``)."""
        with self._lock:
            if label:
                t = self._find(label.strip().upper(), None)
                if t is None or t.status is not TicketStatus.held:
                    raise QueueError(f"ticket {label} is not held")
            else:
                self._counter(counter)
                mine = sorted((x for x in self._held.values() if x.counter == counter),
                              key=lambda x: (x.queued_at, x.seq))
                if not mine:
                    raise QueueError(f"counter {counter} has no held ticket")
                t = mine[0]
            result = self._call_specific(counter, t, by)
        self._dispatch()
        return result

    def hold(self, counter: str, by: str) -> Ticket:
        """Park the ticket in hand (the citizen steps aside: a missing paper, a photocopy); the counter is
        free for its next call and the ticket waits, out of the line, for :meth:`call_held`."""
        with self._lock:
            t = self._in_hand(counter)
            now, q = self._begin()
            etype, data = self._finish(EventType.ticket_held, counter, self._eff_for(now))
            data["by"] = by
            if t.priority is not None:
                data["priority"] = t.priority
            self._commit(now, q, [(etype, data)])
            result = self._view(t)
        self._dispatch()
        return result

    def _clear_for_call(self, counter: str, eff: datetime) -> list[tuple[EventType, dict]]:
        """Before a call: a counter on break opens again and the ticket in hand is completed."""
        c = self._counter(counter)
        items: list[tuple[EventType, dict]] = []
        if c.state is CounterStateName.on_break:
            items.append((EventType.counter_opened, {"counter": counter}))
        if c.ticket is not None:
            items.append(self._finish(EventType.ticket_completed, counter, eff))
        return items

    def _call_specific(self, counter: str, t: _T, by: str) -> Ticket:
        """Under the lock; the caller dispatches after releasing it."""
        c = self._counter(counter)
        if c.state is CounterStateName.closed:
            raise QueueError(f"counter {counter} is closed: open it before calling")
        if c.ticket == t.key:
            raise QueueError(f"ticket {t.label} is already in hand at counter {counter}")
        now, q = self._begin()
        if t.status not in (TicketStatus.waiting, TicketStatus.held):  # a day-end closed it just now
            raise QueueError(f"ticket {t.label} is {t.status}")
        eff = self._eff_for(now)
        items = self._clear_for_call(counter, eff)
        data = self._call_data(t, counter, eff)
        if t.status is TicketStatus.held:
            data.update(from_hold=True, wait_s=None, held_s=_secs(eff - t.queued_at), held_at=t.counter)
        else:
            data["out_of_order"] = True
        data["by"] = by
        items.append((EventType.ticket_called, data))
        self._commit(now, q, items)
        return self._view(t)

    def _call_data(self, t: _T, counter: str, eff: datetime) -> dict[str, Any]:
        data: dict[str, Any] = {"ticket": t.label, "service": t.service, "counter": counter, "day": t.day,
                                "wait_s": _secs(eff - t.queued_at), "recalls": 0}
        if t.priority is not None:
            data["priority"] = t.priority
        return data

    def _rank(self, t: _T) -> tuple[int, datetime, int]:
        return (*self.priority.rank(t, t.since, t.seq), t.seq)

    def no_show(self, counter: str) -> Ticket:
        """The citizen in hand did not come: close the ticket as a no-show."""
        return self._end(counter, EventType.ticket_no_show)

    def complete(self, counter: str, dossier: str | None = None) -> Ticket:
        """The citizen in hand was served. ``dossier``: the one-stop system's dossier code the clerk entered
        (at most 40 characters), written in the ``ticket.completed`` event as ``dossier``."""
        extra = {}
        if dossier is not None:
            code = dossier.strip()
            if not 1 <= len(code) <= DOSSIER_MAX or not code.isprintable():
                raise QueueError(f"a dossier code is 1 to {DOSSIER_MAX} printable characters (e.g. "
                                 f"H29.22-241205-0001), not {dossier[:50]!r}")
            extra["dossier"] = code
        return self._end(counter, EventType.ticket_completed, extra)

    def transfer(self, counter: str, to_service: str | None = None, to_counter: str | None = None) -> Ticket:
        """Send the ticket in hand back to the line (keeping its issue time): of ``to_service``, and/or
        pinned to ``to_counter``. At least one of them is required."""
        with self._lock:
            t = self._in_hand(counter)
            if to_service is None and to_counter is None:
                raise QueueError("transfer needs a service or a counter to send the ticket to")
            if to_service is not None and to_service not in self.services:
                raise QueueError(f"unknown service {to_service!r}")
            if to_counter is not None:
                target = self._counter(to_counter)
                if to_counter == counter:
                    raise QueueError(f"ticket {t.label} is already at counter {counter}")
                if target.state is CounterStateName.closed:
                    raise QueueError(f"counter {to_counter} is closed")
            now, q = self._begin()
            etype, data = self._finish(EventType.ticket_transferred, counter, self._eff_for(now))
            data.update(to_service=to_service or t.service, to_counter=to_counter)
            self._commit(now, q, [(etype, data)])
            result = self._view(t)
        self._dispatch()
        return result

    def sign_in(self, counter: str, clerk: str, by: str) -> SignIn:
        """``clerk`` works at ``counter`` from now on (``clerk.signed_in`` with ``by``). Signed in at another
        counter: signed out there first (``signed_in_elsewhere``); someone else signed in here: they are signed
        out (``manual``). Already signed in here: nothing is logged (``changed`` False)."""
        with self._lock:
            c = self._counter(counter)
            if not self.clerks:
                raise QueueError("no clerks are configured at this center (the config's clerks: section)")
            if clerk not in self.clerks:
                raise QueueError(f"unknown clerk {clerk!r}")
            allowed = self.counter_clerks.get(counter)
            if allowed is not None and clerk not in allowed:
                raise QueueError(f"clerk {clerk} may not sign in at counter {counter} (allowed: "
                                 f"{', '.join(sorted(allowed)) or 'nobody'})")
            now, q = self._begin()
            changed = c.clerk != clerk
            if changed:
                items: list[tuple[EventType, dict]] = [
                    (EventType.clerk_signed_out, {"counter": cid, "clerk": clerk, "by": by,
                                                  "reason": "signed_in_elsewhere"})
                    for cid, other in self._counters.items() if cid != counter and other.clerk == clerk]
                if c.clerk is not None:
                    items.append((EventType.clerk_signed_out, {"counter": counter, "clerk": c.clerk, "by": by,
                                                               "reason": "manual"}))
                items.append((EventType.clerk_signed_in, {"counter": counter, "clerk": clerk, "by": by}))
                self._commit(now, q, items)
        self._dispatch()
        return SignIn(counter, clerk, changed)

    def sign_out(self, counter: str, by: str, reason: str = "manual") -> SignIn:
        """The clerk at ``counter`` leaves it (``clerk.signed_out``); nobody signed in: :class:`QueueError`."""
        if reason not in SIGN_OUT_REASONS:
            raise QueueError(f"unknown sign-out reason {reason!r}")
        with self._lock:
            self._counter(counter)
            now, q = self._begin()
            clerk = self._counters[counter].clerk  # after _begin: a new day may have signed them out already
            if clerk is None:
                raise QueueError(f"nobody is signed in at counter {counter}")
            self._commit(now, q, [(EventType.clerk_signed_out, {"counter": counter, "clerk": clerk, "by": by,
                                                                 "reason": reason})])
        self._dispatch()
        return SignIn(counter, clerk, True)

    def open_counter(self, counter: str) -> CounterView:
        return self._set_state(counter, CounterStateName.open)

    def close_counter(self, counter: str, by: str | None = None) -> CounterView:
        """Close for the day; a ticket in hand is completed, tickets pinned to it go back to their line, and
        the clerk signed in there is signed out (``reason: "counter_closed"``, ``by``)."""
        return self._set_state(counter, CounterStateName.closed, by=by)

    def break_counter(self, counter: str) -> CounterView:
        """Pause; a ticket in hand is completed. The next call reopens the counter."""
        return self._set_state(counter, CounterStateName.on_break)

    def apply_policy(self, policy: Policy) -> bool:
        """Apply a gateway policy; False (and nothing logged) when its version is not newer."""
        with self._lock:
            if policy.version <= self._policy_version:
                return False
            profiles: dict[str, Any] = {}
            ignored = []
            for cid, prof in policy.counters.items():
                if cid not in self.configured:
                    ignored.append(cid)
                    continue
                self._check_profile(cid, prof)
                profiles[cid] = prof.model_dump(mode="json")
            now, q = self._begin()
            data = {"version": policy.version, "counters": profiles, "reason": policy.reason,
                    "ignored_counters": ignored}
            self._commit(now, q, [(EventType.policy_applied, data)])
        self._dispatch()
        return True

    def device_event(self, type: str | EventType, data: Mapping[str, Any]) -> Event:
        """Log a device fact (``device.fault`` / ``device.recovered``) in the same ordered log."""
        try:
            etype = EventType(str(type))
        except ValueError:
            raise QueueError(f"unknown event type {type!r}") from None
        if etype not in DEVICE_EVENTS:
            raise QueueError(f"device_event takes {', '.join(DEVICE_EVENTS)}, not {etype}")
        try:
            payload = json.loads(json.dumps(dict(data), ensure_ascii=False))
        except (TypeError, ValueError) as e:
            raise QueueError(f"device event data is not JSON: {e}") from None
        with self._lock:
            now, q = self._begin()
            (ev,) = self._commit(now, q, [(etype, payload)])
        self._dispatch()
        return ev

    def rate(self, ticket: str, day: str, counter: str, service: str, score: int, scale: int,
             reasons: Collection[str] = (), clerk: str | None = None, by: str = "api",
             dossier: str | None = None) -> Event:
        """Log the citizen's rating of a completed ticket (``ticket.rated``, data as the contract says).
        At most one per ticket: a second one, or one for a ticket that is not completed, is a
        :class:`QueueError`. The rating window (:mod:`civiq.edge.rating`) decides when a press counts."""
        if scale not in (4, 5):
            raise QueueError(f"a rating scale has 4 or 5 levels, not {scale!r}")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= scale:
            raise QueueError(f"a score is a whole number from 1 to {scale}, not {score!r}")
        reasons = [str(r) for r in reasons]
        with self._lock:
            t = self._tickets.get((day, ticket))
            if t is None:
                raise QueueError(f"unknown ticket {ticket} of {day}: it cannot be rated")
            if t.status is not TicketStatus.completed:
                raise QueueError(f"ticket {ticket} is {t.status}, not completed: it cannot be rated")
            if t.rated:
                raise QueueError(f"ticket {ticket} is already rated (one rating per ticket)")
            data: dict[str, Any] = {"ticket": ticket, "service": service, "counter": counter, "day": day,
                                    "score": score, "scale": scale, "reasons": list(dict.fromkeys(reasons)),
                                    "clerk": clerk, "by": by}
            if dossier:
                data["dossier"] = dossier
            now, q = self._begin()
            (ev,) = self._commit(now, q, [(EventType.ticket_rated, data)])
        self._dispatch()
        return ev

    def roll_day(self) -> int:
        """Close the waiting tickets of earlier days if the local day changed; returns how many."""
        with self._lock:
            before = len(self._line) + len(self._held)
            self._begin()
            closed = before - len(self._line) - len(self._held)
        self._dispatch()
        return closed

    # =========================================================================================== internals
    def _end(self, counter: str, etype: EventType, extra: Mapping[str, Any] | None = None) -> Ticket:
        with self._lock:
            t = self._in_hand(counter)
            now, q = self._begin()
            item = self._finish(etype, counter, self._eff_for(now))
            if etype is EventType.ticket_no_show:
                item[1].update(recalls=t.recalls, reason="staff")
            item[1].update(extra or {})
            self._commit(now, q, [item])
            result = self._view(t)
        self._dispatch()
        return result

    def _set_state(self, counter: str, state: CounterStateName, by: str | None = None) -> CounterView:
        with self._lock:
            c = self._counter(counter)
            if c.state is state and state is CounterStateName.closed and c.clerk is not None:
                now, q = self._begin()  # closing a closed counter still signs out who sits there
                if c.clerk is not None:
                    self._commit(now, q, [(EventType.clerk_signed_out, {
                        "counter": counter, "clerk": c.clerk, "by": by or "system", "reason": "counter_closed"})])
            elif c.state is not state:
                if state is CounterStateName.on_break and c.state is CounterStateName.closed:
                    raise QueueError(f"counter {counter} is closed: it cannot go on break")
                now, q = self._begin()
                items = []
                if c.ticket is not None and state is not CounterStateName.open:
                    items.append(self._finish(EventType.ticket_completed, counter, self._eff_for(now)))
                etype = {CounterStateName.open: EventType.counter_opened,
                         CounterStateName.closed: EventType.counter_closed,
                         CounterStateName.on_break: EventType.counter_break}[state]
                items.append((etype, {"counter": counter}))
                if state is CounterStateName.closed and c.clerk is not None:
                    items.append((EventType.clerk_signed_out, {"counter": counter, "clerk": c.clerk,
                                                               "by": by or "system", "reason": "counter_closed"}))
                self._commit(now, q, items)
            result = self._counter_view(counter, self._day or "")
        self._dispatch()
        return result

    def _finish(self, etype: EventType, counter: str, eff: datetime) -> tuple[EventType, dict]:
        """The event that ends the counter's ticket in hand (completed / no-show / transferred)."""
        t = self._in_hand(counter)
        return etype, {"ticket": t.label, "service": t.service, "counter": counter, "day": t.day,
                       "service_s": _secs(eff - (t.called_at or eff))}

    def _begin(self) -> tuple[datetime, ClockQuality]:
        """Read the clock for an operation; log a clock jump and the end of earlier days first if needed."""
        now = self.clock.now()
        q = self._quality(now)
        items: list[tuple[EventType, dict]] = []
        if q is ClockQuality.suspect and self._last_clock is not ClockQuality.suspect:
            items.append((EventType.clock_jump, {
                "from": self._eff.isoformat() if self._eff else None, "to": now.isoformat(),
                "reason": "implausible" if not plausible(now) else "backwards"}))
        day = self._day_for(now)
        for t in sorted([*self._line.values(), *self._held.values()], key=lambda t: t.seq):
            if t.day < day:
                items.append((EventType.ticket_no_show, {
                    "ticket": t.label, "service": t.service, "counter": None, "day": t.day,
                    "service_s": None, "recalls": t.recalls, "reason": "day_end"}))
        for cid, c in self._counters.items():
            if c.clerk is not None and (c.clerk_day or "") < day:
                items.append((EventType.clerk_signed_out, {"counter": cid, "clerk": c.clerk, "by": "system",
                                                           "reason": "day_end"}))
        if items:
            self._commit(now, q, items)
        return now, q

    def _commit(self, now: datetime, q: ClockQuality, items: list[tuple[EventType, dict]]) -> list[Event]:
        for etype, data in items:  # who did the work: the clerk signed in at the counter (before this batch)
            if etype in CLERK_WORK and "clerk" not in data:
                c = self._counters.get(data.get("counter") or "")
                if c is not None and c.clerk is not None:
                    data["clerk"] = c.clerk
        if len(items) == 1:
            events = [self.store.append(items[0][0], items[0][1], now, q)]
        else:
            with self.store.transaction() as s:
                events = [s.append(etype, data, now, q) for etype, data in items]
        for ev in events:
            self._apply(ev)
            self._outq.append(ev)
        return events

    def _quality(self, now: datetime) -> ClockQuality:
        if not plausible(now):
            return ClockQuality.suspect
        if self._eff is not None and (self._eff - now).total_seconds() > JUMP_TOLERANCE_S:
            return ClockQuality.suspect
        return self._clock_quality() if self._clock_quality else ClockQuality.unsynced

    def _eff_for(self, ts: datetime) -> datetime:
        if self._eff is None:
            return ts
        return ts if plausible(ts) and ts > self._eff else self._eff

    def _day_for(self, ts: datetime) -> str:
        d = local_day(ts, self.tz)
        if self._day is None:
            return d
        return d if plausible(ts) and d > self._day else self._day

    def _profile(self, counter: str) -> WorkProfile:
        return self._policy_profiles.get(counter) or self.configured.get(counter) or WorkProfile(services=["-"])

    def _check_profile(self, cid: str, prof: WorkProfile) -> None:
        unknown = [s for s in [*prof.services, *(r.service for r in prof.rules)] if s not in self.services]
        if unknown:
            raise QueueError(f"counter {cid}: unknown service(s) {', '.join(sorted(set(unknown)))} in its profile")

    def _counter(self, counter: str) -> _C:
        if counter not in self.configured:
            raise QueueError(f"unknown counter {counter!r} (known: {', '.join(self.configured) or 'none'})")
        return self._counters[counter]

    def _in_hand(self, counter: str) -> _T:
        c = self._counter(counter)
        if c.ticket is None or c.ticket not in self._tickets:
            raise QueueError(f"counter {counter} has no ticket in hand")
        return self._tickets[c.ticket]

    def _counter_view(self, counter: str, day: str) -> CounterView:
        c = self._counter(counter)
        label = c.ticket[1] if c.ticket else None
        return CounterView(counter, c.state, label, tuple(self._profile(counter).services), c.served.get(day, 0))

    def _find(self, label: str, day: str | None) -> _T | None:
        if day is not None:
            return self._tickets.get((day, label))
        today = self._tickets.get((self._day_for(self.clock.now()), label))
        if today is not None:
            return today
        active = [t for t in self._tickets.values()
                  if t.label == label and t.status in (TicketStatus.waiting, TicketStatus.called)]
        return max(active, key=lambda t: t.day, default=None)

    def _ahead(self, t: _T) -> int:
        mine = self._rank(t)
        return sum(1 for o in self._line.values()
                   if o.service == t.service and o.pinned_to == t.pinned_to and self._rank(o) < mine)

    def _eta(self, service: str, ahead: int, eff: datetime) -> float | None:
        waiting: dict[str, int] = {}
        oldest: dict[str, float] = {}
        for t in self._line.values():
            waiting[t.service] = waiting.get(t.service, 0) + 1
            oldest[t.service] = max(oldest.get(t.service, 0.0), (eff - t.since).total_seconds())
        loads = []
        for cid, c in self._counters.items():
            if cid in self.configured:
                prof = self._profile(cid)
                loads.append(CounterLoad(cid, tuple(prof.services), busy=c.ticket is not None, state=str(c.state),
                                         rules=tuple((r.service, r.over_minutes) for r in prof.rules)))
        return estimate_wait_s(ahead, service, self._departures, loads, waiting, eff, self.window_s,
                               oldest_s=oldest)

    def _view(self, t: _T) -> Ticket:
        ahead = eta = None
        if t.status is TicketStatus.waiting:
            ahead = self._ahead(t)
            if t.pinned_to is None:
                eta = self._eta(t.service, ahead, self._eff_for(self.clock.now()))
        return Ticket(label=t.label, service=t.service, number=t.number, day=t.day, status=t.status,
                      issued_at=t.issued_at, counter=t.counter, pinned_to=t.pinned_to, recalls=t.recalls,
                      ahead=ahead, eta_s=eta, wait_s=t.wait_s, service_s=t.service_s, priority=t.priority)

    # ------------------------------------------------------------------------------------------- the fold
    def _apply(self, ev: Event) -> None:
        """Fold one committed event into memory. Used by replay and by live operations alike."""
        self._last_seq = ev.seq
        self._last_clock = ev.clock
        if self._eff is None or (plausible(ev.ts) and ev.ts > self._eff):
            self._eff = ev.ts
        day = self._day_for(ev.ts)
        if day != self._day:
            self._day = day
            for key in [k for k, t in self._tickets.items()
                        if k[0] < day and t.status in (TicketStatus.completed, TicketStatus.no_show)]:
                del self._tickets[key]
        eff = self._eff
        d = ev.data
        try:
            handler = self._HANDLERS.get(ev.type)
            if handler is not None:
                handler(self, ev, d, eff)
        except (KeyError, TypeError, ValueError) as e:  # a malformed old event must not stop a replay
            log.warning("event seq %s (%s) could not be applied: %r", ev.seq, ev.type, e)

    def _on_issued(self, ev: Event, d: dict, eff: datetime) -> None:
        day, service, number = str(d["day"]), str(d["service"]), int(d["number"])
        prio = d.get("priority")
        t = _T(label=str(d["ticket"]), service=service, number=number, day=day, seq=ev.seq, issued_at=ev.ts,
               since=eff, queued_at=eff, priority=str(prio) if prio else None)
        self._tickets[t.key] = t
        self._line[t.key] = t
        self._numbers[(day, service)] = max(self._numbers.get((day, service), 0), number)

    def _resolve(self, d: dict) -> _T | None:
        label = d.get("ticket")
        t = self._tickets.get((d.get("day"), label)) if d.get("day") else None
        if t is None:
            active = [x for x in self._tickets.values()
                      if x.label == label and x.status in (TicketStatus.waiting, TicketStatus.called)]
            t = max(active, key=lambda x: x.day, default=None)
        if t is None:
            log.warning("event for unknown ticket %r ignored", label)
        return t

    def _ctr(self, counter: str | None) -> _C | None:
        if counter is None:
            return None
        return self._counters.setdefault(counter, _C())

    def _on_called(self, ev: Event, d: dict, eff: datetime) -> None:
        t = self._resolve(d)
        if t is None:
            return
        c = self._ctr(d["counter"])
        assert c is not None
        self._line.pop(t.key, None)
        self._held.pop(t.key, None)
        t.status, t.counter, t.pinned_to, t.recalls = TicketStatus.called, d["counter"], None, 0
        t.called_at, t.wait_s, t.service_s, t.last_call = eff, d.get("wait_s"), None, eff
        c.ticket = t.key
        c.state = CounterStateName.open
        c.priority_run = c.priority_run + 1 if t.priority is not None else 0

    def _on_recalled(self, ev: Event, d: dict, eff: datetime) -> None:
        t = self._resolve(d)
        if t is not None:
            t.recalls = int(d.get("recalls", t.recalls + 1))
            t.last_call = eff

    def _on_held(self, ev: Event, d: dict, eff: datetime) -> None:
        t = self._resolve(d)
        if t is None:
            return
        self._line.pop(t.key, None)
        self._leave_counter(t, {"counter": d.get("counter")}, eff)  # not a departure: no service time counted
        t.status, t.counter, t.pinned_to, t.queued_at = TicketStatus.held, d.get("counter"), None, eff
        self._held[t.key] = t

    def _leave_counter(self, t: _T, d: dict, eff: datetime) -> None:
        c = self._ctr(d.get("counter"))
        if c is not None and c.ticket == t.key:
            c.ticket = None
        service_s = d.get("service_s")
        t.service_s = service_s
        if d.get("counter") and isinstance(service_s, int | float):
            self._departures.append(Departure(t.service, d["counter"], eff, float(service_s)))
            horizon = eff - timedelta(seconds=max(self.window_s, ESTIMATE_MEMORY_S))  # the estimate's fallbacks
            while self._departures and self._departures[0].at < horizon:  # eff never goes back: ordered
                self._departures.popleft()

    def _on_completed(self, ev: Event, d: dict, eff: datetime) -> None:
        t = self._resolve(d)
        if t is None:
            return
        self._line.pop(t.key, None)
        self._held.pop(t.key, None)
        self._leave_counter(t, d, eff)
        t.status = TicketStatus.completed
        day = self._day or t.day
        self._served[(day, t.service)] = self._served.get((day, t.service), 0) + 1
        c = self._ctr(d.get("counter"))
        if c is not None:
            c.served[day] = c.served.get(day, 0) + 1

    def _on_rated(self, ev: Event, d: dict, eff: datetime) -> None:
        t = self._tickets.get((d.get("day"), d.get("ticket")))
        if t is not None:
            t.rated = True

    def _on_no_show(self, ev: Event, d: dict, eff: datetime) -> None:
        t = self._resolve(d)
        if t is None:
            return
        self._line.pop(t.key, None)
        self._held.pop(t.key, None)
        self._leave_counter(t, d, eff)
        t.status = TicketStatus.no_show

    def _on_transferred(self, ev: Event, d: dict, eff: datetime) -> None:
        t = self._resolve(d)
        if t is None:
            return
        self._held.pop(t.key, None)
        self._leave_counter(t, d, eff)
        t.service = str(d.get("to_service") or t.service)
        t.pinned_to = d.get("to_counter")
        t.status, t.counter, t.recalls, t.called_at, t.queued_at = TicketStatus.waiting, None, 0, None, eff
        self._line[t.key] = t

    def _on_counter(self, ev: Event, d: dict, eff: datetime) -> None:
        c = self._ctr(d["counter"])
        assert c is not None
        c.state = {EventType.counter_opened: CounterStateName.open,
                   EventType.counter_closed: CounterStateName.closed,
                   EventType.counter_break: CounterStateName.on_break}[ev.type]
        if c.state is CounterStateName.closed:
            c.ticket = None
            for t in self._line.values():
                if t.pinned_to == d["counter"]:
                    t.pinned_to = None

    def _on_signed_in(self, ev: Event, d: dict, eff: datetime) -> None:
        c = self._ctr(d["counter"])
        assert c is not None
        c.clerk, c.clerk_day = str(d["clerk"]), self._day

    def _on_signed_out(self, ev: Event, d: dict, eff: datetime) -> None:
        c = self._ctr(d["counter"])
        if c is not None and c.clerk == d.get("clerk"):
            c.clerk, c.clerk_day = None, None

    def _on_policy(self, ev: Event, d: dict, eff: datetime) -> None:
        self._policy_version = max(self._policy_version, int(d["version"]))
        self._policy_profiles = {cid: WorkProfile.model_validate(p) for cid, p in (d.get("counters") or {}).items()}

    _HANDLERS: dict[EventType, Callable[[QueueEngine, Event, dict, datetime], None]] = {
        EventType.ticket_issued: _on_issued,
        EventType.ticket_called: _on_called,
        EventType.ticket_recalled: _on_recalled,
        EventType.ticket_completed: _on_completed,
        EventType.ticket_no_show: _on_no_show,
        EventType.ticket_transferred: _on_transferred,
        EventType.ticket_held: _on_held,
        EventType.counter_opened: _on_counter,
        EventType.counter_closed: _on_counter,
        EventType.counter_break: _on_counter,
        EventType.policy_applied: _on_policy,
        EventType.clerk_signed_in: _on_signed_in,
        EventType.clerk_signed_out: _on_signed_out,
        EventType.ticket_rated: _on_rated,
    }


@dataclass(frozen=True)
class _Prio:
    priority: str | None


def _secs(delta: timedelta) -> float:
    return round(max(0.0, delta.total_seconds()), 1)
