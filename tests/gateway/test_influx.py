"""InfluxExport against a real VictoriaMetrics (its /api/v2/write speaks InfluxDB's line protocol).

Checks the schema as stored (names, tags, numeric fields, timestamps), and that a TSDB outage plus a
gateway restart lose nothing and duplicate nothing.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from civiq.contract import Event, Health, QueueSnapshot
from civiq.dev.harness import VictoriaMetrics
from civiq.gateway.store.influx import InfluxExport, event_lines, health_lines, line, node_line, queue_lines
from tests.conftest import wait_for

VM = shutil.which("victoria-metrics")
pytestmark = pytest.mark.skipif(VM is None, reason="victoria-metrics is not installed (apt install victoria-metrics)")

# VictoriaMetrics drops samples older than its retention (1 month by default): write recent times
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


@pytest.fixture
def vm(tmp_path):  # noqa: ANN001
    v = VictoriaMetrics(tmp_path / "vm-data").start()
    yield v
    v.stop()


def snap(i: int) -> QueueSnapshot:
    return QueueSnapshot(
        ts=BASE + timedelta(seconds=i), day="2026-11-23",
        services={"a": {"waiting": i, "oldest_wait_s": 10.5 * i, "eta_s": 60 * i},
                  "b": {"waiting": 2, "oldest_wait_s": 5}},  # eta unknown: no eta_s field at all
        counters={"1": {"state": "open", "ticket": "A001", "served_today": i},
                  "2": {"state": "break", "served_today": 1}},
    )


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def make_export(vm: VictoriaMetrics, spool: Path) -> InfluxExport:
    return InfluxExport(vm.url, "", "civiq", "civiq", spool, batch_size=40, flush_interval_s=0.05,
                        max_backoff_s=0.3, timeout_ms=2000)


def test_schema_as_stored(vm: VictoriaMetrics, tmp_path: Path) -> None:
    exp = make_export(vm, tmp_path / "spool.db").start()
    try:
        for i in range(1, 6):
            exp.add(queue_lines("hcm-q1", snap(i)))
        exp.add(health_lines("hcm-q1", "pi-1", Health(
            ts=BASE, host={"cpu_temp_c": 51.5, "disk_used_pct": 40},
            devices=[{"id": "printer-1", "kind": "printer", "state": "failed", "detail": "paper out"}],
            outbox={"pending": 7})))
        exp.add([node_line("hcm-q1", "pi-2", False, BASE)])
        for seq in (1, 2):  # two tickets in the same millisecond stay two points
            exp.add(event_lines("hcm-q1", Event(seq=seq, ts=BASE, type="ticket.called",
                                                data={"service": "a", "counter": "1", "wait_s": 90 * seq})))
        exp.add(event_lines("hcm-q1", Event(seq=3, ts=BASE, type="counter.opened", data={"counter": "1"})))
        wait_for(lambda: exp.pending() == 0, what="spool drained")
        assert exp.stats["sent"] == 5 * 4 + 2 + 1 + 2 and exp.stats["failed_attempts"] == 0
    finally:
        exp.stop()

    queue = {(s["metric"]["__name__"], s["metric"]["service"]): s for s in vm.export_when('{__name__=~"queue_.*"}', 5 * 4)}
    assert set(queue) == {("queue_waiting", "a"), ("queue_oldest_wait_s", "a"), ("queue_eta_s", "a"),
                          ("queue_waiting", "b"), ("queue_oldest_wait_s", "b")}
    w = queue[("queue_waiting", "a")]
    assert {k: v for k, v in w["metric"].items() if k != "db"} == {
        "__name__": "queue_waiting", "center": "hcm-q1", "service": "a"}
    assert w["timestamps"] == [ms(BASE + timedelta(seconds=i)) for i in range(1, 6)]
    assert w["values"] == [1, 2, 3, 4, 5]
    assert queue[("queue_oldest_wait_s", "a")]["values"] == [10.5, 21, 31.5, 42, 52.5]

    counters = {(s["metric"]["__name__"], s["metric"]["counter"]): s["values"][-1]
                for s in vm.export_when('{__name__=~"counter_.*"}', 5 * 6)}
    assert counters == {("counter_served_today", "1"): 5, ("counter_busy", "1"): 1, ("counter_open", "1"): 1,
                        ("counter_served_today", "2"): 1, ("counter_busy", "2"): 0, ("counter_open", "2"): 0}

    (dev,) = vm.export_when('{__name__="device_state_code"}', 1)
    assert {k: dev["metric"][k] for k in ("center", "node", "device", "kind")} == {
        "center": "hcm-q1", "node": "pi-1", "device": "printer-1", "kind": "printer"}
    assert dev["values"] == [2]
    nodes = {(s["metric"]["__name__"], s["metric"]["node"]): s["values"] for s in vm.export_when('{__name__=~"node_.*"}', 5)}
    assert nodes[("node_online", "pi-1")] == [1] and nodes[("node_online", "pi-2")] == [0]
    assert nodes[("node_outbox_pending", "pi-1")] == [7] and nodes[("node_cpu_temp_c", "pi-1")] == [51.5]

    tickets = vm.export_when('{__name__=~"ticket_event_.*"}', 4)
    by = {s["metric"]["__name__"]: s for s in tickets}
    assert set(by) == {"ticket_event_count", "ticket_event_wait_s"}  # counter.opened is not a ticket event
    assert by["ticket_event_count"]["metric"]["type"] == "called"
    assert sorted(by["ticket_event_wait_s"]["values"]) == [90, 180]


def test_outage_and_restart_lose_nothing_and_duplicate_nothing(vm: VictoriaMetrics, tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    exp = make_export(vm, spool).start()
    expected: Counter = Counter()

    def add(i: int, e: InfluxExport) -> None:
        lines = queue_lines("hcm-q1", snap(i))
        e.add(lines)
        for ln in lines:
            if ln.startswith("queue,"):
                tags, fields, ts = ln.split(" ")
                svc = tags.split("service=")[1]
                for f in fields.split(","):
                    expected[(f"queue_{f.split('=')[0]}", svc, int(ts) // 1_000_000)] += 1

    for i in range(0, 100):
        add(i, exp)
    wait_for(lambda: exp.pending() == 0, what="first part sent")

    vm.stop()
    for i in range(100, 200):
        add(i, exp)
    wait_for(lambda: exp.stats["failed_attempts"] >= 2, what="writes failing while the TSDB is down")
    assert exp.pending() > 0
    exp.stop(drain_timeout_s=0)  # the gateway restarts during the outage: the spool is on disk
    exp = make_export(vm, spool)
    assert exp.pending() > 0
    exp.start()
    for i in range(200, 300):
        add(i, exp)

    vm.start()  # same data path, same port
    try:
        wait_for(lambda: exp.pending() == 0, timeout=20, what="spool drained after the TSDB came back")
    finally:
        exp.stop()

    got: Counter = Counter()
    for (name, labels, ts), n in vm.samples('{__name__=~"queue_.*"}', 300 * 5).items():
        got[(name, dict(labels)["service"], ts)] += n
    assert sum(expected.values()) == 300 * 5
    missing = expected - got
    extra = got - expected
    assert not missing, f"{len(missing)} points lost, e.g. {list(missing)[:3]}"
    assert not extra, f"{len(extra)} duplicated or unexpected points, e.g. {list(extra)[:3]}"


class InfluxLike:
    """A small HTTP server answering /api/v2/write the way InfluxDB 2 does: 400 with a JSON error for bad
    line protocol, 503 when told to be unavailable, 204 otherwise (no InfluxDB 2 server package exists
    here, and VictoriaMetrics accepts bad lines silently)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.accepted: list[str] = []
        self.unavailable = 0  # answer 503 to the next N writes
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                if outer.unavailable:
                    outer.unavailable -= 1
                    code, reply = 503, b'{"code":"unavailable","message":"busy"}'
                elif "not line protocol" in body:
                    code, reply = 400, b'{"code":"invalid","message":"unable to parse"}'
                else:
                    outer.accepted += body.splitlines()
                    code, reply = 204, b""
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *a: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_rejected_batch_is_dropped_and_503_is_retried(tmp_path: Path) -> None:
    srv = InfluxLike()
    exp = InfluxExport(srv.url, "t", "civiq", "civiq", tmp_path / "spool.db", batch_size=1,
                       flush_interval_s=0.02, max_backoff_s=0.05)
    good = [line("node", {"center": "c", "node": f"n{i}"}, {"online": True}, ms(BASE) * 1_000_000)
            for i in range(3)]
    exp.add([good[0]])
    exp.add(["this is not line protocol at all ==="])
    exp.add(good[1:])
    srv.unavailable = 2
    exp.start()
    try:
        wait_for(lambda: exp.pending() == 0, what="spool drained past the bad line")
    finally:
        exp.stop()
        srv.close()
    assert srv.accepted == good  # in order, each once
    st = exp.stats
    assert (st["rejected"], st["sent"], st["failed_attempts"]) == (1, 3, 2)


def test_line_protocol_escaping_and_validation() -> None:
    ln = line("queue", {"center": "a b,c=d", "service": ""}, {"waiting": 3, "x": None, "ok": True, "f": 1.5}, 7)
    assert ln == r"queue,center=a\ b\,c\=d,service=_ f=1.5,ok=1i,waiting=3i 7"
    with pytest.raises(ValueError, match="at least one field"):
        line("queue", {}, {"eta_s": None}, 1)


def test_a_spool_of_the_older_one_line_a_row_format_is_sent_whole(tmp_path: Path) -> None:
    """A gateway upgraded with points still spooled (one line per row, no ``n`` column) sends them all,
    in order, together with new ones (spooled as rows of up to batch_size lines)."""
    import sqlite3

    old = [line("node", {"center": "c", "node": f"old{i}"}, {"online": True}, ms(BASE) * 1_000_000) for i in range(5)]
    db = sqlite3.connect(tmp_path / "spool.db")
    db.execute("CREATE TABLE spool (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL)")
    db.executemany("INSERT INTO spool(line) VALUES (?)", [(ln,) for ln in old])
    db.commit()
    db.close()
    srv = InfluxLike()
    exp = InfluxExport(srv.url, "t", "civiq", "civiq", tmp_path / "spool.db", batch_size=3, flush_interval_s=0.02)
    new = [line("node", {"center": "c", "node": f"new{i}"}, {"online": False}, ms(BASE) * 1_000_000) for i in range(7)]
    assert exp.pending() == 5
    exp.add(new)
    assert exp.pending() == 12
    assert [r[0] for r in exp._db.execute("SELECT n FROM spool WHERE id > 5 ORDER BY id")] == [3, 3, 1]  # noqa: SLF001
    exp.start()
    try:
        wait_for(lambda: exp.pending() == 0, what="old and new points sent")
    finally:
        exp.stop()
        srv.close()
    assert srv.accepted == old + new
    assert exp.stats["sent"] == 12
