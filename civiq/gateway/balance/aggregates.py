"""The advisor's inputs, kept up to date at ingest: a pass reads a few hundred rows, not 28 days of events.

Three tables in the gateway's series store (:class:`~civiq.gateway.store.series.SeriesStore`), written in the
same transaction as the ``events`` rows they come from (so a crash never counts an event twice or loses it):

* ``fc_days (center, day)`` — the local days with any event (a day with events is observed);
* ``fc_arrivals (center, day, hour, service, n)`` — ``ticket.issued`` per local day and hour;
* ``fc_times (center, day, service, counter, ...)`` — per local day, service and counter ('' = none): tickets
  called (not call-backs), no-shows at a counter, expiries, and count / sum / sum of squares of the counter time
  of completed tickets (``done_*``) and of completed + no-show tickets (``ct_*``, what capacity needs).

What an event adds is decided by :func:`civiq.gateway.balance.forecast.classify`, the function
:func:`~civiq.gateway.balance.forecast.build_forecast` uses too, and :func:`read_forecast` hands the tallies
to the same :func:`~civiq.gateway.balance.forecast.assemble`: the forecast from aggregates equals the forecast
from the events of the same whole local days (tested), except that the variance comes from sums of squares
(equal to ~1e-12) and an event stamped later than ``now`` (an edge clock ahead) already counts for its day.
The rate of the last hour comes from the ``events`` table (an indexed read of ~an hour of ``ticket.issued``).

``meta['fc_events']`` is the number of events tallied; when it differs from the ``events`` rows (a store from
before this version, or written by one), :func:`rebuild` recomputes everything from the events at start-up.

>>> import sqlite3
>>> db = sqlite3.connect(":memory:", isolation_level=None)
>>> _ = db.executescript(SCHEMA + "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
>>> t = Tally("Asia/Ho_Chi_Minh")
>>> t.add("c1", 1767574800.0, "ticket.issued", {"service": "A"})   # 2026-01-05 08:00 local
>>> t.flush(db)
>>> db.execute("SELECT * FROM fc_arrivals").fetchall()
[('c1', '2026-01-05', 8, 'A', 1)]
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from civiq.gateway.balance.forecast import (
    CALLED,
    EXPIRED,
    ISSUED,
    NO_SHOW,
    Forecast,
    TimeStats,
    assemble,
    classify,
)

__all__ = ["SCHEMA", "Tally", "read_forecast", "rebuild", "needs_rebuild", "prune"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS fc_days (
    center TEXT NOT NULL,
    day    TEXT NOT NULL,              -- local calendar day, YYYY-MM-DD
    PRIMARY KEY (center, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fc_arrivals (
    center  TEXT NOT NULL,
    day     TEXT NOT NULL,
    hour    INTEGER NOT NULL,          -- local hour 0..23
    service TEXT NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (center, day, hour, service)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fc_times (
    center   TEXT NOT NULL,
    day      TEXT NOT NULL,
    service  TEXT NOT NULL,
    counter  TEXT NOT NULL,            -- '' when the event named none
    called   INTEGER NOT NULL,
    no_show  INTEGER NOT NULL,
    expired  INTEGER NOT NULL,
    done_n   INTEGER NOT NULL,
    done_sum REAL NOT NULL,
    done_sq  REAL NOT NULL,
    ct_n     INTEGER NOT NULL,
    ct_sum   REAL NOT NULL,
    ct_sq    REAL NOT NULL,
    PRIMARY KEY (center, day, service, counter)
) WITHOUT ROWID;
"""

TYPES = ("ticket.issued", "ticket.called", "ticket.completed", "ticket.no_show")
# fc_times columns after the key: called, no_show, expired, done_n, done_sum, done_sq, ct_n, ct_sum, ct_sq
_TIME_COLS = ("called", "no_show", "expired", "done_n", "done_sum", "done_sq", "ct_n", "ct_sum", "ct_sq")


class Tally:
    """Deltas of one write transaction, flushed into the tables before its COMMIT (:meth:`flush`)."""

    def __init__(self, tz: str) -> None:
        self.zone = ZoneInfo(tz)
        self._local: dict[int, tuple[str, int]] = {}  # 15-minute UTC bucket -> (local day, hour)
        self.clear()

    def clear(self) -> None:
        self.events = 0
        self.days: set[tuple[str, str]] = set()
        self.arrivals: dict[tuple[str, str, int, str], int] = defaultdict(int)
        self.times: dict[tuple[str, str, str, str], list[float]] = {}

    def local(self, ts: float) -> tuple[str, int]:
        """(local day, local hour) of epoch seconds ``ts``. UTC offsets and their changes fall on quarter
        hours, so a 15-minute bucket has one answer: cached."""
        b = int(ts // 900)
        got = self._local.get(b)
        if got is None:
            if len(self._local) > 20_000:
                self._local.clear()
            t = datetime.fromtimestamp(b * 900, UTC).astimezone(self.zone)
            got = self._local[b] = (t.date().isoformat(), t.hour)
        return got

    def add(self, center: str, ts: float, type: str, data: object) -> None:
        """One new event (stored at epoch seconds ``ts``) of ``center``."""
        self.events += 1
        day, hour = self.local(ts)
        self.days.add((center, day))
        c = classify(type, data)
        if c is None:
            return
        kind, service, counter, secs = c
        if kind == ISSUED:
            self.arrivals[(center, day, hour, service)] += 1
            return
        row = self.times.get(k := (center, day, service, counter or ""))
        if row is None:
            row = self.times[k] = [0.0] * 9
        if kind == CALLED:
            row[0] += 1
        elif kind == EXPIRED:
            row[2] += 1
        else:
            if kind == NO_SHOW:
                row[1] += 1
            elif secs is not None:  # COMPLETED
                row[3] += 1
                row[4] += secs
                row[5] += secs * secs
            if secs is not None:
                row[6] += 1
                row[7] += secs
                row[8] += secs * secs

    def flush(self, db: sqlite3.Connection) -> None:
        """Add the deltas to the tables (inside the caller's transaction), then forget them."""
        if self.days:
            db.executemany("INSERT OR IGNORE INTO fc_days(center, day) VALUES (?,?)", self.days)
        if self.arrivals:
            db.executemany("INSERT INTO fc_arrivals(center, day, hour, service, n) VALUES (?,?,?,?,?)"
                           " ON CONFLICT(center, day, hour, service) DO UPDATE SET n = n + excluded.n",
                           [(*k, n) for k, n in self.arrivals.items()])
        if self.times:
            sets = ", ".join(f"{c} = {c} + excluded.{c}" for c in _TIME_COLS)
            db.executemany(f"INSERT INTO fc_times(center, day, service, counter, {', '.join(_TIME_COLS)})"
                           f" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
                           f" ON CONFLICT(center, day, service, counter) DO UPDATE SET {sets}",
                           [(*k, *v) for k, v in self.times.items()])
        if self.events:
            _add_count(db, self.events)
        self.clear()


def _add_count(db: sqlite3.Connection, n: int) -> None:
    db.execute("INSERT INTO meta(key, value) VALUES ('fc_events', ?) ON CONFLICT(key)"
               " DO UPDATE SET value = CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER)", (str(n),))


def tallied(db: sqlite3.Connection) -> int | None:
    row = db.execute("SELECT value FROM meta WHERE key='fc_events'").fetchone()
    return int(row[0]) if row else None


def needs_rebuild(db: sqlite3.Connection) -> bool:
    """True when the tallies do not cover exactly the stored events (an older store, or one written by an
    older version since)."""
    n = int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    return (tallied(db) or 0) != n  # an empty store needs nothing


def rebuild(db: sqlite3.Connection, tz: str, chunk: int = 50_000) -> int:
    """Recompute every tally from the ``events`` table, in the caller's transaction (idempotent: the tables
    are emptied first). Returns the events read."""
    for t in ("fc_days", "fc_arrivals", "fc_times"):
        db.execute(f"DELETE FROM {t}")  # noqa: S608 - fixed names
    db.execute("DELETE FROM meta WHERE key='fc_events'")
    tally = Tally(tz)
    cur = db.cursor()
    cur.execute(f"SELECT center, ts, type, CASE WHEN type IN ({','.join('?' * len(TYPES))}) THEN data END"
                " FROM events", TYPES)
    n = 0
    while rows := cur.fetchmany(chunk):
        for center, ts, typ, data in rows:
            tally.add(center, ts, typ, json.loads(data) if data else None)
        n += len(rows)
        tally.flush(db)
    _add_count(db, 0)
    return n


def prune(db: sqlite3.Connection, cutoff: float, tz: str, events_deleted: int) -> None:
    """After the store deleted ``events_deleted`` events older than ``cutoff`` (epoch): drop the tallies of the
    local days before the cutoff's (the cutoff's own day keeps its tallies whole)."""
    day = datetime.fromtimestamp(cutoff, UTC).astimezone(ZoneInfo(tz)).date().isoformat()
    for t in ("fc_days", "fc_arrivals", "fc_times"):
        db.execute(f"DELETE FROM {t} WHERE day < ?", (day,))  # noqa: S608 - fixed names
    if events_deleted:
        _add_count(db, -events_deleted)


def _stats(n: float, s: float, sq: float) -> TimeStats | None:
    if n <= 0:
        return None
    mean = s / n
    return TimeStats(int(n), mean, max(0.0, sq / n - mean * mean))


def read_forecast(db: sqlite3.Connection, center: str, now: datetime, *, history_days: int = 28,
                  tz: str, half_life_days: float = 7.0, min_weekday_days: int = 3, min_pair_samples: int = 20,
                  recent_min: float = 60.0) -> Forecast:
    """The :class:`~civiq.gateway.balance.forecast.Forecast` of ``center`` at ``now`` from the tallies of the
    local days ``today - history_days`` .. today, read in one snapshot (``db`` is a read connection in
    autocommit mode). Equals ``build_forecast`` of the events from the first of those days' midnight to
    ``now`` (see the module docstring)."""
    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    today, hour = local_now.date(), local_now.hour
    first = (today - timedelta(days=history_days)).isoformat()
    last = today.isoformat()
    db.execute("BEGIN")
    try:
        days = {date.fromisoformat(r[0]) for r in db.execute(
            "SELECT day FROM fc_days WHERE center=? AND day BETWEEN ? AND ?", (center, first, last))}
        counts: dict[tuple[date, int], dict[str, int]] = defaultdict(dict)
        services: set[str] = set()
        for d, h, s, n in db.execute(
                "SELECT day, hour, service, n FROM fc_arrivals WHERE center=? AND day BETWEEN ? AND ?"
                " AND (day < ? OR hour <= ?)", (center, first, last, last, hour)):
            counts[(date.fromisoformat(d), h)][s] = n
            services.add(s)
        rows = db.execute(
            f"SELECT service, counter, {', '.join(f'sum({c})' for c in _TIME_COLS)} FROM fc_times"
            " WHERE center=? AND day BETWEEN ? AND ? GROUP BY service, counter", (center, first, last)).fetchall()
        t_now = now.timestamp()
        recent: dict[str, int] = defaultdict(int)
        for (data,) in db.execute(
                "SELECT data FROM events WHERE center=? AND type='ticket.issued' AND ts>? AND ts<=?",
                (center, t_now - recent_min * 60.0, t_now)):
            c = classify("ticket.issued", json.loads(data))
            if c is not None:
                recent[c[1]] += 1
    finally:
        db.execute("COMMIT")
    per_service: dict[str, list[float]] = {}
    pair_time: dict[tuple[str, str], TimeStats] = {}
    called: dict[str, int] = defaultdict(int)
    no_show: dict[str, int] = defaultdict(int)
    expired: dict[str, int] = defaultdict(int)
    for service, counter, *v in rows:
        acc = per_service.setdefault(service, [0.0] * 9)
        for i, x in enumerate(v):
            acc[i] += x
        called[service] += int(v[0])
        no_show[service] += int(v[1])
        expired[service] += int(v[2])
        if counter and (st := _stats(v[6], v[7], v[8])) is not None:
            pair_time[(counter, service)] = st
    service_time = {s: st for s, v in per_service.items() if (st := _stats(v[3], v[4], v[5])) is not None}
    counter_time = {s: st for s, v in per_service.items() if (st := _stats(v[6], v[7], v[8])) is not None}
    return assemble(tz, now, days, counts, services, service_time=service_time, counter_time=counter_time,
                    pair_time=pair_time, called={s: n for s, n in called.items() if n},
                    no_show=no_show, expired=expired, recent=recent, half_life_days=half_life_days,
                    min_weekday_days=min_weekday_days, min_pair_samples=min_pair_samples, recent_min=recent_min)
