"""The people of ``civiq demo``: citizens who take numbers, clerks who call them, a technician with paper.

Everyone acts on the simulated hardware only, through the same paths a real center uses: a citizen presses
the dispenser button of a service (``SimHardware.press_button``: a GPIO edge, debounced by the dispenser), a
clerk presses keys on the counter's keypad (``SimHardware.press_key``: a GPIO keypad or an RS-485 call pad),
the technician changes the printer's paper sensor (``SimHardware.set_printer``). What they *see* is read from
the agent's queue engine, like a clerk looking at the display.

* Citizens arrive as a Poisson process per service whose rate follows the day (:func:`arrival_factor`);
  about :data:`PRIORITY_SHARE` of them are elderly, disabled, pregnant or people with meritorious service and
  press their priority button before the service button (a priority ticket, called first). Arrivals are
  closed before 7:30 and from 17:00, a crowd at the doors at opening, peaks 8-10h and 14-16h, quiet at lunch
  (11:30-13:00). A citizen whose press is refused (printer out of paper) tries again a few minutes later.
* A clerk calls the next citizen when free and someone waits for one of the counter's services, serves for a
  lognormal time around the service's mean, presses *done*. Some called citizens have left: the clerk
  recalls twice, then presses *no-show*. Clerks with a lunch slot go on break; after 17:00 they serve who
  is still waiting (until 17:45 at the latest), then close the counter; at 7:30 they open it again.
  Each clerk signs in at their counter when it is open (a call pad: the sign-in key with their code typed; a
  GPIO keypad has no digits: the counter API, as from the clerk's PC), so the demo's events carry ``clerk``;
  closing the counter signs them out.
* After the clerk ends their ticket, most citizens (:data:`RATE_SHARE`) rate the service on the counter's
  rating device (``SimHardware.rate``: the GPIO keys, the RS-485 pad's keys or the page's faces, as a
  citizen presses them), mostly 4 or 5 (:data:`SCORE_WEIGHTS`); a low score comes with one or two reasons
  when the device has reason keys (:data:`REASON_WEIGHTS`).

All times are simulated (the shared ``ScaledClock``); presses are real-time events on the simulated pins.

    >>> arrival_factor(6.0), arrival_factor(9.0), arrival_factor(12.0) < 0.2, arrival_factor(17.5)
    (0.0, 1.0, True, 0.0)
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from civiq.dev.demo_centers import CounterPlan, DemoCenter

log = logging.getLogger("civiq.dev.demo")

OPEN_H = 7.5
CLOSE_H = 17.0
LAST_CALL_H = 17.75  # clerks serve who still waits at closing time, but not past this
# (local hour, arrivals relative to the peak rate), linear in between; zero outside opening hours
CURVE: list[tuple[float, float]] = [
    (7.5, 2.2), (7.65, 0.8), (8.0, 1.0), (10.0, 1.0), (10.5, 0.7), (11.49, 0.4), (11.5, 0.12),
    (13.0, 0.12), (13.5, 0.5), (14.0, 1.0), (16.0, 1.0), (16.5, 0.55), (17.0, 0.3),
]
RECALL_AFTER_MIN = 1.5  # a clerk waits this long for a called citizen before recalling
REFUSED_RETRY_MIN = (2.0, 5.0)
REFUSED_GIVE_UP_MIN = 45.0
PRIORITY_SHARE = 0.07  # citizens who take a priority ticket (elderly first: the most common)
PRIORITY_WEIGHTS = {"elderly": 6, "disabled": 2, "pregnant": 2, "merit": 1}
KEY_SETTLE_S = 1.0  # real seconds a clerk waits for a key press to show before trying again
RATE_SHARE = 0.8  # citizens who rate the service after their ticket
SCORE_WEIGHTS = {5: 46, 4: 34, 3: 10, 2: 6, 1: 4}  # mostly satisfied, as the province's surveys find
REASON_WEIGHTS = {"wait": 5, "guidance": 3, "appointments": 2, "attitude": 1, "facilities": 1}


def arrival_factor(hour: float) -> float:
    """Arrival rate at local ``hour`` (7.5 = 07:30) relative to the peak rate."""
    if hour < OPEN_H or hour >= CLOSE_H:
        return 0.0
    for (h0, f0), (h1, f1) in zip(CURVE, CURVE[1:], strict=False):
        if h0 <= hour < h1:
            return f0 + (f1 - f0) * (hour - h0) / (h1 - h0)
    return CURVE[-1][1]


def hours(local: datetime) -> float:
    return local.hour + local.minute / 60 + local.second / 3600


def hhmm(text: str) -> float:
    h, m = text.split(":")
    return int(h) + int(m) / 60


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth; ``lam`` is small here: arrivals in one tick)."""
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-min(lam, 30.0)), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def lognormal_minutes(rng: random.Random, mean_min: float, sigma: float = 0.5) -> float:
    """A service time with mean ``mean_min``: most short, a few long; clipped to 1-4x the mean."""
    mu = math.log(mean_min) - sigma * sigma / 2
    return min(max(rng.lognormvariate(mu, sigma), min(1.0, mean_min / 2)), 4 * mean_min)


class Clerk:
    """The civil servant at one counter, acting on its keypad. ``step`` is called many times a second."""

    def __init__(self, plan: CounterPlan, keypad: str, center: DemoCenter, rng: random.Random,
                 press: Callable[[str, str], None]) -> None:
        self.plan = plan
        self.keypad = keypad
        self.rng = rng
        self.press = press
        self.means = {s.prefix: s.service_min for s in center.services}
        self.no_show_rate = center.no_show_rate
        self.lunch = (hhmm(plan.lunch[0]), hhmm(plan.lunch[1])) if plan.lunch else None
        self.ticket: str | None = None
        self.absent = False  # the called citizen has left
        self.recalls = 0
        self.until: datetime | None = None
        self._pending: tuple[tuple[str, str | None], float] | None = None  # (view at press, real deadline)

    def _key(self, action: str, seen: tuple[str, str | None], settle_s: float = KEY_SETTLE_S) -> None:
        try:
            self.press(self.keypad, action)
        except Exception:  # noqa: BLE001 - a refused key is what staff see as an error beep; try again later
            log.exception("clerk at %s: pressing %s failed", self.plan.id, action)
        self._pending = (seen, time.monotonic() + settle_s)

    def step(self, now: datetime, h: float, state: str, ticket: str | None, services: list[str],
             waiting: dict[str, int], service_of: Callable[[str], str | None]) -> None:
        seen = (state, ticket)
        if self._pending is not None:
            before, deadline = self._pending
            if seen == before and time.monotonic() < deadline:
                return  # the key press has not shown yet (serial pads are polled)
            self._pending = None
        in_hours = OPEN_H <= h < CLOSE_H
        at_lunch = self.lunch is not None and self.lunch[0] <= h < self.lunch[1]
        if ticket is not None:
            if ticket != self.ticket:  # just called (by this keypad or from the dashboard)
                self.ticket, self.recalls = ticket, 0
                self.absent = self.rng.random() < self.no_show_rate
                minutes = RECALL_AFTER_MIN if self.absent else lognormal_minutes(
                    self.rng, self.means.get(service_of(ticket) or "", 8.0))
                self.until = now + timedelta(minutes=minutes)
            if self.until is not None and now < self.until:
                return
            if self.absent and self.recalls < 2:
                self.recalls += 1
                self.until = now + timedelta(minutes=RECALL_AFTER_MIN)
                self._key("recall", seen, settle_s=0.3)
            else:
                self._key("no_show" if self.absent else "done", seen)
            return
        self.ticket = None
        someone = any(waiting.get(s, 0) for s in services)
        if state == "closed":
            if in_hours and not at_lunch and h < CLOSE_H - 0.5:
                self._key("open", seen)
            return
        if at_lunch and in_hours:
            if state != "break":
                self._key("break", seen)
            return
        if state == "break":
            self._key("open", seen)
            return
        if not in_hours and (not someone or h >= LAST_CALL_H or h < OPEN_H):
            self._key("close", seen)  # the day is over and nobody is left for this counter
            return
        if someone:
            self._key("next", seen)


class CenterPeople(threading.Thread):
    """Citizens, clerks and (for the failing-printer center) a technician for one center's agent.

    ``agent`` is an :class:`~civiq.edge.agent.EdgeAgent` made by ``make_agent(cfg, simulate=True)``; its
    ``sim`` is the hardware they touch and its ``engine`` what they look at.
    """

    def __init__(self, center: DemoCenter, agent, clock, tick_s: float = 0.05,  # noqa: ANN001
                 notes: deque[str] | None = None) -> None:
        super().__init__(name=f"people-{center.id}", daemon=True)
        self.center = center
        self.agent = agent
        self.sim = agent.sim
        self.engine = agent.engine
        self.clock = clock
        self.tz = ZoneInfo(agent.cfg.center.timezone)
        self.tick_s = tick_s
        self.rng = random.Random(center.seed)
        self.notes = notes if notes is not None else deque(maxlen=20)
        self.clerks = [Clerk(p, center.keypad_of(p.id), center, random.Random(center.seed * 31 + i), self._press_key)
                       for i, p in enumerate(center.counters)]
        self.presses = 0
        self.refused = 0
        self.gave_up = 0
        self._retry: list[tuple[datetime, datetime, str]] = []  # (retry at, first try, service)
        self._halt = threading.Event()
        self._last: datetime | None = None
        self._sign_in_at: dict[str, float] = {}  # counter -> real time of the clerk's last sign-in attempt
        self.ratings = 0
        self._served: deque[tuple[str, str]] = deque(maxlen=500)  # (counter, ticket) just completed
        cfg = agent.cfg
        self._pads: dict[str, list] = {}
        for r in getattr(cfg, "ratingpads", []):
            self._pads.setdefault(r.counter, []).append(r)
        self._low_max = cfg.rating.low_max() if getattr(cfg, "rating", None) is not None else 0
        self._unsubscribe = self.engine.subscribe(self._on_event) if self._pads else None

    def stop(self) -> None:
        self._halt.set()
        if self._unsubscribe is not None:
            self._unsubscribe()

    def run(self) -> None:
        while not self._halt.wait(self.tick_s):
            try:
                self.step()
            except Exception:  # noqa: BLE001 - the demo's people must not die of one bad step
                log.exception("%s: simulation step", self.center.id)

    # ------------------------------------------------------------------------------------ one tick
    def step(self) -> None:
        now = self.clock.now()
        last, self._last = self._last, now
        local = now.astimezone(self.tz)
        h = hours(local)
        if last is not None:
            self._technician(last, now)
            self._citizens(now, (now - last).total_seconds(), h)
        snap = self.engine.snapshot()
        waiting = {s: q.waiting for s, q in snap.services.items()}
        for clerk in self.clerks:
            cid = clerk.plan.id
            c = snap.counters.get(cid)
            if c is None:
                continue
            if str(c.state) != "closed" and OPEN_H <= h < LAST_CALL_H and self.engine.clerk_at(cid) is None:
                self._sign_in(cid)
            services = list(self.engine.profile(cid).services)
            clerk.step(now, h, str(c.state), c.ticket, services, waiting, self._service_of)
        self._rate()
        self._trim_printouts()

    def _service_of(self, label: str) -> str | None:
        t = self.engine.ticket(label)
        return t.service if t else None

    def _citizens(self, now: datetime, dt_s: float, h: float) -> None:
        factor = arrival_factor(h)
        if factor > 0 and dt_s > 0:
            for s in self.center.services:
                for _ in range(poisson(self.rng, s.peak_per_h * factor * dt_s / 3600)):
                    self._take_number(now, now, s.prefix)
        due = [r for r in self._retry if r[0] <= now]
        if due:
            self._retry = [r for r in self._retry if r[0] > now]
            for _, first, service in due:
                if factor == 0 or (now - first).total_seconds() > REFUSED_GIVE_UP_MIN * 60:
                    self.gave_up += 1  # asks at the reception desk instead, or comes back tomorrow
                    continue
                self._take_number(now, first, service)

    def _take_number(self, now: datetime, first: datetime, service: str) -> None:
        before = self.agent.refused_presses
        buttons = self.agent.cfg.dispenser.priority_buttons if self.agent.cfg.dispenser else {}
        classes = [c for c in PRIORITY_WEIGHTS if c in buttons]
        priority = None
        if classes and self.rng.random() < PRIORITY_SHARE:
            priority = self.rng.choices(classes, weights=[PRIORITY_WEIGHTS[c] for c in classes])[0]
        self.sim.press_button(service, priority)
        self.presses += 1
        if self.agent.refused_presses > before:  # no ticket came out
            self.refused += 1
            wait = self.rng.uniform(*REFUSED_RETRY_MIN)
            self._retry.append((now + timedelta(minutes=wait), first, service))

    def _press_key(self, keypad: str, action: str) -> None:
        self.sim.press_key(keypad, action)

    def _on_event(self, ev) -> None:  # noqa: ANN001 - an engine subscriber: only note it, act in step()
        if ev.type == "ticket.completed" and ev.data.get("counter") in self._pads:
            self._served.append((str(ev.data["counter"]), str(ev.data.get("ticket"))))

    def _rate(self) -> None:
        """The citizens just served rate the service (most of them) on their counter's rating device."""
        while self._served:
            counter, _ticket = self._served.popleft()
            if self.rng.random() >= RATE_SHARE:
                continue
            pad = self.rng.choice(self._pads[counter])
            score = self.rng.choices(list(SCORE_WEIGHTS), weights=list(SCORE_WEIGHTS.values()))[0]
            reasons: list[str] = []
            offered = list(self.agent.cfg.rating.reasons) if pad.kind == "page" else list(
                getattr(pad, "reason_keys", {}))
            offered = [r for r in offered if r in REASON_WEIGHTS] or offered
            if score <= self._low_max and offered:
                for _ in range(self.rng.choice((1, 1, 2))):
                    r = self.rng.choices(offered, weights=[REASON_WEIGHTS.get(x, 1) for x in offered])[0]
                    if r not in reasons:
                        reasons.append(r)
            try:
                self.sim.rate(pad.id, score, reasons)
                self.ratings += 1
            except Exception:  # noqa: BLE001 - a citizen who could not rate just leaves
                log.exception("%s: rating on %s failed", self.center.id, pad.id)

    def _sign_in(self, counter: str) -> None:
        """The counter's clerk signs in (at most one try every 2 s: a call pad is polled)."""
        if time.monotonic() - self._sign_in_at.get(counter, -1e9) < 2.0:
            return
        self._sign_in_at[counter] = time.monotonic()
        _clerk, _name, code = self.center.clerk_of(counter)
        keypad = self.center.keypad_of(counter)
        try:
            if any(k.id == keypad and k.kind == "serial" for k in self.agent.cfg.keypads):
                self.sim.press_key(keypad, "sign_in", code)
            else:
                self.agent.sign_in_code(counter, code, by="api")
        except Exception:  # noqa: BLE001 - tried again in a moment
            log.exception("%s: the clerk of %s could not sign in", self.center.id, counter)

    def _technician(self, last: datetime, now: datetime) -> None:
        """Printer faults on schedule: paper near end, then out; refilled ``refill_after_min`` later."""
        for f in self.center.printer_faults:
            day = now.astimezone(self.tz).replace(hour=0, minute=0, second=0, microsecond=0)
            near = day + timedelta(hours=hhmm(f.near_end))
            out = day + timedelta(hours=hhmm(f.out))
            refill = out + timedelta(minutes=f.refill_after_min)
            if last < near <= now:
                self.sim.set_printer("p1", paper_near_end=True)
                self._note(now, "printer p1: paper near end")
            if last < out <= now:
                self.sim.set_printer("p1", paper_near_end=True, paper_out=True)
                self._note(now, "printer p1: out of paper, no tickets until it is refilled")
            if last < refill <= now:
                self.sim.set_printer("p1", paper_near_end=False, paper_out=False)
                self._note(now, "technician refilled printer p1")

    def _note(self, now: datetime, text: str) -> None:
        line = f"{now.astimezone(self.tz):%H:%M} {self.center.name}: {text}"
        self.notes.append(line)
        log.info("%s", line)

    def _trim_printouts(self) -> None:
        """The printer emulator keeps every ticket it cut (with its image): keep only the last few."""
        for emu in self.sim.emulators.values():
            tickets = getattr(emu, "tickets", None)
            if isinstance(tickets, list) and len(tickets) > 50:
                del tickets[:-20]
