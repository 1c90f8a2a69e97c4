"""Fuzz both MQTT receivers on a real Mosquitto: the edge link's command handler and the gateway's ingest.

Each example publishes a burst of hostile messages, then one valid sentinel; the sentinel must be handled
(the receiver is alive and in order), every hostile message must be counted, and nothing may crash a thread.
"""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from civiq.clock import SystemClock
from civiq.contract import CmdResult, Command, DisplayCmd, Event, cmd_topic, parse_payload, topic
from civiq.edge.link import EdgeLink
from civiq.edge.queue.store import EdgeStore
from civiq.gateway.ingest import Ingest
from civiq.gateway.settings import GatewaySettings
from civiq.gateway.state import LiveState
from civiq.gateway.store.series import SeriesStore
from tests.conftest import wait_for
from tests.reliability.faultkit import fuzz, soak
from tests.reliability.test_fuzz_contract import VALID, clean_json, mutated

# bounded here; `make soak` (CIVIQ_SOAK=1) runs many more examples, with the time that takes
pytestmark = [pytest.mark.slow, pytest.mark.timeout(soak(120, 1800))]

C, N = "fz-center", "pi-1"
TS = "2026-01-05T01:00:00+00:00"
hostile_extra = st.sampled_from([
    b"", b"null", b"[]", b'"x"', b"\xff\xfe", b"[" * 50_000, b'{"id": "' + b"x" * 100 + b'"}',
    b'{"id": "n1", "seq": 1' + b"0" * 400 + b"}", b'{"id": "n2", "eta_s": NaN, "seconds": Infinity}',
    b'{"id": "n3", "text": "\\ud800"}', b'{"id": "x", "pad": "' + b"y" * 300_000 + b'"}',
])


def payloads(name: str) -> st.SearchStrategy[bytes]:
    return (mutated(VALID[name]).map(lambda d: json.dumps(d).encode()) | clean_json.map(lambda v: json.dumps(v).encode())
            | st.binary(max_size=200) | hostile_extra)


class Publisher:
    def __init__(self, broker) -> None:  # noqa: ANN001
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fuzzer")
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()

    def burst(self, messages: list[tuple[str, bytes]]) -> None:
        infos = [self.c.publish(t, p, qos=1) for t, p in messages]
        for i in infos:
            i.wait_for_publish(10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def publisher(broker):  # noqa: ANN001, ANN201
    p = Publisher(broker)
    yield p
    p.close()


# ------------------------------------------------------------------------------------------ edge commands
@fuzz(4, 60)
@given(data=st.data())
def test_edge_link_command_handler(broker, recorder, publisher, tmp_path: Path, data: st.DataObject) -> None:  # noqa: ANN001
    rec = recorder(topic(C, N, "cmd_result"))
    handled: list[Command] = []
    store = EdgeStore(tmp_path / f"edge-{len(list(tmp_path.iterdir()))}.db")
    link = EdgeLink(store, center=C, node=N, host=broker.host, port=broker.port, clock=SystemClock(), keepalive=5,
                    on_command=lambda name, cmd: handled.append(cmd) or {"seen": cmd.id})
    link.start()
    try:
        wait_for(lambda: link.connected, what="link connected")
        names = ["display", "counter", "policy", "test_print", "rebirth", "unknown", "DISPLAY", "cmd"]
        burst = []
        for _ in range(data.draw(st.integers(20, 60))):
            name = data.draw(st.sampled_from(names))
            schema = f"cmd/{name}" if f"cmd/{name}" in VALID else "cmd/display"
            burst.append((cmd_topic(C, N, name), data.draw(payloads(schema))))
        publisher.burst(burst)
        publisher.burst([(cmd_topic(C, N, "display"), DisplayCmd(id="sentinel", text="A001").to_json())])
        results = wait_for(lambda: [r for r in (parse_payload(CmdResult, p) for p in rec.on("cmd_result"))
                                    if r.id == "sentinel"], timeout=20, what="the sentinel answered")
        assert results[0].ok and results[0].data == {"seen": "sentinel"}
        s = link.stats
        assert s["commands"] + s["bad_commands"] + s["dropped_commands"] == len(burst) + 1, (s, len(burst))
        assert all(isinstance(c, Command) for c in handled)
        assert link.connected
    finally:
        link.stop()
        store.close()


# ------------------------------------------------------------------------------------------ gateway ingest
@fuzz(4, 60)
@given(data=st.data())
def test_gateway_ingest(broker, publisher, clock, tmp_path: Path, data: st.DataObject) -> None:  # noqa: ANN001
    run = tmp_path / f"gw-{len(list(tmp_path.iterdir()))}"
    settings = GatewaySettings(gateway_id="gw-fuzz", mqtt={"host": broker.host, "port": broker.port, "keepalive": 5,
                                                          "client_id": f"gw-fuzz-{run.name}"}, data_dir=run)
    store = SeriesStore(settings.db_path)
    ing = Ingest(settings, LiveState(), store, clock=clock).start()
    try:
        assert ing.wait_ready(10)
        leaves = ["event", "status", "queue", "health", "cmd_result"]
        burst = []
        for _ in range(data.draw(st.integers(20, 80))):
            leaf = data.draw(st.sampled_from(leaves))
            node = data.draw(st.sampled_from(["pi-1", "pi-2", "PI 3", "x" * 70]))
            t = f"civiq/v1/{C}/{node}/{leaf}" if data.draw(st.integers(0, 9)) else data.draw(st.sampled_from(
                [f"civiq/v1/{C}/{node}", f"civiq/v2/{C}/{node}/{leaf}", f"civiq/v1/{C}/{node}/{leaf}/x"]))
            burst.append((t, data.draw(payloads(leaf))))
        publisher.burst(burst)
        sentinel = Event(seq=1, ts=clock.now(), type="ticket.issued", data={"ticket": "A001", "service": "A"})
        publisher.burst([(topic("fz-sentinel", "pi-1", "event"), sentinel.to_json())])
        wait_for(lambda: store.event_count("fz-sentinel") == 1, timeout=20, what="the sentinel event stored")
        assert ing.wait_idle(10)
        assert ing.writer.thread is not None and ing.writer.thread.is_alive(), "the writer thread died"
        received = sum(1 for t, _ in burst if t.startswith(f"civiq/v1/{C}/") and t.count("/") == 4) + 1
        m = ing.metrics
        assert m.messages.total() + m.malformed.total() == received, (m.messages.total(), m.malformed.total())
        assert ing.stats["connected"]
        json.loads(ing.state.to_json())  # the live state can still be saved
    finally:
        ing.stop()
        store.close()


def test_gateway_survives_the_contract_gaps(broker, publisher, clock, tmp_path: Path) -> None:  # noqa: ANN001
    """Payloads the contract once accepted and now refuses (non-finite numbers, integers beyond 64 bits, lone
    surrogates): the ingest drops them, stores every later message and keeps its live state saveable."""
    settings = GatewaySettings(gateway_id="gw-gaps", mqtt={"host": broker.host, "port": broker.port, "keepalive": 5},
                               data_dir=tmp_path)
    store = SeriesStore(settings.db_path)
    ing = Ingest(settings, LiveState(), store, clock=clock).start()
    try:
        assert ing.wait_ready(10)
        publisher.burst([
            (topic(C, "pi-1", "event"), f'{{"seq": {2**64}, "ts": "{TS}", "type": "ticket.issued"}}'.encode()),
            (topic(C, "pi-2", "queue"), f'{{"ts": "{TS}", "day": "2026-01-05", "services": {{"A": {{"waiting": 1,'
                                        f' "eta_s": NaN, "oldest_wait_s": Infinity}}}}}}'.encode()),
            (topic(C, "pi-3", "event"), f'{{"seq": 1, "ts": "{TS}", "type": "ticket.issued", '
                                        f'"data": {{"ticket": "\\ud800"}}}}'.encode()),
            (topic(C, "pi-4", "health"), f'{{"ts": "{TS}", "host": {{"cpu_temp_c": 1e400}}}}'.encode()),
        ])
        ok = Event(seq=1, ts=clock.now(), type="ticket.issued", data={"ticket": "A001", "service": "A"})
        publisher.burst([(topic("fz-sentinel", "pi-1", "event"), ok.to_json())])
        wait_for(lambda: store.event_count("fz-sentinel") == 1, what="the sentinel event stored")
        assert ing.wait_idle(10)
        assert ing.writer.thread is not None and ing.writer.thread.is_alive()
        store.save_state(ing.state.to_json())  # what the writer does every 30 s
        assert LiveState.from_json(ing.state.to_json()).node("fz-sentinel", "pi-1") is not None
    finally:
        ing.stop()
        store.close()
