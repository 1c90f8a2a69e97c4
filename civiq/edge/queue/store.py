"""The edge's durable store: the append-only event log and the MQTT outbox, in one SQLite file (WAL).

Every fact is appended to ``events`` with a per-node ``seq`` (gap-free, never reused: SQLite AUTOINCREMENT
is rolled back with its transaction, and never hands out a number twice). A trigger puts the same ``seq``
into ``outbox`` in the same transaction, so an event can never be logged and not queued for sending (or the
reverse), whatever moment the power goes. The link deletes outbox rows only when the broker acknowledged
them. ``synchronous=FULL`` makes every commit survive power loss, not only process death.

>>> s = EdgeStore(":memory:")
>>> e = s.append("ticket.issued", {"ticket": "A001"}, datetime(2026, 1, 5, tzinfo=UTC))
>>> e.seq, s.pending_count()
(1, 1)
>>> s.ack([1]); s.pending_count()
0
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from civiq.contract import ClockQuality, Event, EventType
from civiq.errors import EdgeError

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    ts    TEXT NOT NULL,
    type  TEXT NOT NULL,
    clock TEXT NOT NULL DEFAULT 'unsynced',
    data  TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS events_to_outbox AFTER INSERT ON events
BEGIN
    INSERT INTO outbox(seq) VALUES (NEW.seq);
END;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StoreFull(EdgeError, OSError):
    """The disk is full: the event could not be written (the caller keeps serving, see docs/reliability.md)."""


class EdgeStore:
    """Thread-safe; one connection guarded by a lock (an edge agent writes a few events per second)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    # ----------------------------------------------------------------------------------- transactions
    def transaction(self) -> _Tx:
        """``with store.transaction():`` groups several appends into one atomic commit."""
        return _Tx(self)

    # ----------------------------------------------------------------------------------- events
    def append(self, type: str | EventType, data: dict, ts: datetime,
               clock: ClockQuality = ClockQuality.unsynced) -> Event:
        with self.lock:
            try:
                cur = self.db.execute(
                    "INSERT INTO events(ts, type, clock, data) VALUES (?, ?, ?, ?)",
                    (ts.astimezone(UTC).isoformat(), str(type), str(clock),
                     json.dumps(data, ensure_ascii=False, separators=(",", ":"))),
                )
            except sqlite3.OperationalError as e:
                if "full" in str(e).lower():
                    raise StoreFull(str(e)) from None
                raise
            return Event(seq=cur.lastrowid, ts=ts, type=EventType(str(type)), clock=clock, data=data)

    def events(self, after_seq: int = 0, limit: int | None = None) -> Iterator[Event]:
        sql = "SELECT seq, ts, type, clock, data FROM events WHERE seq > ? ORDER BY seq"
        args: tuple = (after_seq,)
        if limit is not None:
            sql += " LIMIT ?"
            args += (limit,)
        with self.lock:
            rows = self.db.execute(sql, args).fetchall()
        for row in rows:
            yield _row_event(row)

    def last_seq(self) -> int:
        with self.lock:
            row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name='events'").fetchone()
        return int(row[0]) if row else 0

    # ----------------------------------------------------------------------------------- outbox
    def pending(self, limit: int = 500, after_seq: int = 0) -> list[Event]:
        """Unacknowledged events, oldest first."""
        with self.lock:
            rows = self.db.execute(
                "SELECT e.seq, e.ts, e.type, e.clock, e.data FROM outbox o JOIN events e ON e.seq = o.seq"
                " WHERE o.seq > ? ORDER BY o.seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [_row_event(r) for r in rows]

    def ack(self, seqs: Iterable[int]) -> None:
        with self.lock:
            self.db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def requeue(self, from_seq: int) -> int:
        """Put every logged event from ``from_seq`` on back into the outbox (the gateway lost events the broker
        had acknowledged). Returns how many rows were re-queued; the log itself is untouched."""
        with self.lock:
            cur = self.db.execute("INSERT OR IGNORE INTO outbox(seq) SELECT seq FROM events WHERE seq >= ?",
                                  (max(1, int(from_seq)),))
        return max(0, cur.rowcount)

    def pending_count(self) -> int:
        with self.lock:
            return int(self.db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def oldest_pending_ts(self) -> datetime | None:
        with self.lock:
            row = self.db.execute(
                "SELECT e.ts FROM outbox o JOIN events e ON e.seq = o.seq ORDER BY o.seq LIMIT 1"
            ).fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    # ----------------------------------------------------------------------------------- meta
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self.lock:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self.db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value"
                            " = excluded.value", (key, value))

    def integrity_ok(self) -> bool:
        with self.lock:
            return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        with self.lock:
            self.db.close()


class _Tx:
    def __init__(self, store: EdgeStore) -> None:
        self.store = store

    def __enter__(self) -> EdgeStore:
        self.store.lock.acquire()
        self.store.db.execute("BEGIN IMMEDIATE")
        return self.store

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.store.db.execute("ROLLBACK" if exc_type else "COMMIT")
        except sqlite3.OperationalError as e:
            if exc_type is None and "full" in str(e).lower():
                self.store.db.execute("ROLLBACK")  # SQLite keeps the transaction open after SQLITE_FULL
                raise StoreFull(str(e)) from None
            raise
        finally:
            self.store.lock.release()


def _row_event(row: tuple) -> Event:
    seq, ts, type_, clock, data = row
    return Event(seq=seq, ts=datetime.fromisoformat(ts), type=EventType(type_), clock=ClockQuality(clock),
                 data=json.loads(data))
