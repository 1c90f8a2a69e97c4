"""InfluxDB export with a durable disk spool (works with InfluxDB 2/3 and VictoriaMetrics' /api/v2/write).

Why not the client's batching mode: with the server down it retries, then **drops** the batch, and
``flush()`` is a no-op (MEASURED.md). So every point is first appended to a SQLite spool (one transaction
per :meth:`InfluxExport.add` call); our own sender thread writes the oldest ``batch_size`` lines with the
*synchronous* write API and deletes them only after the server said yes; while the server is down it
retries with backoff (0.5 s doubling to ``max_backoff_s``). Points carry explicit timestamps, so a batch
re-sent after an unclear failure overwrites itself in InfluxDB instead of counting twice.

Schema (docs/timeseries.md): every field numeric (VictoriaMetrics stores strings as 0), tags low-cardinality.

=============  ============================  ==========================================
measurement    tags                          fields
=============  ============================  ==========================================
queue          center, service               waiting, oldest_wait_s, eta_s (when known)
counter        center, counter               served_today, busy (0/1), open (0/1)
device         center, node, device, kind    state_code (0 ok, 1 degraded, 2 failed, 3 offline)
node           center, node                  online (0/1), outbox_pending, cpu_temp_c, disk_used_pct
ticket_event   center, service, type         count=1, wait_s, service_s
=============  ============================  ==========================================

>>> lines = queue_lines("hcm-q1", QueueSnapshot(ts=datetime(2026, 1, 5, 1, tzinfo=UTC), day="2026-01-05",
...     services={"a": {"waiting": 3, "oldest_wait_s": 120}}))
>>> lines[0]
'queue,center=hcm-q1,service=a oldest_wait_s=120.0,waiting=3i 1767574800000000000'
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from civiq.clock import plausible
from civiq.contract import Event, Health, QueueSnapshot, Status

log = logging.getLogger("civiq.gateway.influx")

DEVICE_STATE_CODE = {"ok": 0, "degraded": 1, "failed": 2, "offline": 3}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ------------------------------------------------------------------------------------------ line protocol
def _esc_tag(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ") or "_"


def _field(v: float | int | bool) -> str:
    if isinstance(v, bool):
        return "1i" if v else "0i"
    if isinstance(v, int):
        return f"{v}i"
    return repr(float(v))


def _ns(ts: datetime) -> int:
    """Nanoseconds since the epoch, truncated to the millisecond (what VictoriaMetrics keeps)."""
    t = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts
    return (t - _EPOCH) // timedelta(milliseconds=1) * 1_000_000


def line(measurement: str, tags: dict[str, str], fields: dict[str, float | int | bool | None], ts_ns: int) -> str:
    """One line of InfluxDB line protocol; None fields are left out (a line needs at least one)."""
    tag_s = "".join(f",{k}={_esc_tag(v)}" for k, v in sorted(tags.items()))
    field_s = ",".join(f"{k}={_field(v)}" for k, v in sorted(fields.items()) if v is not None)
    if not field_s:
        raise ValueError(f"{measurement}: a point needs at least one field")
    return f"{measurement}{tag_s} {field_s} {ts_ns}"


_TAG_CACHE: dict[str, str] = {}


def _tag(v: str) -> str:
    """:func:`_esc_tag`, memoised: the same few thousand center, service and device ids come back in
    every message (the hot path builds lines as strings, without a dict or a sort per point)."""
    t = _TAG_CACHE.get(v)
    if t is None:
        if len(_TAG_CACHE) > 100_000:
            _TAG_CACHE.clear()
        t = _TAG_CACHE[v] = _esc_tag(v)
    return t


def _f(v: float) -> str:
    return repr(float(v))


def queue_lines(center: str, snap: QueueSnapshot) -> list[str]:
    """``queue`` per service and ``counter`` per counter, at the snapshot's time (the same text as
    :func:`line` would build: tags and fields in sorted order)."""
    t = _ns(snap.ts)
    c = _tag(center)
    out = []
    for sid, s in snap.services.items():
        eta = "" if s.eta_s is None else f"eta_s={_f(s.eta_s)},"
        out.append(f"queue,center={c},service={_tag(sid)} {eta}oldest_wait_s={_f(s.oldest_wait_s)},"
                   f"waiting={int(s.waiting)}i {t}")
    for cid, k in snap.counters.items():
        out.append(f"counter,center={c},counter={_tag(cid)} busy={'0i' if k.ticket is None else '1i'},"
                   f"open={'1i' if k.state == 'open' else '0i'},served_today={int(k.served_today)}i {t}")
    return out


def health_lines(center: str, node: str, health: Health) -> list[str]:
    """``device`` per device and one ``node`` line (outbox, temperature, disk; online=1: it just spoke)."""
    t = _ns(health.ts)
    c, n = _tag(center), _tag(node)
    out = [f"device,center={c},device={_tag(d.id)},kind={_tag(d.kind)},node={n} "
           f"state_code={DEVICE_STATE_CODE[str(d.state)]}i {t}" for d in health.devices]
    h = health.host
    cpu = "" if h.cpu_temp_c is None else f"cpu_temp_c={_f(h.cpu_temp_c)},"
    disk = "" if h.disk_used_pct is None else f"disk_used_pct={_f(h.disk_used_pct)},"
    out.append(f"node,center={c},node={n} {cpu}{disk}online=1i,outbox_pending={int(health.outbox.pending)}i {t}")
    return out


def node_line(center: str, node: str, online: bool, at: datetime) -> str:
    """A node going online (birth) or offline (death, heartbeat)."""
    return line("node", {"center": center, "node": node}, {"online": online}, _ns(at))


def status_lines(center: str, node: str, status: Status, at: datetime) -> list[str]:
    return [node_line(center, node, status.online, status.ts or at)]


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def event_lines(center: str, ev: Event, at: datetime | None = None) -> list[str]:
    """``ticket_event`` for ticket events (others are not exported). The timestamp is the event's
    millisecond plus ``seq % 1e6`` nanoseconds, so two tickets in the same millisecond stay two points in
    InfluxDB while a re-sent event still lands on itself."""
    typ = ev.type.value if hasattr(ev.type, "value") else str(ev.type)
    if not typ.startswith("ticket."):
        return []
    d = ev.data if isinstance(ev.data, dict) else {}
    service = _tag(str(d.get("service") or "_")[:64])
    ts = ev.ts if at is None or plausible(ev.ts) else at  # a Pi booted without RTC says 1970
    s, w = d.get("service_s"), d.get("wait_s")
    fields = "count=1i"
    if _finite(s):
        fields += f",service_s={_f(s)}"
    if _finite(w):
        fields += f",wait_s={_f(w)}"
    return [f"ticket_event,center={_tag(center)},service={service},type={_tag(typ[7:])} {fields} "
            f"{_ns(ts) + ev.seq % 1_000_000}"]


# ------------------------------------------------------------------------------------------ spool + sender
# A row holds up to ``batch_size`` lines joined by newlines (``n`` of them): spooling a gateway batch costs a
# few rows, not one per point (a spool of an older release has one line per row and n = 1).
SPOOL_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 1);
"""


class InfluxExport:
    """Spooled, retried export. ``add(lines)`` is cheap and durable; ``start()`` runs the sender thread.

    >>> exp = InfluxExport("http://127.0.0.1:8428", "", "civiq", "civiq", "/tmp/spool.db")  # doctest: +SKIP
    >>> exp.start(); exp.add(queue_lines("hcm-q1", snap)); exp.stop()                      # doctest: +SKIP
    """

    def __init__(self, url: str, token: str, org: str, bucket: str, spool_path: str | Path,
                 batch_size: int = 5000, flush_interval_s: float = 1.0, *, max_backoff_s: float = 30.0,
                 max_pending: int = 5_000_000, timeout_ms: int = 5_000) -> None:
        self.url, self.token, self.org, self.bucket = url, token, org, bucket
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_backoff_s = max_backoff_s
        self.max_pending = max_pending
        self.timeout_ms = timeout_ms
        self.spool_path = Path(spool_path)
        self.spool_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.spool_path), check_same_thread=False, isolation_level=None,
                                   timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SPOOL_SCHEMA)
        if "n" not in {r[1] for r in self._db.execute("PRAGMA table_info(spool)")}:
            self._db.execute("ALTER TABLE spool ADD COLUMN n INTEGER NOT NULL DEFAULT 1")
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending = int(self._db.execute("SELECT coalesce(sum(n), 0) FROM spool").fetchone()[0])
        self.spooled = 0  # points added since start
        self.sent = 0  # points the server accepted
        self.failed_attempts = 0  # write attempts that failed (server down, 5xx, timeout)
        self.rejected = 0  # points the server refused as invalid (HTTP 400): dropped, logged
        self.dropped = 0  # oldest points dropped because the spool hit max_pending
        self.last_error: str | None = None

    # ------------------------------------------------------------------------------------- producer side
    def add(self, lines: Iterable[str]) -> int:
        """Append line-protocol lines to the spool (one transaction). Returns how many."""
        lines = list(lines)
        if not lines:
            return 0
        b = self.batch_size
        rows = [("\n".join(lines[i:i + b]), len(lines[i:i + b])) for i in range(0, len(lines), b)]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO spool(line, n) VALUES (?, ?)", rows)
            self._pending += len(lines)
            over = self._pending - self.max_pending
            while over > 0:  # drop the oldest rows (whole rows: up to batch_size - 1 points more than needed)
                old = self._db.execute("SELECT id, n FROM spool ORDER BY id LIMIT 1").fetchone()
                if old is None:
                    break
                self._db.execute("DELETE FROM spool WHERE id = ?", (old[0],))
                self._pending -= old[1]
                self.dropped += old[1]
                over -= old[1]
            self._db.execute("COMMIT")
            self.spooled += len(lines)
        if self._pending >= self.batch_size:
            self._wake.set()
        return len(lines)

    def pending(self) -> int:
        """Points in the spool, not yet accepted by the server."""
        with self._lock:
            return self._pending

    @property
    def stats(self) -> dict[str, Any]:
        return {"spooled": self.spooled, "sent": self.sent, "failed_attempts": self.failed_attempts,
                "rejected": self.rejected, "dropped": self.dropped, "pending": self.pending(),
                "last_error": self.last_error}

    # ------------------------------------------------------------------------------------- sender
    def start(self) -> InfluxExport:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="influx-export", daemon=True)
            self._thread.start()
        return self

    def stop(self, drain_timeout_s: float = 2.0) -> None:
        """Try to send what is spooled for up to ``drain_timeout_s``, then stop (the rest stays spooled)."""
        deadline = time.monotonic() + drain_timeout_s
        while self._thread and self.pending() and time.monotonic() < deadline and not self.last_error:
            self._wake.set()
            time.sleep(0.02)
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(10)
            self._thread = None
        with self._lock:
            self._db.close()

    def _run(self) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        client = InfluxDBClient(url=self.url, token=self.token, org=self.org, timeout=self.timeout_ms)
        write_api = client.write_api(write_options=SYNCHRONOUS)
        backoff = 0.0
        try:
            while not self._stop.is_set():
                if backoff:
                    self._stop.wait(backoff)
                    if self._stop.is_set():
                        break
                elif self.pending() < self.batch_size:
                    self._wake.wait(self.flush_interval_s)
                self._wake.clear()
                ok = self._send_one(write_api)
                # sent (or nothing to send): no backoff; failed: 0.5 s doubling to max_backoff_s
                backoff = 0.0 if ok is not False else min(self.max_backoff_s, max(0.5, backoff * 2))
        finally:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass

    def send_now(self) -> bool | None:
        """Send one batch synchronously (tests, shutdown). None: nothing to send."""
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        with InfluxDBClient(url=self.url, token=self.token, org=self.org, timeout=self.timeout_ms) as client:
            return self._send_one(client.write_api(write_options=SYNCHRONOUS))

    def _send_one(self, write_api: Any) -> bool | None:
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException

        with self._lock:
            rows = self._db.execute("SELECT id, line, n FROM spool ORDER BY id LIMIT ?", (self.batch_size,)).fetchall()
        if not rows:
            return None
        take, count = [], 0
        for r in rows:  # whole rows, up to batch_size points (at least one row)
            if take and count + r[2] > self.batch_size:
                break
            take.append(r)
            count += r[2]
        rows = take
        ids = [r[0] for r in rows]
        try:
            # one string: the client does no work per line (it serialised each line: ~4 µs a line)
            write_api.write(bucket=self.bucket, org=self.org, record="\n".join(r[1] for r in rows),
                            write_precision=WritePrecision.NS)
        except ApiException as e:
            if e.status in (400, 422):  # the server says the data itself is bad: retrying cannot help
                self.rejected += count
                self.last_error = f"HTTP {e.status}: {str(e.body)[:200]}"
                log.error("InfluxDB rejected %d points: %s", count, self.last_error)
                self._delete(ids, count)
                return True
            self.failed_attempts += 1
            self.last_error = f"HTTP {e.status}: {str(e.body)[:200]}"
            return False
        except Exception as e:  # noqa: BLE001 - connection refused, timeout, DNS: retry later
            self.failed_attempts += 1
            self.last_error = f"{type(e).__name__}: {e}"[:300]
            return False
        self._delete(ids, count)
        self.sent += count
        self.last_error = None
        return True

    def _delete(self, ids: list[int], points: int) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            # (rows dropped meanwhile for max_pending were already taken off the count)
            n = self._db.execute("SELECT coalesce(sum(n), 0) FROM spool WHERE id >= ? AND id <= ?",
                                 (ids[0], ids[-1])).fetchone()[0]
            self._db.execute("DELETE FROM spool WHERE id >= ? AND id <= ?", (ids[0], ids[-1]))
            self._db.execute("COMMIT")
            self._pending = max(0, self._pending - min(points, n))
