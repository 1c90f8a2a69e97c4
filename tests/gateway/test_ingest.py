"""Ingest against a real Mosquitto, fed by a paho publisher that speaks the contract as an edge does."""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta

import paho.mqtt.client as mqtt
import pytest

from civiq.contract import (
    Alive,
    ContractError,
    DisplayCmd,
    Event,
    GatewayStatus,
    Health,
    QueueSnapshot,
    RebirthCmd,
    Status,
    gateway_status_topic,
    parse_payload,
    silence_timeout,
    topic,
)
from civiq.contract import (
    TestPrintCmd as PrintCmd,
)
from civiq.gateway.ingest import Applied, Ingest, load_live_state
from civiq.gateway.settings import GatewaySettings
from civiq.gateway.state import LiveState
from civiq.gateway.store.series import SeqState, SeriesStore
from tests.conftest import wait_for

C, N = "hcm-q1", "pi-1"


class Edge:
    """A paho client publishing like an edge agent: QoS1, retained status with a Last Will."""

    def __init__(self, broker, node: str = N, bdseq: int = 1, client_id: str | None = None) -> None:  # noqa: ANN001
        self.node, self.bdseq = node, bdseq
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"edge-{node}-{bdseq}")
        self.c.will_set(topic(C, node, "status"), Status(online=False, bdseq=bdseq).to_json(), qos=1, retain=True)
        self.born = False
        self.connects = 0
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.connect(broker.host, broker.port, keepalive=30)
        self.c.loop_start()
        wait_for(lambda: self.connects, what="edge connected")

    def _on_connect(self, c, u, f, rc, p=None) -> None:  # noqa: ANN001
        self.connects += 1
        if self.born and self.connects > 1:  # like the agent: a new birth after every reconnect
            c.publish(topic(C, self.node, "status"), self._birth(None).to_json(), qos=1, retain=True)

    def _on_disconnect(self, c, u, f, rc, p=None) -> None:  # noqa: ANN001
        self.bdseq += 1  # the next connection's birth and will
        c.will_set(topic(C, self.node, "status"), Status(online=False, bdseq=self.bdseq).to_json(), qos=1,
                   retain=True)

    def _birth(self, now) -> Status:  # noqa: ANN001
        return Status(online=True, bdseq=self.bdseq, ts=now, devices=[{"id": "printer-1", "kind": "printer"}])

    def pub(self, leaf: str, payload: bytes | object, retain: bool = False, t: str | None = None) -> None:
        data = payload if isinstance(payload, bytes) else payload.to_json()  # type: ignore[attr-defined]
        self.c.publish(t or topic(C, self.node, leaf), data, qos=1, retain=retain).wait_for_publish(5)

    def pub_many(self, leaf: str, payloads: list) -> None:
        infos = [self.c.publish(topic(C, self.node, leaf), p.to_json(), qos=1) for p in payloads]
        for i in infos:
            i.wait_for_publish(10)

    def birth(self, now) -> None:  # noqa: ANN001
        self.born = True
        self.pub("status", self._birth(now), retain=True)

    def die_abruptly(self) -> None:
        """The TCP connection drops without DISCONNECT: the broker publishes the Last Will."""
        self.c.loop_stop()
        sock = self.c.socket()
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def close(self) -> None:
        try:
            self.c.disconnect()  # wakes paho's loop at once, so loop_stop() does not wait a select timeout
        except Exception:  # noqa: BLE001
            pass
        self.c.loop_stop()


def ev(seq: int, clock, type: str = "ticket.issued", **data: object) -> Event:  # noqa: ANN001
    return Event(seq=seq, ts=clock.now() + timedelta(milliseconds=seq), type=type, data={"service": "a", **data})


@pytest.fixture
def env(broker, clock, tmp_path):  # noqa: ANN001
    made: list = []

    def settings(**kw: object) -> GatewaySettings:
        return GatewaySettings(gateway_id="gw-test", mqtt={"host": broker.host, "port": broker.port, "keepalive": 5},
                               data_dir=tmp_path, **kw)

    def ingest(state: LiveState | None = None, store: SeriesStore | None = None, **kw: object) -> Ingest:
        s = settings()
        store = store or SeriesStore(s.db_path)
        changes: list[Applied] = []
        ing = Ingest(s, state or LiveState(), store, clock=clock, on_change=changes.append, **kw)
        ing.changes = changes  # type: ignore[attr-defined]
        ing.start()
        assert ing.wait_ready(10), "ingest did not connect and subscribe"
        made.append(ing)
        return ing

    def edge(**kw: object) -> Edge:
        e = Edge(broker, **kw)
        made.append(e)
        return e

    class Env:
        pass

    e = Env()
    e.ingest, e.edge, e.settings = ingest, edge, settings  # type: ignore[attr-defined]
    yield e
    for m in reversed(made):
        if isinstance(m, Ingest):
            if m.running:
                m.stop()
            m.store.close()
        else:
            m.close()


def test_events_deduplicated(env, clock) -> None:  # noqa: ANN001
    ing = env.ingest()
    edge = env.edge()
    seqs = list(range(1, 51)) + list(range(10, 21)) + [50, 1]  # a replay after an outage re-sends some
    edge.pub_many("event", [ev(q, clock) for q in seqs])
    wait_for(lambda: ing.metrics.messages.get(leaf="event") == len(seqs) and ing.wait_idle(5), what="all events")
    assert ing.store.event_count(C) == 50
    assert ing.metrics.duplicates.total() == len(seqs) - 50
    assert ing.store.node_seq(C, N) == SeqState(50, 50)
    assert ing.state.node(C, N)["last_seq"] == 50
    assert [a.new for a in ing.changes if a.leaf == "event"].count(True) == 50
    assert "civiq_gw_duplicates_total 13.0" in ing.metrics.render()


def test_gap_gets_a_rate_limited_rebirth(env, clock, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"civiq/v1/{C}/{N}/cmd/#")
    ing = env.ingest(gap_grace_s=5, rebirth_interval_s=60)
    edge = env.edge()
    edge.pub_many("event", [ev(q, clock) for q in (1, 2, 3, 6, 7)])
    wait_for(lambda: ing.metrics.gaps.total() == 1, what="gap noticed")
    assert ing.store.gaps() == {(C, N): SeqState(3, 7)}
    assert rec.on("cmd/rebirth") == []  # within the grace period the replay may still fill it

    clock.advance(6)
    wait_for(lambda: rec.on("cmd/rebirth"), what="rebirth command on the broker")
    cmd = parse_payload(RebirthCmd, rec.on("cmd/rebirth")[0])
    assert cmd.id.startswith("rebirth-")

    t = ing.ticks
    clock.advance(10)  # inside the rate limit: no second rebirth
    wait_for(lambda: ing.ticks > t + 1, what="a gap check after the advance")
    clock.advance(55)
    wait_for(lambda: len(rec.on("cmd/rebirth")) == 2, what="second rebirth after the interval")
    assert ing.metrics.rebirths.total() == 2

    edge.pub_many("event", [ev(4, clock), ev(5, clock)])  # the edge replays what was missing
    wait_for(lambda: ing.store.gaps() == {} and ing.stats["open_gaps"] == 0, what="gap closed")
    assert ing.store.event_count(C) == 7


def test_tail_gap_from_queue_snapshot(env, clock, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"civiq/v1/{C}/{N}/cmd/rebirth")
    ing = env.ingest(gap_grace_s=2)
    edge = env.edge()
    edge.pub_many("event", [ev(1, clock), ev(2, clock)])
    edge.pub("queue", QueueSnapshot(ts=clock.now(), day="2026-01-05", last_seq=4,
                                    services={"a": {"waiting": 2}}))
    wait_for(lambda: ing.metrics.gaps.total() == 1, what="tail gap noticed")
    assert ing.store.gaps() == {(C, N): SeqState(2, 4)}
    clock.advance(3)
    wait_for(lambda: rec.on("cmd/rebirth"), what="rebirth for the lost tail")


def test_malformed_payloads_counted_and_ingest_keeps_going(env, clock) -> None:  # noqa: ANN001
    ing = env.ingest()
    edge = env.edge()
    edge.pub("event", b"this is not json")
    edge.pub("event", b"[1, 2, 3]")
    edge.pub("event", json.dumps({"ts": clock.now().isoformat(), "type": "ticket.issued"}).encode())  # no seq
    edge.pub("health", b'{"ts": "2026-01-05T01:00:00Z", "note": "\xff\xfe"}')
    edge.pub("event", b'{"seq": 1, "pad": "' + b"x" * 1_000_000 + b'"}')  # "1 MB": over the contract limit
    edge.pub("event", ev(1, clock).to_json(), t="civiq/v1/HCM Q1/pi-1/event")  # bad center id in topic
    edge.pub("queue", json.dumps({"ts": "yesterday", "day": "2026-01-05"}).encode())
    edge.pub("event", ev(1, clock))  # and a good one after all that
    wait_for(lambda: ing.store.event_count(C) == 1, what="the valid event stored")
    m = ing.metrics.malformed
    got = {r: m.get(reason=r) for r in ("json", "schema", "utf8", "too_large", "topic")}
    assert got == {"json": 2, "schema": 2, "utf8": 1, "too_large": 1, "topic": 1}
    reasons = [x.detail for x in ing.recent_malformed]
    assert any("field 'seq'" in d for d in reasons), reasons
    assert any("1000" in d and "bytes" in d for d in reasons), reasons
    assert ing.connected.is_set()
    assert 'civiq_gw_malformed_total{reason="utf8"} 1.0' in ing.metrics.render()


def test_stale_will_after_new_birth_is_ignored(env, clock) -> None:  # noqa: ANN001
    ing = env.ingest()
    old = env.edge(bdseq=1, client_id="edge-old")
    old.birth(clock.now())
    wait_for(lambda: (ing.state.node(C, N) or {}).get("bdseq") == 1, what="first birth")
    new = env.edge(bdseq=2, client_id="edge-new")  # the agent reconnected; the old TCP session lingers
    new.birth(clock.now())
    wait_for(lambda: ing.state.node(C, N)["bdseq"] == 2, what="second birth")

    old.die_abruptly()  # the broker now publishes the old Last Will (bdseq 1)
    wait_for(lambda: any(a.leaf == "status" and not a.new for a in ing.changes), what="stale will seen")
    n = ing.state.node(C, N)
    assert (n["status"], n["bdseq"]) == ("online", 2)

    new.die_abruptly()  # the current connection's will does count
    wait_for(lambda: ing.state.node(C, N)["status"] == "offline", what="offline by will")
    assert ing.state.node(C, N)["reason"] == "will"


def test_heartbeat_timeout(env, clock) -> None:  # noqa: ANN001
    ing = env.ingest()
    edge = env.edge()
    edge.birth(clock.now())
    edge.pub("health", Health(ts=clock.now(), devices=[{"id": "printer-1", "kind": "printer", "state": "ok"}]))
    wait_for(lambda: ing.metrics.messages.get(leaf="health") == 1 and ing.wait_idle(5), what="health")
    clock.advance(30)
    t = ing.ticks
    wait_for(lambda: ing.ticks > t + 1, what="a heartbeat check")
    assert ing.state.node(C, N)["status"] == "online"
    clock.advance(20)  # 50 s of silence > 45 s
    wait_for(lambda: ing.state.node(C, N)["status"] == "offline", what="heartbeat offline")
    assert ing.state.node(C, N)["reason"] == "heartbeat"
    assert ing.wait_idle(5)
    assert [(a.center, a.node) for a in ing.changes if a.leaf == "heartbeat"] == [(C, N)]
    assert 'civiq_gw_nodes{status="offline"} 1.0' in ing.metrics.render()


def test_gateway_status_and_stale_on_broker_loss(env, clock, broker, recorder) -> None:  # noqa: ANN001
    rec = recorder(gateway_status_topic("gw-test"))
    ing = env.ingest()
    edge = env.edge()
    edge.birth(clock.now())
    wait_for(lambda: rec.on("gw-test/status"), what="gateway status")
    assert parse_payload(GatewayStatus, rec.on("gw-test/status")[-1]).online is True
    wait_for(lambda: (ing.state.node(C, N) or {}).get("status") == "online", what="node online")

    broker.stop()  # (Mosquitto sends the edge's will as it shuts down: the gateway may see it)
    wait_for(lambda: ing.state.stale, what="state marked stale")
    assert ing.state.node(C, N)["status"] == "unknown"  # not offline: we just cannot see
    assert ing.state.check_heartbeats(clock.now() + timedelta(hours=1), 45) == []
    broker.start()
    wait_for(lambda: ing.ready.is_set() and not ing.state.stale, timeout=15, what="reconnected, not stale")
    wait_for(lambda: ing.state.node(C, N)["bdseq"] == 2, what="the edge's new birth")
    assert ing.state.node(C, N)["status"] == "online"

    ing.stop()
    probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="probe")
    got: list[bytes] = []
    probe.on_message = lambda c, u, m: got.append(m.payload)
    probe.on_connect = lambda c, u, f, rc, p=None: c.subscribe(gateway_status_topic("gw-test"), 1)
    probe.connect(broker.host, broker.port)
    probe.loop_start()
    try:
        wait_for(lambda: got, what="retained gateway status")
        assert parse_payload(GatewayStatus, got[-1]).online is False
    finally:
        probe.loop_stop()
        probe.disconnect()


def test_state_persisted_restored_and_events_waiting_in_broker(env, clock, tmp_path) -> None:  # noqa: ANN001
    ing = env.ingest()
    edge = env.edge()
    edge.birth(clock.now())
    edge.pub("queue", QueueSnapshot(ts=clock.now(), day="2026-01-05", services={"a": {"waiting": 4}},
                                    counters={"1": {"state": "open"}}), retain=True)
    edge.pub_many("event", [ev(q, clock) for q in range(1, 6)])
    wait_for(lambda: ing.store.event_count(C) == 5 and ing.wait_idle(5), what="first run")
    ing.stop()
    ing.store.close()

    # while the gateway is away the edge keeps publishing: the broker holds them in our session
    edge.pub_many("event", [ev(q, clock) for q in range(4, 11)])

    store = SeriesStore(env.settings().db_path)
    state = load_live_state(store)
    assert state.stale and state.node(C, N)["status"] == "unknown"
    assert state.center(C)["services"]["a"]["waiting"] == 4
    ing2 = env.ingest(state=state, store=store)
    wait_for(lambda: store.event_count(C) == 10, what="events queued in the broker during the restart")
    assert not state.stale and state.node(C, N)["status"] == "online"
    wait_for(lambda: ing2.metrics.duplicates.total() == 2, what="repeats (4, 5) recognised after restart")
    assert store.gaps() == {}


def test_send_command(env, clock, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"civiq/v1/{C}/{N}/cmd/#")
    ing = env.ingest()
    ing.send_command(C, N, "display", DisplayCmd(id="d1", text="Tạm nghỉ 10 phút")).wait_for_publish(5)
    wait_for(lambda: rec.on("cmd/display"), what="display command")
    assert parse_payload(DisplayCmd, rec.on("cmd/display")[0]).text == "Tạm nghỉ 10 phút"
    with pytest.raises(ContractError, match="takes DisplayCmd"):
        ing.send_command(C, N, "display", PrintCmd(id="t1"))
    with pytest.raises(ContractError, match="unknown command"):
        ing.send_command(C, N, "reboot", PrintCmd(id="t1"))
    with pytest.raises(ContractError, match="center id"):
        ing.send_command("Bad Center", N, "test_print", PrintCmd(id="t1"))


def test_burst_is_committed_in_batches(env, clock) -> None:  # noqa: ANN001
    ing = env.ingest()
    edge = env.edge()
    n = 3000
    edge.pub_many("event", [ev(q, clock) for q in range(1, n + 1)])
    wait_for(lambda: ing.store.event_count(C) == n, timeout=20, what="burst stored")
    count = ing.metrics.batch_size.count()
    assert count < n / 5, f"{count} commits for {n} events: not batching"
    assert ing.store.gaps() == {}


def test_shared_group_subscriptions() -> None:
    s = GatewaySettings(gateway_id="gw-a", mqtt={"shared_group": "workers"})
    ing = Ingest(s, LiveState(), None, clock=None)  # type: ignore[arg-type]
    subs = ing.subscriptions()
    assert "civiq/v1/+/+/status" in subs and "civiq/v1/+/+/queue" in subs and "civiq/v1/+/+/health" in subs
    assert "$share/workers/civiq/v1/+/+/event" in subs and "$share/workers/civiq/v1/+/+/cmd_result" in subs


def test_influx_points_spooled_from_ingest(env, clock, tmp_path) -> None:  # noqa: ANN001
    from civiq.dev.broker import free_port
    from civiq.gateway.store.influx import InfluxExport

    # nothing listens on this port and the sender is not started: the spool must hold every point
    exp = InfluxExport(f"http://127.0.0.1:{free_port()}", "", "o", "b", tmp_path / "spool" / "spool.db")
    s = env.settings()
    ing = Ingest(s, LiveState(), SeriesStore(tmp_path / "other.db"), exp, clock=clock).start()
    try:
        assert ing.wait_ready(10)
        edge = env.edge()
        edge.birth(clock.now())
        edge.pub_many("event", [ev(1, clock, "ticket.called", wait_s=42), ev(1, clock, "ticket.called")])
        edge.pub("queue", QueueSnapshot(ts=clock.now(), day="2026-01-05", services={"a": {"waiting": 3}}))
        wait_for(lambda: ing.metrics.messages.total() == 4 and ing.wait_idle(5), what="birth, 2 events, queue")
        assert exp.pending() == 3  # birth + one ticket event (not its repeat) + queue
        lines = [ln for r in exp._db.execute("SELECT line FROM spool ORDER BY id") for ln in r[0].split("\n")]
        assert lines[0].startswith("node,center=hcm-q1,node=pi-1 online=1i ")
        assert lines[1].startswith("ticket_event,center=hcm-q1,service=a,type=called count=1i,wait_s=42.0 ")
        assert lines[2].startswith("queue,center=hcm-q1,service=a oldest_wait_s=0.0,waiting=3i ")
        assert "civiq_gw_influx_spool_pending 3.0" in ing.metrics.render()
    finally:
        ing.stop()
        ing.store.close()


def test_settings_file_env_and_errors(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from civiq.gateway.settings import SettingsError

    (tmp_path / "mqtt.pass").write_text("s3cret\n")
    f = tmp_path / "gateway.yaml"
    f.write_text(f"gateway_id: gw-hcm\nmqtt: {{host: broker.lan, username: gw, password_file: {tmp_path}/mqtt.pass}}\n"
                 "influx: {url: 'http://tsdb:8428', batch_size: 100}\n")
    monkeypatch.setenv("CIVIQ_GW_MQTT__PORT", "8883")  # the environment wins over the file, field by field
    s = GatewaySettings.from_file(f)
    assert (s.gateway_id, s.mqtt.host, s.mqtt.port, s.mqtt.password()) == ("gw-hcm", "broker.lan", 8883, "s3cret")
    assert s.influx is not None and s.influx.batch_size == 100 and s.retention_days == 90
    assert s.spool_path == s.data_dir / "influx-spool" / "spool.db"

    f.write_text("gateway_id: gw-hcm\nmqtt: {prot: 1883}\n")  # the same file:line:col: field errors as a center's
    with pytest.raises(SettingsError, match=r"gateway.yaml:2:8: mqtt.prot: unknown field 'prot' — did you mean 'port'"):
        GatewaySettings.from_file(f)
    f.write_text("gateway_id: [unclosed\n")
    with pytest.raises(SettingsError, match=r"gateway.yaml:2:1: .*YAML"):
        GatewaySettings.from_file(f)
    with pytest.raises(SettingsError, match="missing.yaml: file not found"):
        GatewaySettings.from_file(tmp_path / "missing.yaml")
    monkeypatch.setenv("CIVIQ_GW_RETENTION_DAYS", "0")
    f.write_text("gateway_id: gw-hcm\n")
    with pytest.raises(SettingsError, match="retention_days: must be at least 1.*CIVIQ_GW_RETENTION_DAYS"):
        GatewaySettings.from_file(f)
    with pytest.raises(SettingsError, match="heartbeat_timeout_s"):
        GatewaySettings.load(heartbeat_timeout_s=0)


# ----------------------------------------------------------------------------------- silence watch
class Beating:
    """Beats (``alive``) from an edge's current connection, at ``every`` seconds, until paused."""

    def __init__(self, edge: Edge, every: float) -> None:
        import threading

        self.edge, self.every = edge, every
        self.on = threading.Event()
        self.on.set()
        self.stopped = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            if self.on.is_set():
                self.edge.c.publish(topic(C, self.edge.node, "alive"), Alive(bdseq=self.edge.bdseq).to_json(), qos=1)

    def stop(self) -> None:
        self.stopped.set()
        self.t.join(2)


def promise_birth(edge: Edge, alive_s: float, clock) -> None:  # noqa: ANN001
    edge.born = True
    edge.pub("status", edge._birth(clock.now()).model_copy(update={"alive_s": alive_s}), retain=True)  # noqa: SLF001


def silences(ing: Ingest) -> list[Applied]:
    return [a for a in ing.changes if a.leaf == "heartbeat"]


def test_a_node_that_breaks_its_alive_promise_goes_offline_once_and_comes_back(env, clock) -> None:  # noqa: ANN001
    ing = env.ingest()
    edge = env.edge()  # keepalive 30: the broker would take 45 s; the promise makes it 3 x 0.4 + 0.5 = 1.7 s
    promise_birth(edge, 0.4, clock)
    beats = Beating(edge, 0.2)
    try:
        wait_for(lambda: ing.watch.horizon is not None and (ing.state.node(C, N) or {}).get("status") == "online")  # noqa: SLF001
        time.sleep(silence_timeout(0.4) + 0.5)  # beating all along: must stay online
        assert (ing.state.node(C, N) or {}).get("status") == "online"
        assert silences(ing) == []
        beats.on.clear()  # hung: the TCP connection is open, nothing is said
        hung = time.monotonic()
        wait_for(lambda: (ing.state.node(C, N) or {}).get("status") == "offline", timeout=10, interval=0.02,
                 what="offline for its silence")
        took = time.monotonic() - hung
        assert silence_timeout(0.4) - 0.3 <= took <= silence_timeout(0.4) + 0.2 + 0.8, took
        assert ing.state.node(C, N)["reason"] == "silent"
        time.sleep(1.0)
        assert len(silences(ing)) == 1, "declared silent more than once"
        assert silences(ing)[0].model >= round(silence_timeout(0.4), 1)  # the seconds of silence, rounded
        beats.on.set()  # it wakes up on the same connection: back online, no new birth needed
        wait_for(lambda: (ing.state.node(C, N) or {}).get("status") == "online", what="back on its beat")
        assert ing.state.node(C, N)["reason"] == "traffic"
        assert [a.new for a in ing.changes if a.leaf == "alive"].count(True) == 1
    finally:
        beats.stop()


def test_beats_of_a_dead_connection_do_not_revive_and_nodes_without_a_promise_are_left_to_the_will(
        env, clock) -> None:  # noqa: ANN001
    ing = env.ingest()
    old = env.edge(node="pi-2")  # no alive_s in its birth (an older edge): never declared silent
    old.birth(clock.now())
    edge = env.edge()
    promise_birth(edge, 0.3, clock)
    wait_for(lambda: (ing.state.node(C, N) or {}).get("status") == "online")
    wait_for(lambda: (ing.state.node(C, N) or {}).get("status") == "offline", timeout=5, what="silent")
    edge.pub("alive", Alive(bdseq=edge.bdseq - 1))  # an earlier connection's beat
    assert ing.wait_idle(5)
    assert ing.state.node(C, N)["status"] == "offline"
    time.sleep(silence_timeout(0.3))
    assert (ing.state.node(C, "pi-2") or {}).get("status") == "online"
    assert [(a.center, a.node) for a in silences(ing)] == [(C, N)]


def test_the_gateways_own_lag_is_never_taken_for_a_nodes_silence(env, clock) -> None:  # noqa: ANN001
    import threading

    stall = threading.Event()

    def slow_hook(a: Applied) -> None:  # a slow alert channel, say: the writer is stuck 3 s
        ing.changes.append(a)
        if a.leaf == "event" and not stall.is_set():
            stall.set()
            time.sleep(3.0)

    ing = env.ingest(batch_max=1)  # one message a batch: after the stall the backlog drains slowly
    ing.on_change = slow_hook
    edge = env.edge()
    promise_birth(edge, 0.3, clock)  # silent after 1.4 s
    beats = Beating(edge, 0.1)
    try:
        wait_for(lambda: ing.watch.horizon is not None and (ing.state.node(C, N) or {}).get("status") == "online")  # noqa: SLF001
        edge.pub("event", ev(1, clock))
        wait_for(stall.is_set, what="the writer stalls")
        assert ing.wait_idle(20)
        time.sleep(0.5)
        assert silences(ing) == [], "the gateway's own stall was taken for the node's silence"
        assert ing.state.node(C, N)["status"] == "online"
    finally:
        beats.stop()


def test_workers_sharded_by_center_each_read_only_their_own(broker, clock, tmp_path, recorder) -> None:  # noqa: ANN001
    """Two workers, each owning one center by subscription: every message is read once, by its owner; the
    Last Will of a node reaches only its owner (so its alert is raised once); each node's availability
    verdict is published once."""
    rec = recorder("civiq/v1/+/+/availability")
    c2 = "hcm-q2"
    workers = []
    for k, own in enumerate((C, c2)):
        s = GatewaySettings(gateway_id=f"gw-{k}", data_dir=tmp_path / f"w{k}", shard={"own": [own]},
                            mqtt={"host": broker.host, "port": broker.port, "keepalive": 5})
        ing = Ingest(s, LiveState(), SeriesStore(s.db_path), clock=clock, on_change=None)
        ing.changes = []  # type: ignore[attr-defined]
        ing.on_change = ing.changes.append  # type: ignore[attr-defined]
        workers.append(ing.start())
    try:
        assert all(w.wait_ready(10) for w in workers)
        edges = [Edge(broker, node=N, client_id="edge-a"), Edge(broker, node="pi-9", client_id="edge-b")]
        edges[1].pub_many = lambda leaf, ps: [edges[1].pub(leaf, p, t=topic(c2, "pi-9", leaf)) for p in ps]  # type: ignore[method-assign]
        edges[1].c.will_set(topic(c2, "pi-9", "status"), Status(online=False, bdseq=1).to_json(), qos=1, retain=True)
        edges[0].birth(clock.now())
        edges[1].pub("status", edges[1]._birth(clock.now()), retain=True, t=topic(c2, "pi-9", "status"))  # noqa: SLF001
        edges[0].pub_many("event", [ev(q, clock) for q in range(1, 21)])
        edges[1].pub_many("event", [ev(q, clock) for q in range(1, 11)])
        a, b = workers
        wait_for(lambda: a.store.event_count() == 20 and b.store.event_count() == 10, what="each its own events")
        assert a.store.event_count(c2) == 0 and b.store.event_count(C) == 0
        assert a.state.centers() == [C] and b.state.centers() == [c2]
        assert a.metrics.gaps.total() == b.metrics.gaps.total() == 0 and a.metrics.duplicates.total() == 0
        edges[0].die_abruptly()  # the broker publishes C's will: only its owner hears it
        wait_for(lambda: a.state.node(C, N)["status"] == "offline", what="the owner sees the will")
        assert b.wait_idle(5) and not [x for x in b.changes if x.center == C]
        wait_for(lambda: len(rec.on(f"{C}/{N}/availability")) == 2, what="online, then offline, published once each")
        assert [json.loads(p)["state"] for p in rec.on(f"{C}/{N}/availability")] == ["online", "offline"]
        assert [json.loads(p)["state"] for p in rec.on(f"{c2}/pi-9/availability")] == ["online"]
    finally:
        for w in workers:
            w.stop()
            w.store.close()
        for e in locals().get("edges", []):
            e.close()
