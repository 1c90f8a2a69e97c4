"""The ingest's parts without a broker: the link's checks, the writer and its sinks, the availability watch."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from civiq.contract import Availability, Status, parse_payload, topic
from civiq.gateway.ingest import Applied, Ingest, Item
from civiq.gateway.ingest.decode import decode
from civiq.gateway.settings import GatewaySettings, SettingsError, ShardSettings
from civiq.gateway.state import LiveState
from civiq.gateway.store import influx as ix
from civiq.gateway.store.influx import InfluxExport
from civiq.gateway.store.series import SeriesStore

C, N = "hcm-q1", "pi-1"


class Published(list):
    """What the link would have published (the broker is not the point here)."""


@pytest.fixture
def ing(tmp_path: Path, clock):  # noqa: ANN001, ANN201
    s = GatewaySettings(gateway_id="gw-unit", data_dir=tmp_path, heartbeat_timeout_s=45)
    store = SeriesStore(s.db_path)
    exp = InfluxExport("http://127.0.0.1:9", "", "o", "b", tmp_path / "spool.db")  # never started
    changes: list[Applied] = []
    i = Ingest(s, LiveState(), store, exp, clock=clock, on_change=changes.append)
    i.changes = changes  # type: ignore[attr-defined]
    i.published = Published()  # type: ignore[attr-defined]
    i.link.publish = lambda t, p, qos=1, retain=False: i.published.append((t, json.loads(p), retain))  # type: ignore[method-assign]
    i.acked = []  # type: ignore[attr-defined]
    i.writer.ack = i.acked.extend
    yield i
    store.close()


def msg(leaf: str, payload: bytes | dict, mid: int = 1, qos: int = 1, t: str | None = None) -> mqtt.MQTTMessage:
    m = mqtt.MQTTMessage(mid=mid, topic=(t or topic(C, N, leaf)).encode())
    m.payload = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    m.qos = qos
    return m


def event(seq: int, clock, typ: str = "ticket.called", **data: object) -> dict:  # noqa: ANN001
    return {"seq": seq, "ts": (clock.now() + timedelta(milliseconds=seq)).isoformat(), "type": typ,
            "data": {"service": "a", "ticket": f"A{seq:03d}", **data}}


def receive_all(ing: Ingest, msgs: list[mqtt.MQTTMessage]) -> list[Item]:
    for m in msgs:
        ing.link.receive(m)
    items = []
    while not ing.writer.q.empty():
        items.append(ing.writer.q.get_nowait())
    return items


def test_link_checks_and_parses_on_its_thread(ing, clock) -> None:  # noqa: ANN001
    items = receive_all(ing, [
        msg("event", event(1, clock), mid=11),
        msg("event", b"{"), msg("event", b'{"seq": 0}'), msg("health", b"\xff"),
        msg("event", event(2, clock), t="civiq/v1/Bad Center/pi-1/event"),
        msg("queue", {"ts": clock.now().isoformat(), "day": "2026-01-05", "services": {"a": {"waiting": 2}}}),
    ])
    assert [(i.leaf, i.ack) for i in items] == [("event", (11, 1, 0)), ("queue", None)]  # events acked after commit
    m = ing.metrics.malformed
    assert {r: m.get(reason=r) for r in ("json", "schema", "utf8", "topic")} == {"json": 1, "schema": 1, "utf8": 1,
                                                                                  "topic": 1}
    assert any("field 'seq'" in x.detail for x in ing.recent_malformed)


def test_writer_sinks_dedupe_store_state_influx_and_hooks_in_order(ing, clock) -> None:  # noqa: ANN001
    snap = {"ts": clock.now().isoformat(), "day": "2026-01-05", "last_seq": 3,
            "services": {"a": {"waiting": 2, "oldest_wait_s": 30, "eta_s": 90}},
            "counters": {"c1": {"state": "open", "ticket": "A001"}, "c 2": {"state": "closed"}}}
    older = dict(snap, ts=(clock.now() - timedelta(seconds=5)).isoformat())
    birth = Status(online=True, bdseq=1, ts=clock.now()).to_json()
    items = receive_all(ing, [msg("status", birth), msg("event", event(1, clock, wait_s=12.5), mid=5),
                              msg("event", event(1, clock), mid=6), msg("queue", snap), msg("queue", older)])
    batch = ing.writer.process(items)
    assert [(a.leaf, a.new) for a in batch.applied] == [("status", True), ("event", True), ("event", False),
                                                        ("queue", True), ("queue", False)]
    assert ing.changes == batch.applied  # the hooks saw the same, in the same order
    assert ing.acked == [(5, 1, 0), (6, 1, 0)]  # both events acked (the repeat is committed: it is stored)
    assert ing.store.event_count(C) == 1 and ing.metrics.duplicates.total() == 1
    assert ing.store.node_seq(C, N).max_seq == 3  # the snapshot's last_seq: a gap at the tail
    assert ing.store.series(C, "waiting", "a")["a"][0][1] == 2.0
    assert ing.state.center(C)["services"]["a"]["waiting"] == 2
    lines = [ln for r in ing.influx._db.execute("SELECT line FROM spool ORDER BY id")  # noqa: SLF001
             for ln in r[0].split("\n")]
    # the hot path's lines are exactly what the general line builder makes
    s, e = decode("queue", json.dumps(snap).encode()), decode("event", json.dumps(event(1, clock, wait_s=12.5)).encode())
    t = ix._ns(s.ts)  # noqa: SLF001
    assert lines[1] == ix.line("ticket_event", {"center": C, "service": "a", "type": "called"},
                               {"count": 1, "wait_s": 12.5}, ix._ns(e.ts) + 1)  # noqa: SLF001
    assert lines[2:] == [
        ix.line("queue", {"center": C, "service": "a"}, {"waiting": 2, "oldest_wait_s": 30.0, "eta_s": 90.0}, t),
        ix.line("counter", {"center": C, "counter": "c1"}, {"served_today": 0, "busy": True, "open": True}, t),
        ix.line("counter", {"center": C, "counter": "c 2"}, {"served_today": 0, "busy": False, "open": False}, t)]
    assert lines[0].startswith("node,center=hcm-q1,node=pi-1 online=1i ")
    # the availability verdict: retained, online after the birth
    assert ing.published == [(f"civiq/v1/{C}/{N}/availability", {"state": "online", "reason": "birth",
                                                                  "ts": ing.published[0][1]["ts"]}, True)]


def test_health_lines_match_the_general_builder(clock) -> None:  # noqa: ANN001
    h = decode("health", json.dumps({"ts": clock.now().isoformat(), "host": {"cpu_temp_c": 50, "disk_used_pct": None},
                                     "devices": [{"id": "p1", "kind": "printer", "state": "failed"}],
                                     "outbox": {"pending": 3}}).encode())
    t = ix._ns(h.ts)  # noqa: SLF001
    assert ix.health_lines(C, N, h) == [
        ix.line("device", {"center": C, "node": N, "device": "p1", "kind": "printer"}, {"state_code": 2}, t),
        ix.line("node", {"center": C, "node": N}, {"online": True, "outbox_pending": 3, "cpu_temp_c": 50.0,
                                                   "disk_used_pct": None}, t)]


def test_a_silent_verdict_is_dropped_when_the_node_spoke_meanwhile(ing, clock) -> None:  # noqa: ANN001
    birth = Status(online=True, bdseq=1, ts=clock.now(), alive_s=0.5).to_json()
    ing.writer.process(receive_all(ing, [msg("status", birth)]))
    heard_at = ing.watch.last_rx[(C, N)]
    ing.watch.probed(heard_at + 10)  # the horizon: 10 s after its last message, far past 3 x 0.5 + 0.5
    ing.watch.watch_silence()
    ing.watch.watch_silence()  # a second pass does not repeat the verdict
    verdicts = receive_all(ing, [])
    assert [(v.leaf, v.mono) for v in verdicts] == [("silent", heard_at)]
    # a health report arrives before the writer gets to the verdict: the node is not gone
    late = receive_all(ing, [msg("health", {"ts": clock.now().isoformat()})])
    ing.writer.process(late + verdicts)
    assert ing.state.node(C, N)["status"] == "online"
    assert not [a for a in ing.changes if a.leaf == "heartbeat"]
    # silent again, and this time nothing came: offline, one notification, the verdict published
    ing.watch.probed(ing.watch.last_rx[(C, N)] + 10)
    ing.watch.watch_silence()
    ing.writer.process(receive_all(ing, []))
    assert ing.state.node(C, N)["reason"] == "silent"
    assert [(a.leaf, a.model >= 10) for a in ing.changes if a.leaf == "heartbeat"] == [("heartbeat", True)]
    assert parse_payload(Availability, json.dumps(ing.published[-1][1])).state == "offline"


def test_heartbeat_tick_runs_on_the_writer_in_order(ing, clock) -> None:  # noqa: ANN001
    ing.writer.process(receive_all(ing, [msg("status", Status(online=True, bdseq=1, ts=clock.now()).to_json())]))
    clock.advance(50)
    ing.writer.process([Item("tick", "", "", None, clock.now())])
    assert ing.state.node(C, N)["reason"] == "heartbeat"
    assert [(a.leaf, a.model) for a in ing.changes][-1] == ("heartbeat", None)
    assert ing.published[-1][1]["state"] == "offline" and ing.published[-1][1]["reason"] == "heartbeat"
    # it speaks again: back online by its traffic, published once
    ing.writer.process(receive_all(ing, [msg("health", {"ts": clock.now().isoformat()})]))
    assert [p[1]["state"] for p in ing.published] == ["online", "offline", "online"]


def test_shard_subscriptions_cover_only_the_owned_centers(tmp_path: Path, clock) -> None:  # noqa: ANN001
    ids = [f"c{i:03d}" for i in range(100)]
    owned = []
    for k in range(4):
        s = GatewaySettings(gateway_id=f"gw-{k}", data_dir=tmp_path, shard={"centers": ids, "workers": 4, "index": k})
        subs = Ingest(s, LiveState(), None, clock=clock).subscriptions()  # type: ignore[arg-type]
        assert "civiq/v1/+/+/event" not in subs and subs[-1] == f"civiq/v1/gateway/gw-{k}/probe"
        owned.append({t.split("/")[2] for t in subs[:-1]})
        assert all(f"civiq/v1/{c}/+/event" in subs and f"civiq/v1/{c}/+/status" in subs for c in owned[-1])
    assert sorted(c for o in owned for c in o) == ids  # every center owned exactly once
    assert min(map(len, owned)) >= 15  # and roughly evenly
    s = GatewaySettings(shard={"own": ["c001", "c002"]})
    assert Ingest(s, LiveState(), None, clock=clock).subscriptions()[0] == "civiq/v1/c001/+/status"  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="index"):
        GatewaySettings.load(shard={"workers": 2, "index": 2, "centers": ids})
    with pytest.raises(SettingsError, match="list of centers"):
        GatewaySettings.load(shard={"workers": 2})
    assert ShardSettings().owned() is None


def test_event_batch_falls_back_when_the_seq_table_lags_the_events(tmp_path: Path, clock) -> None:  # noqa: ANN001
    from civiq.contract import Event

    st = SeriesStore(tmp_path / "s.db")
    t = clock.now()
    ev = [Event(seq=q, ts=t, type="ticket.issued") for q in (1, 2, 3)]
    assert st.add_event_batch([(C, N, e, t) for e in ev[:2]]) == [True, True]
    st._seq[(C, N)] = [0, 0]  # noqa: SLF001 - as if the seqs table had lost its row: 1 and 2 look new
    assert st.add_event_batch([(C, N, e, t) for e in ev]) == [False, False, True]
    assert st.event_count(C) == 3
    st.close()


def _publish_packet(t: str, payload: bytes, mid: int) -> bytes:
    """An MQTT 5 PUBLISH at QoS 1 as the broker sends it (no properties)."""
    body = len(t).to_bytes(2, "big") + t.encode() + mid.to_bytes(2, "big") + b"\x00" + payload
    n, length = len(body), b""
    while True:
        n, digit = divmod(n, 128)
        length += bytes([digit | (128 if n else 0)])
        if not n:
            return b"\x32" + length + body


def test_link_reads_a_burst_through_its_buffer_and_acks_in_one_write(ing, clock) -> None:  # noqa: ANN001
    """paho internals the link relies on (pinned paho 2.x): the socket through a read buffer, a burst of packets
    per loop wake-up, the burst's queue/health PUBACKs in one write, the committed events' PUBACKs in another."""
    import socket

    from civiq.gateway.ingest.link import BufferedSocket

    broker, ours = socket.socketpair()
    c = ing.link.client
    assert c.protocol == mqtt.MQTTv5
    ours.setblocking(False)
    c._sock = BufferedSocket(ours)  # what the link's socket factory wraps on connect  # noqa: SLF001
    snap = {"ts": clock.now().isoformat(), "day": "2026-01-05", "services": {"a": {"waiting": 2}}}
    stream = b"".join([_publish_packet(topic(C, N, "queue"), json.dumps(snap).encode(), 7),
                       _publish_packet(topic(C, N, "event"), json.dumps(event(1, clock)).encode(), 8),
                       _publish_packet(topic(C, N, "queue"), b"{", 9),  # malformed: acked at once, dropped
                       _publish_packet(topic(C, N, "event"), json.dumps(event(2, clock)).encode(), 300)])
    broker.sendall(stream)
    broker.settimeout(2)
    assert ing.link._loop_read() == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS  # noqa: SLF001
    items = [ing.writer.q.get_nowait() for _ in range(ing.writer.q.qsize())]
    assert [(i.leaf, i.ack) for i in items] == [("queue", None), ("event", (8, 1, 0)), ("event", (300, 1, 0))]
    # (no loop thread here, so paho writes what is queued at once) the malformed acked at once, the snapshot
    # after the burst; the events not yet: they wait for the commit
    assert broker.recv(100) == b"\x40\x02\x00\x09\x40\x02\x00\x07"
    ing.link.ack([it.ack for it in items if it.ack] + [(5, 1, 99)])  # an older connection's ack is not sent
    assert broker.recv(100) == b"\x40\x02\x00\x08\x40\x02\x01\x2c"  # both events
    c._sock = None  # noqa: SLF001
    broker.close()
    ours.close()


def test_the_link_falls_back_to_pahos_public_api_when_its_internals_are_not_the_checked_ones(
        monkeypatch, tmp_path: Path, clock) -> None:  # noqa: ANN001
    """A paho upgrade (or CIVIQ_PAHO_FAST=0) must never silently stop the acks: the link then acks through
    ``Client.ack`` and leaves paho's socket and read loop alone."""
    from civiq.gateway.ingest import link as link_mod

    assert link_mod.paho_fast_path()  # the pinned paho: its internals are the checked ones
    monkeypatch.setenv("CIVIQ_PAHO_FAST", "0")
    assert not link_mod.paho_fast_path()
    monkeypatch.delenv("CIVIQ_PAHO_FAST")
    monkeypatch.setattr(link_mod, "PAHO_CHECKED", (("9", "9"),))
    assert not link_mod.paho_fast_path()
    from civiq.gateway.metrics import GatewayMetrics

    settings = GatewaySettings(gateway_id="gw-unit", data_dir=tmp_path)
    link = link_mod.MqttLink(settings, clock, GatewayMetrics(), lambda item: None)
    assert not link.fast and link.client.loop_read != link._loop_read  # noqa: SLF001
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(link.client, "ack", lambda mid, qos: sent.append((mid, qos)))
    link.ack([(8, 1, 0), (9, 1, 5)])  # the second is an older connection's: not sent
    assert sent == [(8, 1)]
