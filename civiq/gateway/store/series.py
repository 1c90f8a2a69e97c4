"""The gateway's embedded time-series store: one SQLite file (WAL).

Tables (docs/timeseries.md has the full description):

* ``events`` — every edge event once: ``PRIMARY KEY (center, node, seq)`` and ``INSERT OR IGNORE``, so a
  re-sent event is recognised as a duplicate, across restarts. Ticket fields the balancer needs
  (service, counter, wait_s, service_s) are columns, indexed by ``(center, ts)`` and ``(center, type, ts)``.
* ``seqs`` — per node the highest *contiguous* seq stored (1..n all present) and the highest seq known;
  ``contiguous < max_seq`` is a gap (see :meth:`SeriesStore.gaps`).
* ``minute`` — one value per series per minute (last value wins): queue waits per service, served per
  counter, device health codes (0 ok, 1 degraded, 2 failed, 3 offline), a few host numbers.
* ``meta`` — the saved live state.
* ``fc_days``, ``fc_arrivals``, ``fc_times`` — the load-balancing forecast's inputs (arrivals per local hour,
  counter-time sums), updated in the same transaction as the events they count
  (:mod:`civiq.gateway.balance.aggregates`; :meth:`SeriesStore.forecast` reads them).

Writes are grouped: ``with store.batch(): ...`` makes everything inside one transaction (the ingest's
writer commits a burst of up to 1000 messages at once). Reads use a connection per thread, so the web
layer never waits for the writer (WAL readers do not block).

>>> import tempfile, pathlib
>>> tmp = tempfile.TemporaryDirectory()
>>> st = SeriesStore(pathlib.Path(tmp.name) / "s.db")
>>> ev = Event(seq=1, ts=datetime(2026, 1, 5, 1, tzinfo=UTC), type="ticket.issued", data={"service": "a"})
>>> st.add_event("c1", "pi-1", ev), st.add_event("c1", "pi-1", ev)
(True, False)
>>> st.close(); tmp.cleanup()
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from civiq.clock import DEFAULT_TZ, plausible
from civiq.contract import Event, Health, QueueSnapshot
from civiq.gateway.balance import aggregates

DEVICE_STATE_CODE = {"ok": 0, "degraded": 1, "failed": 2, "offline": 3}

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    center    TEXT NOT NULL,
    node      TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    ts        REAL NOT NULL,          -- epoch seconds UTC (edge time; receive time if the edge clock was wrong)
    type      TEXT NOT NULL,
    service   TEXT,
    counter   TEXT,
    ticket    TEXT,
    wait_s    REAL,
    service_s REAL,
    data      TEXT NOT NULL,
    received  REAL NOT NULL,
    PRIMARY KEY (center, node, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_center_ts ON events(center, ts);
CREATE INDEX IF NOT EXISTS events_center_type_ts ON events(center, type, ts);
CREATE TABLE IF NOT EXISTS seqs (
    center     TEXT NOT NULL,
    node       TEXT NOT NULL,
    contiguous INTEGER NOT NULL,
    max_seq    INTEGER NOT NULL,
    PRIMARY KEY (center, node)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minute (
    metric    TEXT NOT NULL,
    center    TEXT NOT NULL,
    key       TEXT NOT NULL DEFAULT '',
    node      TEXT NOT NULL DEFAULT '',
    ts_minute INTEGER NOT NULL,       -- epoch seconds UTC, a multiple of 60
    value     REAL NOT NULL,
    PRIMARY KEY (center, metric, key, node, ts_minute)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS minute_ts ON minute(ts_minute);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

TICKET_TYPES = ("ticket.issued", "ticket.called", "ticket.recalled", "ticket.no_show", "ticket.transferred",
                "ticket.completed", "ticket.held")


@dataclass(frozen=True)
class SeqState:
    """``contiguous``: every seq 1..contiguous is stored. ``max_seq``: the highest seq known to exist."""

    contiguous: int
    max_seq: int

    @property
    def missing(self) -> int:
        return max(0, self.max_seq - self.contiguous)


@dataclass(frozen=True)
class StoredEvent:
    center: str
    node: str
    seq: int
    ts: datetime
    type: str
    service: str | None
    counter: str | None
    ticket: str | None
    wait_s: float | None
    service_s: float | None
    data: dict[str, Any]


@dataclass(frozen=True)
class MinutePoint:
    metric: str
    center: str
    key: str
    node: str
    ts: datetime
    value: float


def _epoch(ts: datetime) -> float:
    return (ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts).timestamp()


def _num(v: Any) -> float | None:
    """A finite float from untrusted data, else None (a device can send anything in ``data``)."""
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def _str(v: Any) -> str | None:
    return None if v is None else str(v)[:64]


def event_time(ts: datetime, received: datetime) -> datetime:
    """The time an event is filed under: its own ``ts`` unless the edge clock was implausible (1970)."""
    t = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts
    return t if plausible(t) else received


class SeriesStore:
    """See the module docstring. ``path`` must be a file (WAL needs one)."""

    def __init__(self, path: str | Path, retention_days: int = 90, tz: str = DEFAULT_TZ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retention_days = retention_days
        self.tz = tz
        self._lock = threading.RLock()
        self._depth = 0
        self._w = self._connect()
        # the writer touches every center's pages in each batch: a province's worth stays in memory (64 MiB;
        # the default 2 MiB made a 3,300-center batch read pages back from the OS: 1.5x the time)
        self._w.execute("PRAGMA cache_size=-65536")
        # checkpoint every ~40 MiB of WAL, not every 4 MiB: a batch of a province's events dirties pages all
        # over the three event B-trees, and the same hot pages are copied back to the database once per
        # checkpoint instead of ten times (13 % less wall time for the writer's store work at 3,300 centers
        # here). Durability is the WAL's, whatever the checkpoint interval.
        self._w.execute("PRAGMA wal_autocheckpoint=10000")
        self._w.executescript(SCHEMA)
        self._w.executescript(aggregates.SCHEMA)
        self._tally = aggregates.Tally(tz)  # forecast tallies of the open transaction's new events
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = [self._w]
        # per node: contiguous/max, and the stored seqs above contiguous+1 (only while there is a gap)
        self._seq: dict[tuple[str, str], list[int]] = {}
        self._above: dict[tuple[str, str], set[int]] = {}
        self._dirty: set[tuple[str, str]] = set()
        for c, n, contiguous, max_seq in self._w.execute("SELECT center, node, contiguous, max_seq FROM seqs"):
            self._seq[(c, n)] = [contiguous, max_seq]
            if max_seq > contiguous:
                rows = self._w.execute(
                    "SELECT seq FROM events WHERE center=? AND node=? AND seq>?", (c, n, contiguous))
                self._above[(c, n)] = {r[0] for r in rows}

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _r(self) -> sqlite3.Connection:
        """A read connection for the calling thread (the writer thread reads through its own)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
            with self._lock:
                self._conns.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            for db in self._conns:
                try:
                    db.close()
                except sqlite3.Error:
                    pass
            self._conns.clear()

    # ------------------------------------------------------------------------------------- transactions
    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for everything inside (nested calls join the outer one)."""
        with self._lock:
            if self._depth == 0:
                self._w.execute("BEGIN")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._w.execute("ROLLBACK")
                    self._reload_seqs()
                    self._tally.clear()
                raise
            self._depth -= 1
            if self._depth == 0:
                try:
                    self._flush_seqs()
                    self._tally.flush(self._w)
                    self._w.execute("COMMIT")
                except BaseException:  # e.g. disk full: nothing of the batch stays half-written
                    if self._w.in_transaction:
                        self._w.execute("ROLLBACK")
                    self._reload_seqs()
                    self._tally.clear()
                    raise

    def _reload_seqs(self) -> None:
        self._dirty.clear()
        self._seq.clear()
        self._above.clear()
        for c, n, contiguous, max_seq in self._w.execute("SELECT center, node, contiguous, max_seq FROM seqs"):
            self._seq[(c, n)] = [contiguous, max_seq]

    def _flush_seqs(self) -> None:
        if self._dirty:
            self._w.executemany(
                "INSERT INTO seqs(center, node, contiguous, max_seq) VALUES (?,?,?,?)"
                " ON CONFLICT(center, node) DO UPDATE SET contiguous=excluded.contiguous, max_seq=excluded.max_seq",
                [(c, n, *self._seq[(c, n)]) for c, n in self._dirty],
            )
            self._dirty.clear()

    # ------------------------------------------------------------------------------------- events
    def add_event(self, center: str, node: str, ev: Event, received: datetime | None = None) -> bool:
        """Store an event; True if it was new, False if (center, node, seq) was already stored."""
        rcv = received or datetime.now(UTC)
        with self._lock:
            if self._depth:  # inside a batch: the fast path the ingest's writer uses
                return self._insert(center, node, ev, rcv)
            with self.batch():
                return self._insert(center, node, ev, rcv)

    def add_events(self, items: Iterable[tuple[str, str, Event]], received: datetime | None = None) -> list[bool]:
        """Store several events in one transaction; one ``new?`` flag per event, in order."""
        rcv = received or datetime.now(UTC)
        with self.batch():
            return [self._insert(center, node, ev, rcv) for center, node, ev in items]

    _INSERT = ("INSERT OR IGNORE INTO events(center, node, seq, ts, type, service, counter, ticket,"
               " wait_s, service_s, data, received) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")

    @staticmethod
    def _row(center: str, node: str, ev: Event, rcv: datetime) -> tuple[Any, ...]:
        d = ev.data if isinstance(ev.data, dict) else {}
        return (center, node, ev.seq, _epoch(event_time(ev.ts, rcv)), str(ev.type), _str(d.get("service")),
                _str(d.get("counter")), _str(d.get("ticket")), _num(d.get("wait_s")),
                _num(d.get("service_s")), json.dumps(d, ensure_ascii=False, default=str), _epoch(rcv))

    def _insert(self, center: str, node: str, ev: Event, rcv: datetime) -> bool:
        row = self._row(center, node, ev, rcv)
        cur = self._w.execute(self._INSERT, row)
        if cur.rowcount == 1:
            self._note_seq(center, node, ev.seq)
            self._note_forecast(center, row[3], row[4], ev.data if isinstance(ev.data, dict) else {})
            return True
        return False

    def add_event_batch(self, items: list[tuple[str, str, Event, datetime]]) -> list[bool]:
        """Store several events; ``new?`` per event, in order. The ingest's writer calls this once per batch.

        An event whose seq is above every seq known for its node (the live case: a node's next event) cannot
        be stored yet, so all of those go in with **one** ``executemany`` (one call into SQLite, where the
        per-event calls each gave the GIL away and waited to get it back from paho's busy thread); the rest
        (repeats, gap fills, a node's older events) one by one with ``INSERT OR IGNORE``, which decides.

        >>> import tempfile, pathlib
        >>> st = SeriesStore(pathlib.Path(tempfile.mkdtemp()) / "s.db")
        >>> t = datetime(2026, 1, 5, 1, tzinfo=UTC)
        >>> evs = [Event(seq=q, ts=t, type="ticket.issued") for q in (1, 2, 2, 5, 3, 1)]
        >>> st.add_event_batch([("c1", "pi-1", e, t) for e in evs])
        [True, True, False, True, True, False]
        >>> st.node_seq("c1", "pi-1")
        SeqState(contiguous=3, max_seq=5)
        """
        out = [False] * len(items)
        with self.batch():
            fast: list[int] = []
            rows: list[tuple[Any, ...]] = []
            top: dict[tuple[str, str], int] = {}
            later: list[int] = []
            for i, (c, n, ev, rcv) in enumerate(items):
                key = (c, n)
                high = top.get(key)
                if high is None:
                    st = self._seq.get(key)
                    high = st[1] if st else 0
                if ev.seq > high:
                    top[key] = ev.seq
                    fast.append(i)
                    rows.append(self._row(c, n, ev, rcv))
                else:
                    later.append(i)
            if rows:
                self._w.execute("SAVEPOINT fast_events")
                before = self._w.total_changes
                self._w.executemany(self._INSERT, rows)
                if self._w.total_changes - before != len(rows):
                    # one of them was stored after all (a store whose seqs table lags its events): undo, and
                    # let INSERT OR IGNORE decide for each
                    self._w.execute("ROLLBACK TO fast_events")
                    self._w.execute("RELEASE fast_events")
                    later = sorted(later + fast)
                    fast, rows = [], []
                else:
                    self._w.execute("RELEASE fast_events")
                for i, row in zip(fast, rows, strict=True):
                    c, n, ev, _ = items[i]
                    self._note_seq(c, n, ev.seq)
                    self._note_forecast(c, row[3], row[4], ev.data if isinstance(ev.data, dict) else {})
                    out[i] = True
            for i in later:
                out[i] = self._insert(*items[i])
        return out

    # ------------------------------------------------------------------------------------- forecast tallies
    def _note_forecast(self, center: str, ts: float, type: str, data: dict[str, Any]) -> None:
        """A new event row (inside the write transaction): tally it for the forecast, committed with it."""
        self._tally.add(center, ts, type, data)

    def ensure_forecast_aggregates(self, before: Callable[[], object] | None = None) -> int | None:
        """Rebuild the forecast tallies from the events when they do not cover exactly the stored events
        (a store from an older version); returns the events read, None when nothing was needed. Idempotent.
        ``before`` is called first when a rebuild is needed (the gateway extends systemd's start timeout)."""
        with self._lock:
            if not aggregates.needs_rebuild(self._w):
                return None
            if before is not None:
                before()
            with self.batch():
                return aggregates.rebuild(self._w, self.tz)

    def forecast(self, center: str, now: datetime, history_days: int = 28, **kw: Any):  # noqa: ANN201
        """The load-balancing :class:`~civiq.gateway.balance.forecast.Forecast` of ``center`` at ``now`` from
        the tallies of the last ``history_days`` local days and today (see
        :func:`civiq.gateway.balance.aggregates.read_forecast`; ``kw`` as ``build_forecast``'s)."""
        return aggregates.read_forecast(self._r(), center, now, history_days=history_days, tz=self.tz, **kw)

    def is_conflict(self, center: str, node: str, ev: Event) -> bool:
        """For a duplicate: True when the stored event differs (type or time), i.e. the node re-used a seq
        (an edge whose log was wiped restarts at 1). The ingest counts these; the data is not overwritten."""
        with self._lock:
            row = self._w.execute("SELECT type, ts FROM events WHERE center=? AND node=? AND seq=?",
                                  (center, node, ev.seq)).fetchone()
        if row is None:
            return False
        return row[0] != str(ev.type) or abs(row[1] - _epoch(ev.ts)) > 0.001 and plausible(ev.ts)

    def _note_seq(self, center: str, node: str, seq: int) -> None:
        key = (center, node)
        st = self._seq.get(key)
        if st is None:
            # first time we hear this node: we do not claim history from before it (see docs)
            st = self._seq[key] = [seq - 1, seq - 1]
        contiguous, max_seq = st
        if seq == contiguous + 1:
            contiguous = seq
            above = self._above.get(key)
            if above:
                while contiguous + 1 in above:
                    contiguous += 1
                    above.discard(contiguous)
                if not above:
                    del self._above[key]
        elif seq > contiguous + 1:
            self._above.setdefault(key, set()).add(seq)
        st[0], st[1] = contiguous, max(max_seq, seq, contiguous)
        self._dirty.add(key)

    def note_last_seq(self, center: str, node: str, last_seq: int) -> None:
        """The node says (queue snapshot ``last_seq``) it has written up to ``last_seq``: if we have fewer,
        that is a gap at the tail. Ignored for a node we never got an event from."""
        with self._lock:
            st = self._seq.get((center, node))
            if st is not None and last_seq > st[1]:
                st[1] = last_seq
                self._dirty.add((center, node))
                if self._depth == 0:
                    self._flush_seqs()

    def node_seq(self, center: str, node: str) -> SeqState | None:
        with self._lock:
            st = self._seq.get((center, node))
            return SeqState(*st) if st else None

    def gaps(self) -> dict[tuple[str, str], SeqState]:
        """Nodes with missing events: ``{(center, node): SeqState}`` where contiguous < max_seq."""
        with self._lock:
            return {k: SeqState(*v) for k, v in self._seq.items() if v[1] > v[0]}

    def missing_seqs(self, center: str, node: str, limit: int = 1000) -> list[int]:
        """The first ``limit`` seqs missing for a node (for logs and the rebirth request)."""
        with self._lock:
            st = self._seq.get((center, node))
            if not st or st[1] <= st[0]:
                return []
            have = self._above.get((center, node), set())
            out = []
            for s in range(st[0] + 1, st[1] + 1):
                if s not in have:
                    out.append(s)
                    if len(out) >= limit:
                        break
            return out

    def skip_gap(self, center: str, node: str) -> None:
        """Give up on a node's missing events (they are lost): contiguous becomes max_seq."""
        with self._lock:
            st = self._seq.get((center, node))
            if st and st[1] > st[0]:
                st[0] = st[1]
                self._above.pop((center, node), None)
                self._dirty.add((center, node))
                if self._depth == 0:
                    with self.batch():
                        pass

    def events_between(self, center: str, since: datetime, until: datetime,
                       types: Iterable[str] | None = None) -> list[StoredEvent]:
        """Events of a center with ``since <= ts < until``, oldest first; ``types`` filters by event type
        (uses the ``(center, type, ts)`` index). The balancer derives arrival rates (``ticket.issued``) and
        service times (``ticket.completed``.service_s) from these."""
        sql = ("SELECT center, node, seq, ts, type, service, counter, ticket, wait_s, service_s, data"
               " FROM events WHERE center=? AND ts>=? AND ts<?")
        args: list[Any] = [center, _epoch(since), _epoch(until)]
        tlist = [str(t) for t in types] if types is not None else None
        if tlist is not None:
            if not tlist:
                return []
            sql += f" AND type IN ({','.join('?' * len(tlist))})"
            args += tlist
        sql += " ORDER BY ts, node, seq"
        rows = self._r().execute(sql, args).fetchall()
        return [
            StoredEvent(r[0], r[1], r[2], datetime.fromtimestamp(r[3], UTC), r[4], r[5], r[6], r[7], r[8], r[9],
                        json.loads(r[10]))
            for r in rows
        ]

    def fingerprint(self, center: str, since: datetime, until: datetime, types: Iterable[str]) -> tuple[int, float]:
        """``(count, latest received)`` of a center's events of ``types`` with ``since <= ts < until``: changes
        whenever such an event arrives (late ones too), so a file made from them knows when to be re-made."""
        tlist = [str(t) for t in types]
        row = self._r().execute(
            f"SELECT count(*), coalesce(max(received), 0) FROM events WHERE center=? AND ts>=? AND ts<?"
            f" AND type IN ({','.join('?' * len(tlist))})", [center, _epoch(since), _epoch(until), *tlist]).fetchone()
        return int(row[0]), float(row[1])

    def centers(self) -> list[str]:
        """Every center with stored events."""
        return [r[0] for r in self._r().execute("SELECT DISTINCT center FROM seqs ORDER BY center")]

    def event_count(self, center: str | None = None) -> int:
        if center is None:
            return int(self._r().execute("SELECT count(*) FROM events").fetchone()[0])
        return int(self._r().execute("SELECT count(*) FROM events WHERE center=?", (center,)).fetchone()[0])

    # ------------------------------------------------------------------------------------- minute series
    def put_minutes(self, points: Iterable[MinutePoint]) -> None:
        """Upsert minute values: one value per (center, metric, key, node, minute); the last one wins."""
        rows = [(p.metric, p.center, p.key, p.node, int(_epoch(p.ts)) // 60 * 60, float(p.value))
                for p in points if math.isfinite(p.value)]
        if not rows:
            return
        with self.batch():
            self._w.executemany(
                "INSERT INTO minute(metric, center, key, node, ts_minute, value) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT(center, metric, key, node, ts_minute) DO UPDATE SET value=excluded.value",
                rows,
            )

    def put_minute_rows(self, rows: Iterable[tuple[str, str, str, str, int, float]], *,
                        distinct: bool = False) -> int:
        """The ingest's fast path: upsert ``(metric, center, key, node, ts_minute, value)`` rows (see
        :meth:`queue_rows`); of several rows for the same series and minute only the last is written (the
        last one wins anyway), so a burst of snapshots costs one row per series. ``distinct=True``: the
        caller already kept one row per series and minute (the ingest's writer does). Returns rows written."""
        last = list(rows) if distinct else list({r[:5]: r for r in rows}.values())
        if not last:
            return 0
        with self.batch():
            self._w.executemany(
                "INSERT INTO minute(metric, center, key, node, ts_minute, value) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT(center, metric, key, node, ts_minute) DO UPDATE SET value=excluded.value",
                last,
            )
        return len(last)

    @staticmethod
    def queue_rows(center: str, snap: QueueSnapshot, at: datetime) -> list[tuple[str, str, str, str, int, float]]:
        """:meth:`queue_points` as plain rows for :meth:`put_minute_rows` (no object per point).

        >>> snap = QueueSnapshot(ts=datetime(2026, 1, 5, 1, 0, 30, tzinfo=UTC), day="2026-01-05",
        ...                      services={"a": {"waiting": 2, "oldest_wait_s": 60}})
        >>> rows = SeriesStore.queue_rows("c1", snap, snap.ts)
        >>> rows[0], len(rows) == len(SeriesStore.queue_points("c1", snap, snap.ts))
        (('waiting', 'c1', 'a', '', 1767574800, 2.0), True)
        """
        m = int(_epoch(at)) // 60 * 60
        rows: list[tuple[str, str, str, str, int, float]] = []
        add = rows.append
        total, longest = 0, 0.0
        for sid, s in snap.services.items():
            w, o = s.waiting, float(s.oldest_wait_s)
            add(("waiting", center, sid, "", m, float(w)))
            add(("oldest_wait_s", center, sid, "", m, o))
            if s.eta_s is not None and math.isfinite(s.eta_s):
                add(("eta_s", center, sid, "", m, float(s.eta_s)))
            total += w
            if w and o > longest:
                longest = o
        add(("waiting_total", center, "", "", m, float(total)))
        add(("longest_wait_s", center, "", "", m, longest))
        opened = 0
        for cid, c in snap.counters.items():
            is_open = 1.0 if c.state == "open" else 0.0
            opened += is_open
            add(("served", center, cid, "", m, float(c.served_today)))
            add(("counter_open", center, cid, "", m, is_open))
        add(("counters_open", center, "", "", m, float(opened)))
        return rows

    @staticmethod
    def health_rows(center: str, node: str, health: Health, at: datetime) -> list[tuple[str, str, str, str, int, float]]:
        """:meth:`health_points` as plain rows for :meth:`put_minute_rows`."""
        m = int(_epoch(at)) // 60 * 60
        rows = [("device_state", center, d.id, node, m, float(DEVICE_STATE_CODE[str(d.state)]))
                for d in health.devices]
        rows.append(("outbox_pending", center, "", node, m, float(health.outbox.pending)))
        h = health.host
        for name, v in (("cpu_temp_c", h.cpu_temp_c), ("disk_used_pct", h.disk_used_pct),
                        ("clock_offset_s", h.clock_offset_s)):
            if v is not None and math.isfinite(v):
                rows.append((name, center, "", node, m, float(v)))
        return rows

    @staticmethod
    def queue_points(center: str, snap: QueueSnapshot, at: datetime) -> list[MinutePoint]:
        """Minute points from a queue snapshot (center level, node ''): ``waiting``, ``oldest_wait_s``,
        ``eta_s`` (when known) per service; ``waiting_total``, ``longest_wait_s``, ``counters_open``;
        ``served`` (served today) and ``counter_open`` (1/0) per counter."""
        pts: list[MinutePoint] = []
        for sid, s in snap.services.items():
            pts.append(MinutePoint("waiting", center, sid, "", at, s.waiting))
            pts.append(MinutePoint("oldest_wait_s", center, sid, "", at, s.oldest_wait_s))
            if s.eta_s is not None:
                pts.append(MinutePoint("eta_s", center, sid, "", at, s.eta_s))
        pts.append(MinutePoint("waiting_total", center, "", "", at,
                               sum(s.waiting for s in snap.services.values())))
        pts.append(MinutePoint("longest_wait_s", center, "", "", at,
                               max((s.oldest_wait_s for s in snap.services.values() if s.waiting), default=0.0)))
        opened = 0
        for cid, c in snap.counters.items():
            is_open = 1 if str(c.state) == "open" else 0
            opened += is_open
            pts.append(MinutePoint("served", center, cid, "", at, c.served_today))
            pts.append(MinutePoint("counter_open", center, cid, "", at, is_open))
        pts.append(MinutePoint("counters_open", center, "", "", at, opened))
        return pts

    @staticmethod
    def health_points(center: str, node: str, health: Health, at: datetime) -> list[MinutePoint]:
        """Minute points from a health report: ``device_state`` (0 ok/1 degraded/2 failed/3 offline) per
        device, and per node ``outbox_pending``, ``cpu_temp_c``, ``disk_used_pct``, ``clock_offset_s``."""
        pts = [MinutePoint("device_state", center, d.id, node, at, DEVICE_STATE_CODE[str(d.state)])
               for d in health.devices]
        pts.append(MinutePoint("outbox_pending", center, "", node, at, health.outbox.pending))
        for name in ("cpu_temp_c", "disk_used_pct", "clock_offset_s"):
            v = getattr(health.host, name)
            if v is not None:
                pts.append(MinutePoint(name, center, "", node, at, v))
        return pts

    def record_queue(self, center: str, node: str, snap: QueueSnapshot, received: datetime) -> None:
        """Minute points for a snapshot (filed at its own ts unless that is implausible) + its last_seq."""
        self.put_minutes(self.queue_points(center, snap, event_time(snap.ts, received)))
        if snap.last_seq:
            self.note_last_seq(center, node, snap.last_seq)

    def record_health(self, center: str, node: str, health: Health, received: datetime) -> None:
        self.put_minutes(self.health_points(center, node, health, event_time(health.ts, received)))

    def series(self, center: str, metric: str, key: str | None = None, since: datetime | None = None,
               until: datetime | None = None, node: str | None = None) -> dict[str, list[tuple[datetime, float]]]:
        """Minute values ``{key: [(minute, value), ...]}`` in time order, ``since <= minute < until``.

        ``key`` narrows to one service/counter/device ('' = the center-level series); ``node`` to one node
        (device and host metrics are per node)."""
        sql = "SELECT key, ts_minute, value FROM minute WHERE center=? AND metric=?"
        args: list[Any] = [center, metric]
        if key is not None:
            sql += " AND key=?"
            args.append(key)
        if node is not None:
            sql += " AND node=?"
            args.append(node)
        if since is not None:
            sql += " AND ts_minute>=?"
            args.append(_epoch(since))
        if until is not None:
            sql += " AND ts_minute<?"
            args.append(_epoch(until))
        sql += " ORDER BY key, ts_minute"
        out: dict[str, list[tuple[datetime, float]]] = {}
        for k, t, v in self._r().execute(sql, args):
            out.setdefault(k, []).append((datetime.fromtimestamp(t, UTC), v))
        return out

    # ------------------------------------------------------------------------------------- summaries
    def day_bounds(self, day: str | date) -> tuple[datetime, datetime]:
        """UTC start and end of a local calendar day."""
        d = date.fromisoformat(day) if isinstance(day, str) else day
        z = ZoneInfo(self.tz)
        start = datetime.combine(d, time(0), z)
        end = datetime.combine(d + timedelta(days=1), time(0), z)
        return start.astimezone(UTC), end.astimezone(UTC)

    def daily_summary(self, center: str, day: str | date) -> dict[str, Any]:
        """Totals for one local day, from the events::

            {"center", "day", "issued", "called", "served", "no_show", "transferred",
             "avg_wait_s", "max_wait_s", "avg_service_s", "peak_waiting",
             "priority_issued", "avg_wait_priority_s", "out_of_order", "held",
             "services": {sid: {"issued", "served", "no_show", "avg_wait_s", "max_wait_s", "avg_service_s"}},
             "counters": {cid: {"called", "served", "avg_service_s", "busy_s"}}}

        ``wait_s`` comes from ``ticket.called`` (first calls), ``service_s`` from ``ticket.completed``.
        Averages are None when there is nothing to average.
        """
        since, until = self.day_bounds(day)
        a, b = _epoch(since), _epoch(until)
        db = self._r()
        by_type = dict(db.execute(
            "SELECT type, count(*) FROM events WHERE center=? AND ts>=? AND ts<? AND type LIKE 'ticket.%'"
            " GROUP BY type", (center, a, b)).fetchall())
        waits = db.execute(
            "SELECT avg(wait_s), max(wait_s) FROM events WHERE center=? AND type='ticket.called'"
            " AND ts>=? AND ts<?", (center, a, b)).fetchone()
        svc_time = db.execute(
            "SELECT avg(service_s) FROM events WHERE center=? AND type='ticket.completed' AND ts>=? AND ts<?",
            (center, a, b)).fetchone()
        services: dict[str, dict[str, Any]] = {}
        for sid, typ, n, avg_w, max_w, avg_s in db.execute(
                "SELECT service, type, count(*), avg(wait_s), max(wait_s), avg(service_s) FROM events"
                " WHERE center=? AND ts>=? AND ts<? AND type IN"
                " ('ticket.issued','ticket.called','ticket.completed','ticket.no_show')"
                " AND service IS NOT NULL GROUP BY service, type", (center, a, b)):
            s = services.setdefault(sid, {"issued": 0, "served": 0, "no_show": 0, "avg_wait_s": None,
                                          "max_wait_s": None, "avg_service_s": None})
            if typ == "ticket.issued":
                s["issued"] = n
            elif typ == "ticket.called":
                s["avg_wait_s"], s["max_wait_s"] = avg_w, max_w
            elif typ == "ticket.completed":
                s["served"], s["avg_service_s"] = n, avg_s
            else:
                s["no_show"] = n
        counters: dict[str, dict[str, Any]] = {}
        for cid, typ, n, avg_s, sum_s in db.execute(
                "SELECT counter, type, count(*), avg(service_s), sum(service_s) FROM events"
                " WHERE center=? AND ts>=? AND ts<? AND type IN ('ticket.called','ticket.completed')"
                " AND counter IS NOT NULL GROUP BY counter, type", (center, a, b)):
            c = counters.setdefault(cid, {"called": 0, "served": 0, "avg_service_s": None, "busy_s": 0.0})
            if typ == "ticket.called":
                c["called"] = n
            else:
                c["served"], c["avg_service_s"], c["busy_s"] = n, avg_s, sum_s or 0.0
        # priority tickets and clerk operations out of the line's order (the events' data, JSON1)
        prio = db.execute(
            "SELECT count(*) FROM events WHERE center=? AND type='ticket.issued' AND ts>=? AND ts<?"
            " AND json_extract(data, '$.priority') IS NOT NULL", (center, a, b)).fetchone()[0]
        prio_wait = db.execute(
            "SELECT avg(wait_s) FROM events WHERE center=? AND type='ticket.called' AND ts>=? AND ts<?"
            " AND json_extract(data, '$.priority') IS NOT NULL", (center, a, b)).fetchone()[0]
        ooo = db.execute(
            "SELECT count(*) FROM events WHERE center=? AND type='ticket.called' AND ts>=? AND ts<?"
            " AND json_extract(data, '$.out_of_order')", (center, a, b)).fetchone()[0]
        peak = db.execute(
            "SELECT max(value) FROM minute WHERE center=? AND metric='waiting_total' AND key=''"
            " AND ts_minute>=? AND ts_minute<?", (center, a, b)).fetchone()[0]
        return {
            "center": center,
            "day": str(day),
            "issued": by_type.get("ticket.issued", 0),
            "called": by_type.get("ticket.called", 0),
            "served": by_type.get("ticket.completed", 0),
            "no_show": by_type.get("ticket.no_show", 0),
            "transferred": by_type.get("ticket.transferred", 0),
            "avg_wait_s": waits[0],
            "max_wait_s": waits[1],
            "avg_service_s": svc_time[0],
            "peak_waiting": peak,
            "priority_issued": prio,
            "avg_wait_priority_s": prio_wait,
            "out_of_order": ooo,
            "held": by_type.get("ticket.held", 0),
            "services": services,
            "counters": counters,
        }

    # ------------------------------------------------------------------------------------- state, retention
    def save_state(self, text: str) -> None:
        """Keep the live state's JSON (``LiveState.to_json()``) for the next start."""
        with self._lock, self.batch():
            self._w.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('live_state', ?)", (text,))

    def load_state(self) -> str | None:
        row = self._r().execute("SELECT value FROM meta WHERE key='live_state'").fetchone()
        return row[0] if row else None

    def prune(self, now: datetime) -> int:
        """Delete events and minute values older than ``retention_days``; returns rows deleted.
        Sequence tracking is kept, so pruned events are never mistaken for a gap."""
        cutoff = _epoch(now) - self.retention_days * 86400
        with self.batch():
            n = self._w.execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
            aggregates.prune(self._w, cutoff, self.tz, n)
            n += self._w.execute("DELETE FROM minute WHERE ts_minute < ?", (cutoff,)).rowcount
        return n
