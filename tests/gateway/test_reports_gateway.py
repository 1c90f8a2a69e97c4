"""A whole gateway (real Mosquitto, ingest, store, web view): a day of events with ratings, sent by an edge-like
publisher across a broker restart and partly twice, gives a report equal to the raw event log, every rating
once in the ratings API rows, and the daily ratings file once the day has ended."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import paho.mqtt.client as mqtt

from civiq.clock import FakeClock
from civiq.contract import topic
from civiq.dev.broker import free_port
from civiq.gateway.reports import sample
from civiq.gateway.service import Gateway
from civiq.gateway.settings import GatewaySettings
from tests.conftest import wait_for
from tests.gateway.test_reports_compute import check_report

C = "hcm-q1"
DAY = date(2026, 12, 5)


def test_a_day_through_a_broker_restart_reports_exactly_the_log(broker, tmp_path: Path) -> None:  # noqa: ANN001
    clock = FakeClock(datetime(2026, 12, 6, 1, 0, tzinfo=UTC))  # 08:00 local on the 6th: the 5th has ended
    drop = tmp_path / "mot-cua"
    settings = GatewaySettings.load(data_dir=tmp_path / "gw", http={"port": free_port()},
                                    mqtt={"host": broker.host, "port": broker.port}, ratings_drop_dir=drop)
    gw = Gateway(settings, clock=clock, channels=[])
    gw.start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edge-like")
    pub.reconnect_delay_set(0.1, 1)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    evs = sample.sample_events([DAY], per_day=70, seed=21)
    try:
        for node in ("pi-1", "pi-2"):
            pub.publish(topic(C, node, "status"), sample.birth(C, node=node).to_json(), qos=1,
                        retain=True).wait_for_publish(5)
        half = len(evs) // 2

        def send(items: list) -> None:
            infos = [pub.publish(topic(C, n, "event"), e.to_json(), qos=1) for n, e in items]
            for i in infos:
                i.wait_for_publish(20)

        send(evs[:half])
        wait_for(lambda: gw.store.event_count(C) == half, timeout=20, what="the first half stored")
        broker.stop()  # the broker restarts (sessions kept): the edge's outbox re-sends a part on reconnect
        broker.start()
        wait_for(pub.is_connected, timeout=15, what="the publisher back on the broker")
        send(evs[half - 40:])  # 40 events for the second time, then the rest
        wait_for(lambda: gw.store.event_count(C) == len(evs), timeout=30, what="every event stored")
        rep = gw.view.report(C, "day", DAY.isoformat())
        check_report(rep, evs, DAY, DAY)
        rated = [e for _, e in evs if e.type == "ticket.rated"]
        rows = gw.view.ratings(C, *gw.store.day_bounds(DAY))
        assert len(rows) == rep["total"]["ratings"] and len({r["id"] for r in rows}) == len(rows)
        assert len(rated) >= len(rows) > 0  # every valid rating once (a repeated or broken one is not a row)
        assert rows[0]["center_name"] == "Phường Bến Thành" and rows[0]["clerk_name"] in {*sample.CLERKS.values(), None}
        clock.advance(61)  # the drop looks at most once a minute
        f = drop / f"ratings-{C}-{DAY}.csv"

        def drop_lines() -> list[list[str]]:
            # a pass that ran while the day was still arriving wrote part of it; the next pass rewrites it whole
            return list(csv.reader(io.StringIO(f.read_bytes().decode("utf-8-sig")))) if f.exists() else []

        wait_for(lambda: len(drop_lines()) - 1 == len(rows), timeout=10, what="the whole day in the ratings file")
        assert drop_lines()[0][0] == "Thời điểm"
    finally:
        pub.loop_stop()
        pub.disconnect()
        gw.stop()
