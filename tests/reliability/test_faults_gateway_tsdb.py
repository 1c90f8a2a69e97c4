"""The gateway and the time-series server going away while the centers keep working.

* Gateway down (8 s in CI, 10 minutes under ``CIVIQ_SOAK=1``) while three centers issue and call: when it is
  back, every event is stored once, the live state is back, the nodes are online, and not one offline alert
  goes out (no storm after an outage of our own).
* VictoriaMetrics down (10 s in CI, 30 minutes in the soak) while points keep coming: after it returns, every
  point is there exactly once.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from civiq.gateway.store.influx import InfluxExport, queue_lines
from tests.conftest import wait_for
from tests.e2e.system import SimCenter, Webhook, gateway_settings, start_gateway
from tests.gateway.test_influx import VictoriaMetrics, make_export, snap
from tests.reliability.faultkit import soak

pytestmark = pytest.mark.slow


@pytest.mark.timeout(soak(120, 1200))
def test_gateway_down_centers_go_on_nothing_lost_no_alert_storm(tmp_path: Path, broker, hook: Webhook) -> None:  # noqa: ANN001
    settings = gateway_settings(tmp_path / "gw", broker.port, alerts={"webhooks": [hook.url]},
                                heartbeat_timeout_s=20)
    gw = start_gateway(settings)
    for c in ("xa-g1", "xa-g2", "xa-g3"):
        (tmp_path / c).mkdir()
    centers = [SimCenter(tmp_path / c, broker.port, c) for c in ("xa-g1", "xa-g2", "xa-g3")]
    try:
        for c in centers:
            c.start()
            c.agent.sim.press_button("A")
        wait_for(lambda: all(gw.store.event_count(c.center) >= 1 for c in centers), timeout=15,
                 what="every center seen by the gateway")
        gw.stop()
        gw = None
        outage = soak(8, 600)
        end, i = time.monotonic() + outage, 0
        while time.monotonic() < end:  # the centers work on: tickets and calls, paced like a busy hour
            for c in centers:
                c.agent.sim.press_button("AB"[i % 2])
                if i % 3 == 2:
                    c.agent.sim.press_key(f"k{1 + i % 2}", "next")
            i += 1
            time.sleep(min(1.0, max(0.05, outage / 200)))
        gw = start_gateway(settings)  # same data dir: its persistent session kept the events in the broker
        for c in centers:
            last = c.agent.store.last_seq()
            wait_for(lambda c=c, last=last: gw.store.event_count(c.center) == last, timeout=30,
                     what=f"all {last} events of {c.center} stored")
        wait_for(lambda: all((gw.state.node(c.center, c.node) or {}).get("status") == "online" for c in centers),
                 timeout=20, what="every node online again")
        assert gw.store.gaps() == {}
        for c in centers:
            snap_now = c.agent.engine.snapshot()
            wait_for(lambda c=c, s=snap_now: gw.view.center(c.center)["services"]["A"]["issued_today"]
                     == s.services["A"].issued_today, timeout=10, what=f"{c.center}'s live numbers")
        # the health reports of the next seconds confirm everyone alive: no offline alert ever goes out
        for c in centers:
            c.agent._publish_health()  # noqa: SLF001 - what the edge's loop does every 15 s
        assert gw.ingest.wait_idle(10)
        gw.alerts.tick()
        assert not [m for m in hook.messages() if m.get("kind") == "node_offline"], hook.summary()
        assert not [a for a in gw.view.alerts(None) if a["kind"] == "node_offline"]
        print(f"\nRESULT gateway down {outage:.0f} s: {sum(c.agent.store.last_seq() for c in centers)} events, "
              "all stored once, no offline alert")
    finally:
        for c in centers:
            c.stop()
        if gw is not None:
            gw.stop()


@pytest.mark.timeout(soak(120, 2700))
def test_tsdb_down_for_a_long_time_nothing_lost_nothing_doubled(tmp_path: Path) -> None:
    vm = VictoriaMetrics(tmp_path / "vm-data").start()
    exp: InfluxExport = make_export(vm, tmp_path / "spool.db").start()
    expected: Counter = Counter()
    n = 0

    def add() -> None:
        nonlocal n
        for ln in queue_lines("hcm-q1", snap(n)):
            if not ln.startswith("queue,"):
                continue  # the counter lines ride along; the queue series are what is counted
            tags, fields, ts = ln.split(" ")
            for f in fields.split(","):
                expected[(f"queue_{f.split('=')[0]}", tags.split("service=")[1], int(ts) // 1_000_000)] += 1
        exp.add(queue_lines("hcm-q1", snap(n)))
        n += 1

    try:
        for _ in range(20):
            add()
        wait_for(lambda: exp.pending() == 0, what="sent while the TSDB is up")
        vm.stop()
        outage = soak(10, 1800)
        end = time.monotonic() + outage
        while time.monotonic() < end:  # a snapshot a second, as one busy center sends
            add()
            time.sleep(1.0 if outage > 60 else 0.05)
        assert exp.pending() > 0 and exp.stats["failed_attempts"] >= 1
        vm.start()
        wait_for(lambda: exp.pending() == 0, timeout=90, what="the spool drained after the TSDB came back")
        got: Counter = Counter()
        for (name, labels, ts), k in vm.samples('{__name__=~"queue_.*"}', sum(expected.values())).items():
            got[(name, dict(labels)["service"], ts)] += k
        assert not expected - got, f"{len(expected - got)} points lost"
        assert not got - expected, f"{len(got - expected)} points doubled or unexpected"
        print(f"\nRESULT TSDB down {outage:.0f} s: {sum(expected.values())} points, none lost, none doubled")
    finally:
        exp.stop()
        vm.remove()
