"""The edge MQTT link against a real Mosquitto and a real SQLite outbox: nothing is ever lost.

Birth/death with bdseq, the Last Will on an abrupt loss (in-process and a kill -9 of a separate agent
process), a broker outage with events appended meanwhile, latest-wins state snapshots, gateway presence.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from conftest import wait_for

from civiq.clock import FakeClock
from civiq.contract import (
    ROOT,
    Alive,
    DeviceInfo,
    Event,
    GatewayStatus,
    Health,
    QueueSnapshot,
    ServiceQueue,
    Status,
    gateway_status_topic,
    parse_payload,
)
from civiq.dev.broker import Mosquitto, free_port
from civiq.edge.link import EdgeLink, backoff_delay
from civiq.edge.link.mqtt import BDSEQ_KEY
from civiq.edge.queue.store import EdgeStore

CENTER, NODE = "hcm-q1", "pi-1"
NODE_TOPICS = f"{ROOT}/{CENTER}/{NODE}/#"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_link(broker: Mosquitto, clock: FakeClock) -> Iterator[Callable[..., EdgeLink]]:
    made: list[EdgeLink] = []

    def make(store: EdgeStore, **kw: object) -> EdgeLink:
        kw.setdefault("backoff_min", 0.05)
        kw.setdefault("backoff_max", 0.3)
        link = EdgeLink(store, center=CENTER, node=NODE, host=broker.host, port=broker.port, clock=clock,
                        **kw)  # type: ignore[arg-type]
        made.append(link)
        return link

    yield make
    for link in made:
        link.stop(timeout=1)


def statuses(payloads: list[bytes]) -> list[Status]:
    return [parse_payload(Status, p) for p in payloads]


def event_seqs(payloads: list[bytes]) -> list[int]:
    return [parse_payload(Event, p).seq for p in payloads]


def first_arrival(seqs: list[int]) -> list[int]:
    return list(dict.fromkeys(seqs))


class SessionRecorder:
    """A subscriber with a persistent session (like the gateway): the broker keeps its messages while it is
    away, so it sees everything published while it reconnects after a broker restart."""

    def __init__(self, broker: Mosquitto, topics: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gw-recorder", clean_session=False)
        self.client.reconnect_delay_set(0.05, 0.3)

        def on_connect(c, u, flags, rc, p=None):  # noqa: ANN001
            if not flags.session_present:
                c.subscribe(topics, qos=1)

        def on_message(c, u, m):  # noqa: ANN001
            with self.lock:
                self.messages.append((m.topic, m.payload))

        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def on(self, leaf: str) -> list[bytes]:
        with self.lock:
            return [p for t, p in self.messages if t.endswith("/" + leaf)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def append(store: EdgeStore, clock: FakeClock, n: int) -> None:
    for i in range(n):
        store.append("ticket.issued", {"ticket": f"A{i + 1:03d}", "service": "a"}, clock.now())


# ------------------------------------------------------------------------------------------------ tests
def test_backoff_is_jittered_and_bounded() -> None:
    delays = [backoff_delay(n, 0.5, 30.0) for n in range(200)]
    assert all(0.5 <= d <= 30.0 for d in delays)
    late = [backoff_delay(20, 0.5, 30.0) for _ in range(200)]
    assert max(late) - min(late) > 10, "delays must be spread (full jitter), not lock-step"
    assert max(backoff_delay(0, 0.5, 30.0) for _ in range(100)) <= 1.0


def test_start_returns_at_once_without_broker(tmp_path: Path, clock: FakeClock) -> None:
    store = EdgeStore(tmp_path / "edge.db")
    link = EdgeLink(store, center=CENTER, node=NODE, host="127.0.0.1", port=free_port(), clock=clock,
                    backoff_min=0.01, backoff_max=0.05)
    t0 = time.monotonic()
    link.start()
    try:
        assert time.monotonic() - t0 < 1.0, "start() must not wait for the broker"
        append(store, clock, 3)
        clock.advance(42)
        wait_for(lambda: int(store.get_meta(BDSEQ_KEY, "0")) >= 3, what="repeated connection attempts")
        assert not link.connected
        stats = link.pending_stats()
        assert (stats.pending, stats.oldest_s) == (3, 42.0)
        assert link.stats["connect_failures"] >= 2
    finally:
        link.stop()


def test_birth_is_retained_with_bdseq_and_config_hash(make_link, recorder, tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "edge.db")
    store.set_meta(BDSEQ_KEY, "41")  # as left by an earlier run
    link = make_link(store, config_hash="sha256:abc", version="9.9.9",
                     devices=[DeviceInfo(id="printer-1", kind="printer", model="xp58")])
    link.start()
    wait_for(lambda: link.connected, what="link connected")
    rec = recorder(NODE_TOPICS)  # subscribes after the birth: gets the retained copy
    births = wait_for(lambda: statuses(rec.on("/status")), what="retained birth")
    birth = births[-1]
    assert birth.online and birth.bdseq == 42 and store.get_meta(BDSEQ_KEY) == "42"
    assert birth.config_hash == "sha256:abc" and birth.version == "9.9.9"
    assert [d.id for d in birth.devices] == ["printer-1"]
    assert rec.messages[-1][2] is True, "birth must be retained"


def test_abrupt_loss_publishes_will_and_next_birth_has_new_bdseq(make_link, recorder, tmp_path: Path) -> None:
    rec = recorder(NODE_TOPICS)
    store = EdgeStore(tmp_path / "edge.db")
    link = make_link(store)
    link.start()
    wait_for(lambda: link.connected)
    link.stop(clean=False)  # cut the socket without DISCONNECT, as a crash or a cable pull would
    will = wait_for(lambda: [s for s in statuses(rec.on("/status")) if not s.online], what="Last Will")[0]
    assert will.bdseq == 1 and not will.clean and will.ts is None
    link2 = make_link(store)
    link2.start()
    wait_for(lambda: [s for s in statuses(rec.on("/status")) if s.online and s.bdseq == 2], what="new birth")
    assert link2.connected


def test_clean_stop_leaves_retained_offline_status(make_link, recorder, tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "edge.db")
    link = make_link(store)
    link.start()
    wait_for(lambda: link.connected)
    link.stop()
    assert not link.connected
    rec = recorder(NODE_TOPICS)
    retained = wait_for(lambda: statuses(rec.on("/status")), what="retained status")
    assert len(retained) == 1
    assert retained[0].online is False and retained[0].clean is True and retained[0].bdseq == 1


@pytest.mark.integration  # a broker of its own (persistent sessions), restarted
def test_broker_outage_loses_nothing(clock: FakeClock, tmp_path: Path) -> None:
    # A broker that keeps sessions across its restart (as production does), and a gateway-like subscriber with
    # a persistent session, so the subscriber misses nothing while both reconnect. Its own workdir, outside
    # pytest's 0700 tmp_path: mosquitto drops root privileges before writing its database.
    persist = Path(tempfile.mkdtemp(prefix="civiq-persist-"))
    persist.chmod(0o777)
    broker = Mosquitto(workdir=persist, persistent=True).start()
    links: list[EdgeLink] = []
    rec = SessionRecorder(broker, NODE_TOPICS)
    try:
        store = EdgeStore(tmp_path / "edge.db")
        link = EdgeLink(store, center=CENTER, node=NODE, host=broker.host, port=broker.port, clock=clock,
                        backoff_min=0.05, backoff_max=0.3)
        links.append(link)
        link.start()
        wait_for(lambda: link.connected)

        broker.stop()
        assert (persist / "mosquitto.db").exists(), "the broker must have saved the recorder's session"
        wait_for(lambda: not link.connected, what="link notices the outage")
        append(store, clock, 200)
        link.notify()
        for i in (1, 2, 3):  # latest wins: only the newest snapshot of each leaf goes out after reconnect
            clock.advance(1)
            link.publish_state("queue", QueueSnapshot(ts=clock.now(), day="2026-01-05", last_seq=i,
                                                      services={"a": ServiceQueue(waiting=i)}), retain=True)
            link.publish_state("health", Health(ts=clock.now()), retain=False)
        assert link.pending_stats().pending == 200

        broker.start()
        wait_for(lambda: len(set(event_seqs(rec.on("event")))) >= 200, timeout=15, what="all 200 events")
        assert link.wait_drained(10), "outbox must empty once the broker acknowledged everything"
        seqs = event_seqs(rec.on("event"))
        assert set(seqs) == set(range(1, 201))
        assert first_arrival(seqs) == list(range(1, 201)), "first arrivals must be in seq order"
        assert link.stats["reconnects"] >= 1 and link.stats["acked"] >= 200

        wait_for(lambda: rec.on("queue") and rec.on("health"), what="state snapshots after reconnect")
        queues = [parse_payload(QueueSnapshot, p) for p in rec.on("queue")]
        assert [q.last_seq for q in queues] == [3], "only the newest queue snapshot is sent"
        healths = [parse_payload(Health, p) for p in rec.on("health")]
        assert [h.ts for h in healths] == [clock.now()]
    finally:
        for link in links:
            link.stop(timeout=1)
        rec.close()
        broker.stop()
        shutil.rmtree(persist, ignore_errors=True)


def test_hung_broker_is_noticed_and_outbox_replays(broker: Mosquitto, make_link, recorder, clock: FakeClock,
                                                   tmp_path: Path) -> None:
    rec = recorder(NODE_TOPICS)
    store = EdgeStore(tmp_path / "edge.db")
    link = make_link(store, keepalive=1)
    link.start()
    wait_for(lambda: link.connected)
    broker.pause()  # SIGSTOP: a cut cable; no TCP reset, only the keepalive can tell
    try:
        append(store, clock, 20)
        link.notify()
        wait_for(lambda: not link.connected, timeout=5, what="keepalive notices the silent broker")
    finally:
        broker.resume()
    wait_for(lambda: len(set(event_seqs(rec.on("/event")))) == 20, what="the 20 events after the hang")
    assert link.wait_drained(5) and link.connected
    assert first_arrival(event_seqs(rec.on("/event"))) == list(range(1, 21))


def test_pump_keeps_order_under_a_live_burst(make_link, recorder, clock: FakeClock, tmp_path: Path) -> None:
    rec = recorder(NODE_TOPICS)
    store = EdgeStore(tmp_path / "edge.db")
    link = make_link(store, max_inflight=5)
    link.start()
    wait_for(lambda: link.connected)
    for _ in range(60):
        append(store, clock, 5)
        link.notify()
    wait_for(lambda: len(rec.on("/event")) >= 300, what="300 events")
    assert link.wait_drained(5)
    assert event_seqs(rec.on("/event")) == list(range(1, 301))
    assert link.stats["published"] == 300 and link.stats["acked"] == 300


def test_gateway_presence(make_link, recorder, tmp_path: Path) -> None:
    rec = recorder(f"{ROOT}/gateway/#")
    store = EdgeStore(tmp_path / "edge.db")
    link = make_link(store)
    link.start()
    wait_for(lambda: link.connected)
    assert not link.gateway_online
    t = gateway_status_topic("gw-1")
    rec.client.publish(t, GatewayStatus(online=True).to_json(), qos=1, retain=True)
    wait_for(lambda: link.gateway_online, what="gateway seen online")
    rec.client.publish(t, b"not json", qos=1, retain=True)  # ignored, logged
    rec.client.publish(t, GatewayStatus(online=False).to_json(), qos=1, retain=True)
    wait_for(lambda: not link.gateway_online, what="gateway seen offline")
    assert link.connected


def test_a_gateway_coming_back_gets_a_fresh_announcement(make_link, recorder, tmp_path: Path) -> None:  # noqa: ANN001
    rec = recorder(NODE_TOPICS)
    gw = recorder(f"{ROOT}/gateway/#")
    t = gateway_status_topic("gw-1")
    gw.client.publish(t, GatewayStatus(online=True).to_json(), qos=1, retain=True).wait_for_publish(5)
    store = EdgeStore(tmp_path / "edge.db")
    link = make_link(store)
    link.start()
    wait_for(lambda: link.gateway_online, what="the retained gateway status")
    link.publish_state("queue", QueueSnapshot(ts=link.clock.now(), day="2026-01-05", last_seq=0), retain=True)
    time.sleep(2.5)  # a retained "online" at our own connect is no news: one birth only
    assert len(rec.on("/status")) == 1
    gw.client.publish(t, GatewayStatus(online=False).to_json(), qos=1, retain=True)  # killed: its will
    wait_for(lambda: not link.gateway_online)
    gw.client.publish(t, GatewayStatus(online=True).to_json(), qos=1, retain=True)  # restarted
    wait_for(lambda: len(rec.on("/status")) == 2, timeout=5, what="a second birth for the new gateway")
    first, again = statuses(rec.on("/status"))
    assert again.online and again.bdseq == first.bdseq, "the same connection announces itself again"
    wait_for(lambda: len(rec.on("/queue")) >= 2 and rec.on("/health"), what="the queue snapshot and a health")


AGENT = """
import sys, time
from civiq.clock import SystemClock
from civiq.edge.link import EdgeLink
from civiq.edge.queue.store import EdgeStore

db, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
clock = SystemClock()
store = EdgeStore(db)
link = EdgeLink(store, center="hcm-q1", node="pi-1", host=host, port=port, clock=clock,
                backoff_min=0.05, backoff_max=0.3)
link.start()
for i in range(count):
    store.append("ticket.issued", {"n": i}, clock.now())
    link.notify()
    time.sleep(0.002)
drained = link.wait_drained(20)
link.stop()
print("done", store.last_seq(), drained, flush=True)
"""


def test_agent_killed_mid_burst_loses_nothing(broker: Mosquitto, recorder, tmp_path: Path) -> None:
    rec = recorder(NODE_TOPICS)
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    db = tmp_path / "edge.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(script), str(db), broker.host, str(broker.port)]

    agent = subprocess.Popen([*cmd, "1000000"], env=env)
    try:
        wait_for(lambda: len(set(event_seqs(rec.on("/event")))) >= 150, timeout=15, what="burst under way")
    finally:
        agent.kill()  # SIGKILL: no clean stop, no flush, mid-burst
        agent.wait(5)
    will = wait_for(lambda: [s for s in statuses(rec.on("/status")) if not s.online], what="Last Will")[0]
    birth1 = [s for s in statuses(rec.on("/status")) if s.online][0]
    assert will.bdseq == birth1.bdseq and not will.clean

    out = subprocess.run([*cmd, "50"], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    _, last_seq, drained = out.stdout.split()
    assert drained == "True"
    store = EdgeStore(db)
    assert int(last_seq) == store.last_seq() >= 200
    assert store.pending_count() == 0
    seqs = event_seqs(rec.on("/event"))
    assert set(seqs) == set(range(1, store.last_seq() + 1)), "gap-free union of received seqs"
    assert first_arrival(seqs) == sorted(set(seqs))
    births = [s.bdseq for s in statuses(rec.on("/status")) if s.online]
    assert births[-1] > will.bdseq
    assert statuses(rec.on("/status"))[-1].clean  # second run stopped cleanly


def test_bad_settings_are_refused_with_a_clear_error(tmp_path: Path, clock: FakeClock) -> None:
    store = EdgeStore(tmp_path / "edge.db")
    kw = {"center": CENTER, "node": NODE, "host": "127.0.0.1", "port": 1883, "clock": clock}
    with pytest.raises(ValueError, match="CA file"):
        EdgeLink(store, tls=True, ca_file=str(tmp_path / "missing.pem"), **kw)
    with pytest.raises(ValueError, match="65535"):
        EdgeLink(store, max_inflight=70_000, **kw)
    with pytest.raises(ValueError, match="lower-case"):
        EdgeLink(store, **{**kw, "node": "Pi 1"})


def test_replay_from_resends_acknowledged_events(make_link, recorder, clock: FakeClock, tmp_path: Path) -> None:
    rec = recorder(NODE_TOPICS)
    store = EdgeStore(tmp_path / "edge.db")
    link = make_link(store)
    link.start()
    wait_for(lambda: link.connected)
    append(store, clock, 10)
    link.notify()
    assert link.wait_drained(5)
    wait_for(lambda: len(rec.on("/event")) == 10)
    assert link.replay_from(4) == 7
    wait_for(lambda: len(rec.on("/event")) == 17, what="seqs 4..10 sent again")
    assert event_seqs(rec.on("/event"))[10:] == list(range(4, 11))
    assert link.wait_drained(5) and store.pending_count() == 0


def test_the_link_keeps_its_alive_promise_with_beats_only_when_it_has_nothing_else_to_say(
        tmp_path: Path, make_link, recorder, clock: FakeClock) -> None:  # noqa: ANN001
    rec = recorder(NODE_TOPICS)
    store = EdgeStore(tmp_path / "edge.db")
    link = make_link(store, keepalive=5, alive_s=0.4)
    assert make_link(EdgeStore(tmp_path / "other.db"), keepalive=6).alive_s == 3.0  # keepalive / 2 by default
    link.start()
    wait_for(lambda: rec.on("/status"), what="birth")
    birth = statuses(rec.on("/status"))[-1]
    assert birth.online and birth.alive_s == 0.4
    time.sleep(1.0)
    assert rec.on("/alive") == [], "beats while no gateway is online to read them"
    t = gateway_status_topic("gw-1")
    rec.client.publish(t, GatewayStatus(online=True).to_json(), qos=1, retain=True).wait_for_publish(5)
    wait_for(lambda: link.gateway_online, what="a gateway online")
    t0 = time.monotonic()
    wait_for(lambda: len(rec.on("/alive")) >= 5, timeout=10, what="five beats")
    beats = [parse_payload(Alive, p) for p in rec.on("/alive")]
    assert {b.bdseq for b in beats} == {birth.bdseq}
    # busy: an event every 0.1 s says enough, no beat is added
    before = len(rec.on("/alive"))
    for _ in range(20):
        store.append("ticket.issued", {"ticket": "A001"}, clock.now())
        link.notify()
        time.sleep(0.1)
    assert len(rec.on("/alive")) - before <= 1, "beats sent while events were flowing"
    wait_for(lambda: len(rec.on("/alive")) >= before + 3, timeout=10, what="beats again when idle")
    times = [t for t, topic in rec.arrivals if topic.startswith(f"{ROOT}/{CENTER}/{NODE}/") and t > t0]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) <= 0.4 + 0.35, f"the node stayed silent {max(gaps):.2f} s, promised 0.4 s"
