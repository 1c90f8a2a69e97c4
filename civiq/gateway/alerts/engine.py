"""The alert engine: conditions in, one notification per incident and one recovery out ("never cry wolf").

Two layers, per condition key:

1. **Incident lifecycle** (hold-down). ``pending`` while the problem has been active for less than
   ``raise_after_s``; ``firing`` after that; back to ``resolved`` only once it has been *inactive* for
   ``clear_after_s``. A problem that goes away while pending is dropped silently. Flapping faster than
   ``clear_after_s`` therefore stays one incident.
2. **Notifications** (what on-call has heard). The engine remembers the last state it announced per key
   (``last_sent``) and announces a change only when nothing suppresses it:

   * *flapping*: when an incident for the same key fires for the ``flap_max``-th time within
     ``flap_window_s``, one "flapping" notice goes out instead of that alert, then nothing until the key has
     stayed in one state for ``flap_window_s``, then one final "stable again" notice with the state then.
     Exact bound per flapping episode: ``flap_max - 1`` alerts + ``flap_max - 1`` recoveries + 1 flapping
     notice + 1 final notice.
   * *silences* (maintenance): incidents are tracked but not announced; when the silence ends an incident
     still firing is announced once (note ``after_silence``); one that fired and cleared inside the
     silence is never announced; one announced before and resolved inside it gets its recovery.
   * *stale* (``set_stale(True)``: the gateway lost its broker): no node_offline fires and no recovery goes
     out until fresh data; after ``set_stale(False)`` node_offline waits another ``grace_s`` (about one
     heartbeat timeout) so nodes that are fine have time to say so: no storm after an outage or restart.
     The grace holds only nodes not heard since the data became fresh: a node that said "online" (a birth,
     an alive beat, health) after that and then falls silent alerts on time.
   * *reminders*: with ``renotify_s``, a firing, unacknowledged incident is announced again every
     ``renotify_s``; ``acknowledge`` stops that.

Input: :meth:`AlertEngine.evaluate` takes the conditions known now. A key not mentioned is left as it was
("unknown" is not "fine"). An explicit inactive condition clears a key; :meth:`AlertEngine.resolve_missing`
clears the keys of a node (or center) that a full snapshot no longer mentions (a device removed from the
config). Time only moves through :meth:`AlertEngine.tick`, called every second by the gateway.

Everything (incidents, last announced state, flap counters, silences, acknowledgements) lives in SQLite
(WAL) and is written in the same transaction as the notifications it causes, so a restarted gateway does not
announce again what it already announced, and never forgets to announce a change. Notifications go through
an outbox (``notifications`` + ``deliveries``): one sender thread per channel delivers them in order with
retry and exponential backoff; a channel that is down delays only itself.

>>> from civiq.clock import FakeClock
>>> from civiq.gateway.alerts.conditions import node_condition
>>> e = AlertEngine(":memory:", FakeClock(), [], start=False)
>>> e.evaluate([node_condition("hcm-q1", "pi-1", online=False, reason="will")])
>>> [(a.key, a.state) for a in e.active()]
[('hcm-q1/pi-1/node_offline', 'firing')]
>>> [(n.state, n.summary) for n in e.notifications()]
[('firing', 'Mất kết nối máy trạm / Edge node offline: hcm-q1/pi-1')]
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from civiq.clock import Clock
from civiq.contract import AlertMessage
from civiq.errors import GatewayError
from civiq.gateway.alerts.channels import Channel, ChannelError
from civiq.gateway.alerts.conditions import Condition

log = logging.getLogger(__name__)

Note = Literal["", "flapping", "stable", "reminder", "after_silence"]
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    key TEXT PRIMARY KEY,
    rec TEXT NOT NULL                -- JSON of _Rec
);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL, center TEXT NOT NULL, node TEXT NOT NULL, device TEXT, kind TEXT NOT NULL,
    severity TEXT NOT NULL, summary TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',
    opened_at REAL NOT NULL, fired_at REAL NOT NULL, resolved_at REAL,
    acked_by TEXT, acked_at REAL, flapping INTEGER NOT NULL DEFAULT 0, notified INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS incidents_key ON incidents(key);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    center TEXT NOT NULL, node TEXT, until REAL NOT NULL, reason TEXT NOT NULL, user TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL, note TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    notification_id INTEGER NOT NULL REFERENCES notifications(id),
    channel TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',     -- pending | delivered | expired
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at REAL,
    PRIMARY KEY (notification_id, channel)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(channel, status, notification_id);
"""


class AlertError(GatewayError, ValueError):
    """Bad input to the engine (unknown alert key, a silence ending in the past...). The message says why."""


class AlertNotice(AlertMessage):
    """The message handed to channels: the contract's AlertMessage plus what on-call needs to read it.

    Subscribers that only know :class:`AlertMessage` ignore the extra fields. ``notification_id`` is unique
    per notification: a receiver can drop a repeat (delivery is at least once).
    """

    note: Note = ""
    detail: str = ""
    notification_id: int = 0
    incident_id: int | None = None
    started_at: datetime | None = None
    acked_by: str | None = None


class AlertView(BaseModel):
    """One open alert as shown in the list (pending or firing)."""

    key: str
    center: str
    node: str
    device: str | None
    kind: str
    severity: str
    state: Literal["pending", "firing"]
    summary: str
    detail: str
    since: datetime
    fired_at: datetime | None
    incident_id: int | None
    notified: bool
    acked_by: str | None
    acked_at: datetime | None
    silenced: bool
    flapping: bool
    clearing: bool  # inactive now, waiting out clear_after_s


class IncidentView(BaseModel):
    id: int
    key: str
    center: str
    node: str
    device: str | None
    kind: str
    severity: str
    summary: str
    state: Literal["firing", "resolved"]
    opened_at: datetime
    fired_at: datetime
    resolved_at: datetime | None
    acked_by: str | None
    acked_at: datetime | None
    flapping: bool
    notified: bool


class Silence(BaseModel):
    id: int
    center: str
    node: str | None
    until: datetime
    reason: str
    user: str
    created_at: datetime


@dataclass
class _Rec:
    key: str
    center: str
    node: str
    device: str | None
    kind: str
    severity: str
    summary: str
    detail: str = ""
    state: str = "resolved"  # pending | firing | resolved
    active: bool = False
    active_since: float | None = None
    inactive_since: float | None = None
    incident_id: int | None = None
    fired_at: float | None = None
    last_sent: str | None = None  # None | firing | resolved | flapping
    last_notified_at: float | None = None
    fire_times: list[float] = field(default_factory=list)
    flapping: bool = False
    last_transition_at: float | None = None
    silenced: bool = False  # was suppressed by a silence at the last check
    acked_by: str | None = None
    acked_at: float | None = None

    @classmethod
    def of(cls, c: Condition) -> _Rec:
        return cls(key=c.key, center=c.center, node=c.node, device=c.device, kind=c.kind,
                   severity=c.severity, summary=c.summary, detail=c.detail)


def _dt(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


class AlertEngine:
    """See the module docstring. Thread-safe: one lock around the state and the SQLite connection."""

    def __init__(self, db_path: str | Path, clock: Clock, channels: Sequence[Channel], *,
                 raise_after_s: float = 0, clear_after_s: float = 30, flap_window_s: float = 600,
                 flap_max: int = 3, renotify_s: float | None = None, grace_s: float = 60,
                 stale: bool = False, retry_base_s: float = 1.0, retry_max_s: float = 300.0,
                 max_age_s: float = 86400.0, keep_days: float = 30.0, start: bool = True) -> None:
        for name, v in (("raise_after_s", raise_after_s), ("clear_after_s", clear_after_s),
                        ("flap_window_s", flap_window_s), ("grace_s", grace_s)):
            if v < 0:
                raise AlertError(f"{name} must be >= 0, got {v}")
        if flap_max < 2:
            raise AlertError(f"flap_max must be >= 2 (alerts before damping + 1), got {flap_max}")
        if renotify_s is not None and renotify_s <= 0:
            raise AlertError(f"renotify_s must be > 0 or None, got {renotify_s}")
        self.clock = clock
        self.raise_after_s, self.clear_after_s = raise_after_s, clear_after_s
        self.flap_window_s, self.flap_max, self.renotify_s = flap_window_s, flap_max, renotify_s
        self.grace_s, self.retry_base_s, self.retry_max_s = grace_s, retry_base_s, retry_max_s
        self.max_age_s, self.keep_s = max_age_s, keep_days * 86400

        self.channels: dict[str, Channel] = {}
        for ch in channels:
            base = str(getattr(ch, "name", "") or type(ch).__name__.lower())
            name, i = base, 2
            while name in self.channels:
                name, i = f"{base}#{i}", i + 1
            self.channels[name] = ch

        self.path = str(db_path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._in_tx = False
        self._dirty: set[str] = set()
        self._sent_any = False

        self._recs: dict[str, _Rec] = {}
        for key, raw in self.db.execute("SELECT key, rec FROM alerts"):
            self._recs[key] = _Rec(**json.loads(raw))
        now = self._now()
        self._silences: list[Silence] = [
            self._silence_of(r) for r in self.db.execute(
                "SELECT id, center, node, until, reason, user, created_at FROM silences WHERE until > ?",
                (now,))]
        self._stale = stale
        self._grace_until = 0.0
        self._heard: set[str] = set()  # node_offline keys seen inactive (node heard) since data became fresh
        self._last_housekeeping = 0.0

        self._stop = threading.Event()
        self._wakes: dict[str, threading.Event] = {n: threading.Event() for n in self.channels}
        self._threads: list[threading.Thread] = []
        if start:
            self.start()

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start one sender thread per channel (done by the constructor unless ``start=False``)."""
        if self._threads:
            return
        with self._lock:  # a (re)start is a good moment to retry: forget the backoff of the last run
            self.db.execute("UPDATE deliveries SET next_at=? WHERE status='pending' AND next_at > ?",
                            (self._now(), self._now()))
        for name, ch in self.channels.items():
            t = threading.Thread(target=self._sender, args=(name, ch), name=f"alert-send-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the senders (undelivered notifications stay in the outbox for the next start)."""
        self._stop.set()
        self._kick()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        with self._lock:
            self.db.close()

    def __enter__(self) -> AlertEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ input
    def evaluate(self, conditions: Iterable[Condition]) -> None:
        """Take the conditions known now. Keys not mentioned are left as they were."""
        conditions = list(conditions)
        for c in conditions:
            if not isinstance(c, Condition):
                raise AlertError(f"evaluate() takes Condition objects, got {type(c).__name__}")
        with self._tx() as now:
            for c in conditions:
                if c.kind == "node_offline" and not c.active and not self._stale:
                    self._heard.add(c.key)
                rec = self._recs.get(c.key)
                if rec is None:
                    if not c.active:
                        continue
                    rec = self._recs[c.key] = _Rec.of(c)
                    self._dirty.add(c.key)
                else:
                    rec.severity, rec.summary, rec.detail = c.severity, c.summary, c.detail
                self._observe(rec, c.active, now)
                self._step(rec, now)

    def resolve_missing(self, scope_center: str, scope_node: str | None, keys_present: Iterable[str],
                        kinds: Iterable[str] | None = None) -> list[str]:
        """Mark inactive every open key of a center (or one node) not in ``keys_present``.

        ``kinds`` limits it to some kinds (e.g. ``HEALTH_KINDS`` after a Health message, so a node's
        node_offline is not touched). Returns the keys marked inactive.
        """
        present = set(keys_present)
        only = set(kinds) if kinds is not None else None
        cleared: list[str] = []
        with self._tx() as now:
            for rec in list(self._recs.values()):
                if rec.center != scope_center or (scope_node is not None and rec.node != scope_node):
                    continue
                if rec.key in present or (only is not None and rec.kind not in only):
                    continue
                if rec.state in ("pending", "firing") and rec.active:
                    cleared.append(rec.key)
                    self._observe(rec, False, now)
                    self._step(rec, now)
        return cleared

    def tick(self) -> None:
        """Advance time-based transitions (hold-down, flapping, silences, grace, reminders)."""
        with self._tx() as now:
            before = len(self._silences)
            self._silences = [s for s in self._silences if s.until.timestamp() > now]
            if len(self._silences) != before:
                log.info("alerts: %d silence(s) ended", before - len(self._silences))
            for rec in list(self._recs.values()):
                self._step(rec, now)
            if now - self._last_housekeeping >= 3600:
                self._housekeeping(now)
        self._kick()

    def set_stale(self, stale: bool) -> None:
        """The gateway lost (True) or regained (False) its live data; see the module docstring."""
        with self._lock:
            if stale and not self._stale:
                log.warning("alerts: data is stale: node_offline and recoveries are held")
            if not stale and self._stale:
                self._grace_until = self._now() + self.grace_s
                self._heard.clear()
                log.info("alerts: data is fresh again; node_offline held for %.0f s more", self.grace_s)
            self._stale = stale
        self.tick()

    @property
    def stale(self) -> bool:
        return self._stale

    # ------------------------------------------------------------------------------------ operators
    def acknowledge(self, key: str, user: str) -> AlertView:
        """Someone is on it: no more reminders for this incident (shown in :meth:`active`)."""
        if not user or not user.strip():
            raise AlertError("acknowledge needs the name of the person who takes the alert")
        with self._tx() as now:
            rec = self._recs.get(key)
            if rec is None or rec.state not in ("pending", "firing"):
                raise AlertError(f"no open alert with key {key!r}")
            rec.acked_by, rec.acked_at = user.strip(), now
            self._dirty.add(key)
            if rec.incident_id is not None:
                self._w("UPDATE incidents SET acked_by=?, acked_at=? WHERE id=?", (rec.acked_by, now, rec.incident_id))
            return self._view(rec, now)

    def silence(self, center: str, node: str | None = None, *, until: datetime, reason: str = "",
                user: str = "") -> Silence:
        """Maintenance: alerts of ``center`` (or of one node) are tracked but not announced until ``until``."""
        if not center:
            raise AlertError("a silence needs a center")
        if until.tzinfo is None:
            raise AlertError("silence 'until' must be timezone-aware (UTC)")
        if not user or not user.strip():
            raise AlertError("a silence needs the name of the technician who sets it")
        with self._tx() as now:
            if until.timestamp() <= now:
                raise AlertError(f"silence would end at {until.isoformat()}, which is not in the future")
            cur = self._w("INSERT INTO silences(center, node, until, reason, user, created_at) VALUES (?,?,?,?,?,?)",
                          (center, node, until.timestamp(), reason, user.strip(), now))
            s = Silence(id=cur.lastrowid, center=center, node=node, until=until, reason=reason,
                        user=user.strip(), created_at=_dt(now))
            self._silences.append(s)
            for rec in self._recs.values():
                self._reconcile(rec, now)
            return s

    def unsilence(self, silence_id: int, user: str = "") -> None:
        """End a silence now (an incident still firing is then announced once)."""
        with self._tx() as now:
            if not any(s.id == silence_id for s in self._silences):
                raise AlertError(f"no active silence with id {silence_id}")
            self._w("UPDATE silences SET until=? WHERE id=?", (now, silence_id))
            self._silences = [s for s in self._silences if s.id != silence_id]
            log.info("alerts: silence %d ended early by %s", silence_id, user or "?")
            for rec in list(self._recs.values()):
                self._step(rec, now)
        self._kick()

    # ------------------------------------------------------------------------------------ views
    def active(self) -> list[AlertView]:
        """Open alerts (pending and firing), most severe and oldest first."""
        with self._lock:
            now = self._now()
            views = [self._view(r, now) for r in self._recs.values() if r.state in ("pending", "firing")]
        return sorted(views, key=lambda v: (v.state != "firing", _SEVERITY_ORDER.get(v.severity, 9), v.since))

    def history(self, limit: int = 100) -> list[IncidentView]:
        """Incidents (fired at least once), newest first."""
        with self._lock:
            rows = self.db.execute(
                "SELECT id, key, center, node, device, kind, severity, summary, opened_at, fired_at, resolved_at,"
                " acked_by, acked_at, flapping, notified FROM incidents ORDER BY id DESC LIMIT ?",
                (max(0, int(limit)),)).fetchall()
        return [IncidentView(id=r[0], key=r[1], center=r[2], node=r[3], device=r[4], kind=r[5], severity=r[6],
                             summary=r[7], state="resolved" if r[10] is not None else "firing",
                             opened_at=_dt(r[8]), fired_at=_dt(r[9]), resolved_at=_dt(r[10]), acked_by=r[11],
                             acked_at=_dt(r[12]), flapping=bool(r[13]), notified=bool(r[14])) for r in rows]

    def silences(self) -> list[Silence]:
        with self._lock:
            now = self._now()
            return [s for s in self._silences if s.until.timestamp() > now]

    def notifications(self, limit: int = 1000) -> list[AlertNotice]:
        """Notifications created (oldest first), whatever their delivery state."""
        with self._lock:
            rows = self.db.execute("SELECT id, payload FROM notifications ORDER BY id DESC LIMIT ?",
                                   (max(0, int(limit)),)).fetchall()
        out = []
        for nid, payload in reversed(rows):
            n = AlertNotice.model_validate_json(payload)
            n.notification_id = nid
            out.append(n)
        return out

    def pending_deliveries(self, channel: str | None = None) -> int:
        """Deliveries not yet done (for /metrics and tests)."""
        with self._lock:
            if channel is None:
                return self.db.execute("SELECT count(*) FROM deliveries WHERE status='pending'").fetchone()[0]
            return self.db.execute("SELECT count(*) FROM deliveries WHERE status='pending' AND channel=?",
                                   (channel,)).fetchone()[0]

    def next_attempt_in(self, channel: str) -> float | None:
        """Seconds until the channel's next delivery is due (0 or less: due now); None when nothing is pending.

        Deliveries go out in order, so this is the oldest pending one's time (for tests and diagnostics)."""
        with self._lock:
            row = self.db.execute("SELECT next_at FROM deliveries WHERE status='pending' AND channel=? "
                                  "ORDER BY notification_id LIMIT 1", (channel,)).fetchone()
        return None if row is None else row[0] - self._now()

    def delivery_errors(self) -> dict[str, str]:
        """The last error of each channel that has undelivered notifications."""
        with self._lock:
            rows = self.db.execute("SELECT channel, last_error FROM deliveries WHERE status='pending' AND "
                                   "last_error IS NOT NULL ORDER BY notification_id").fetchall()
        return {ch: err for ch, err in rows}

    # ------------------------------------------------------------------------------------ state machine
    def _observe(self, rec: _Rec, active: bool, now: float) -> None:
        if active:
            if rec.state == "resolved":
                rec.state, rec.active_since = "pending", now
                self._dirty.add(rec.key)
            elif not rec.active:
                self._dirty.add(rec.key)
            rec.inactive_since = None
        else:
            if rec.state == "pending":  # gone before it was confirmed: nobody hears of it
                rec.state, rec.active_since = "resolved", None
                self._dirty.add(rec.key)
            elif rec.state == "firing" and rec.inactive_since is None:
                rec.inactive_since = now
                self._dirty.add(rec.key)
        if rec.active != active:
            rec.active = active
            self._dirty.add(rec.key)

    def _held(self, rec: _Rec, now: float) -> bool:
        return rec.kind == "node_offline" and (self._stale or (now < self._grace_until
                                                               and rec.key not in self._heard))

    def _step(self, rec: _Rec, now: float) -> None:
        if (rec.state == "pending" and rec.active and rec.active_since is not None
                and now - rec.active_since >= self.raise_after_s and not self._held(rec, now)):
            self._fire(rec, now)
        elif (rec.state == "firing" and not rec.active and rec.inactive_since is not None
              and now - rec.inactive_since >= self.clear_after_s and not self._stale):
            self._resolve(rec, now)
        if rec.flapping and rec.last_transition_at is not None and now - rec.last_transition_at >= self.flap_window_s:
            rec.flapping, rec.fire_times = False, []
            self._dirty.add(rec.key)
            log.info("alerts: %s is stable again", rec.key)
        self._reconcile(rec, now)

    def _fire(self, rec: _Rec, now: float) -> None:
        rec.state, rec.fired_at, rec.inactive_since = "firing", now, None
        rec.acked_by = rec.acked_at = None
        rec.fire_times = [t for t in rec.fire_times if now - t < self.flap_window_s] + [now]
        rec.last_transition_at = now
        cur = self._w(
            "INSERT INTO incidents(key, center, node, device, kind, severity, summary, detail, opened_at, fired_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (rec.key, rec.center, rec.node, rec.device, rec.kind, rec.severity, rec.summary, rec.detail,
             rec.active_since if rec.active_since is not None else now, now))
        rec.incident_id = cur.lastrowid
        self._dirty.add(rec.key)
        if not rec.flapping and len(rec.fire_times) >= self.flap_max:
            rec.flapping = True
            self._w("UPDATE incidents SET flapping=1 WHERE id=?", (rec.incident_id,))
            log.warning("alerts: %s is flapping (%d alerts in %.0f s)", rec.key, len(rec.fire_times),
                        self.flap_window_s)
            if not self._silenced(rec, now):
                self._send(rec, "firing", "flapping", now)
        elif rec.flapping:
            self._w("UPDATE incidents SET flapping=1 WHERE id=?", (rec.incident_id,))

    def _resolve(self, rec: _Rec, now: float) -> None:
        rec.state, rec.last_transition_at = "resolved", now
        rec.active_since = rec.inactive_since = None
        rec.acked_by = rec.acked_at = None
        if rec.incident_id is not None:
            self._w("UPDATE incidents SET resolved_at=? WHERE id=?", (now, rec.incident_id))
        self._dirty.add(rec.key)

    def _silenced(self, rec: _Rec, now: float) -> bool:
        return any(s.center == rec.center and (s.node is None or s.node == rec.node) and s.until.timestamp() > now
                   for s in self._silences)

    def _reconcile(self, rec: _Rec, now: float) -> None:
        """Announce what on-call has not heard yet, unless something suppresses it."""
        if rec.flapping:
            return
        if self._silenced(rec, now):
            if not rec.silenced:
                rec.silenced = True
                self._dirty.add(rec.key)
            return
        if rec.silenced:
            rec.silenced = False
            self._dirty.add(rec.key)
            if rec.state == "firing":
                self._send(rec, "firing", "after_silence", now)
                return
        note: Note = "stable" if rec.last_sent == "flapping" else ""
        if rec.state == "firing":
            desired: str | None = "firing"
        elif rec.last_sent in ("firing", "flapping"):
            desired = "resolved"
        else:
            desired = None
        if desired == "resolved" and self._stale:
            return
        if desired is not None and desired != rec.last_sent:
            self._send(rec, desired, note, now)
        elif (desired == "firing" and self.renotify_s is not None and rec.acked_by is None
              and rec.last_notified_at is not None and now - rec.last_notified_at >= self.renotify_s):
            self._send(rec, "firing", "reminder", now)

    def _send(self, rec: _Rec, state: str, note: Note, now: float) -> None:
        notice = AlertNotice(key=rec.key, center=rec.center, node=rec.node, device=rec.device, kind=rec.kind,
                             severity=rec.severity, state=state, summary=rec.summary, ts=_dt(now), note=note,
                             detail=rec.detail, incident_id=rec.incident_id, started_at=_dt(rec.fired_at),
                             acked_by=rec.acked_by)
        cur = self._w("INSERT INTO notifications(created_at, key, state, note, payload) VALUES (?,?,?,?,?)",
                      (now, rec.key, state, note, notice.model_dump_json()))
        nid = cur.lastrowid
        for name in self.channels:
            self._w("INSERT INTO deliveries(notification_id, channel, next_at) VALUES (?,?,?)", (nid, name, now))
        if rec.incident_id is not None and state == "firing":
            self._w("UPDATE incidents SET notified=1 WHERE id=?", (rec.incident_id,))
        rec.last_sent = "flapping" if note == "flapping" else state
        rec.last_notified_at = now
        self._dirty.add(rec.key)
        self._sent_any = True
        log.info("alerts: notify %s %s%s", rec.key, state, f" ({note})" if note else "")

    def _housekeeping(self, now: float) -> None:
        self._last_housekeeping = now
        for key in [k for k, r in self._recs.items() if self._forgettable(r, now)]:
            del self._recs[key]
            self._dirty.discard(key)
            self._w("DELETE FROM alerts WHERE key=?", (key,))
        old = now - self.keep_s
        self._w("DELETE FROM deliveries WHERE notification_id IN (SELECT id FROM notifications WHERE created_at < ?)"
                " AND status != 'pending'", (old,))
        self._w("DELETE FROM notifications WHERE created_at < ? AND id NOT IN (SELECT notification_id FROM deliveries)",
                (old,))
        self._w("DELETE FROM silences WHERE until < ?", (old,))

    def _forgettable(self, r: _Rec, now: float) -> bool:
        return (r.state == "resolved" and not r.flapping and not r.silenced and r.last_sent in (None, "resolved")
                and (r.last_transition_at is None or now - r.last_transition_at >= self.flap_window_s))

    def _view(self, r: _Rec, now: float) -> AlertView:
        return AlertView(key=r.key, center=r.center, node=r.node, device=r.device, kind=r.kind, severity=r.severity,
                         state=r.state, summary=r.summary, detail=r.detail, since=_dt(r.active_since or now),
                         fired_at=_dt(r.fired_at) if r.state == "firing" else None, incident_id=r.incident_id
                         if r.state == "firing" else None, notified=r.last_sent in ("firing", "flapping"),
                         acked_by=r.acked_by, acked_at=_dt(r.acked_at), silenced=self._silenced(r, now),
                         flapping=r.flapping, clearing=r.state == "firing" and not r.active)

    # ------------------------------------------------------------------------------------ persistence
    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _w(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        if not self._in_tx:
            self.db.execute("BEGIN IMMEDIATE")
            self._in_tx = True
        return self.db.execute(sql, args)

    @contextmanager
    def _tx(self) -> Iterator[float]:
        """Run a state change; its SQLite writes (records, incidents, notifications) commit together."""
        with self._lock:
            self._sent_any = False
            try:
                yield self._now()
                for key in self._dirty:
                    rec = self._recs.get(key)
                    if rec is not None:
                        self._w("INSERT OR REPLACE INTO alerts(key, rec) VALUES (?, ?)",
                                (key, json.dumps(rec.__dict__, ensure_ascii=False)))
                if self._in_tx:
                    self.db.execute("COMMIT")
            except BaseException:
                if self._in_tx:
                    self.db.execute("ROLLBACK")
                raise
            finally:
                self._in_tx = False
                self._dirty.clear()
            sent = self._sent_any
        if sent:
            self._kick()

    @staticmethod
    def _silence_of(r: tuple) -> Silence:
        return Silence(id=r[0], center=r[1], node=r[2], until=_dt(r[3]), reason=r[4], user=r[5],
                       created_at=_dt(r[6]))

    # ------------------------------------------------------------------------------------ sender
    def _kick(self) -> None:
        for ev in self._wakes.values():
            ev.set()

    def _next_delivery(self, name: str) -> tuple | None:
        with self._lock:
            if self._stop.is_set():
                return None
            return self.db.execute(
                "SELECT d.notification_id, d.attempts, d.next_at, n.created_at, n.payload FROM deliveries d"
                " JOIN notifications n ON n.id = d.notification_id"
                " WHERE d.channel=? AND d.status='pending' ORDER BY d.notification_id LIMIT 1", (name,)).fetchone()

    def _mark(self, sql: str, args: tuple) -> None:
        with self._lock:
            self.db.execute(sql, args)

    def _sender(self, name: str, ch: Channel) -> None:
        """Deliver this channel's notifications in order; retry with backoff; never die."""
        wake = self._wakes[name]
        while not self._stop.is_set():
            try:
                row = self._next_delivery(name)
                now = self._now()
                if row is None:
                    wake.wait(1.0)
                    wake.clear()
                    continue
                nid, attempts, next_at, created_at, payload = row
                if now - created_at > self.max_age_s:
                    log.error("alerts: giving up on notification %d to %s after %d attempts (older than %.0f s)",
                              nid, name, attempts, self.max_age_s)
                    self._mark("UPDATE deliveries SET status='expired' WHERE notification_id=? AND channel=?",
                               (nid, name))
                    continue
                if next_at > now:
                    wake.wait(min(1.0, next_at - now))
                    wake.clear()
                    continue
                notice = AlertNotice.model_validate_json(payload)
                notice.notification_id = nid
                try:
                    ch.send(notice)
                except Exception as e:  # noqa: BLE001 - any failure is retried later
                    attempts += 1
                    delay = min(self.retry_max_s, self.retry_base_s * 2 ** (attempts - 1))
                    if isinstance(e, ChannelError) and e.retry_after:
                        delay = max(delay, e.retry_after)
                    log.warning("alerts: %s: notification %d failed (attempt %d, retry in %.0f s): %s",
                                name, nid, attempts, delay, e)
                    self._mark("UPDATE deliveries SET attempts=?, next_at=?, last_error=? "
                               "WHERE notification_id=? AND channel=?",
                               (attempts, self._now() + delay, str(e)[:500], nid, name))
                else:
                    self._mark("UPDATE deliveries SET status='delivered', attempts=?, delivered_at=?, last_error=NULL"
                               " WHERE notification_id=? AND channel=?", (attempts + 1, self._now(), nid, name))
            except sqlite3.ProgrammingError:
                return  # database closed under us: we are shutting down
            except Exception:  # noqa: BLE001
                log.exception("alerts: sender %s hit an unexpected error", name)
                wake.wait(1.0)
                wake.clear()
