"""Offline is detected, not guessed: a hung agent, a stale Last Will, a flapping link, seen by a real Gateway.

The gateway runs with a :class:`FakeClock` so its hold-down timers (grace after start, ``clear_after_s``) are
stepped by the test, while the MQTT side (keepalive, Last Will, the edges' alive beats and the gateway's
silence watch) runs in real time on a real Mosquitto.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from bench.offline import NetSlot, netns_available
from civiq.clock import FakeClock
from civiq.contract import Alive, Status, topic
from civiq.dev.broker import Mosquitto, free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from civiq.edge.sim.example import write_sim_center
from civiq.gateway.service import Gateway
from civiq.gateway.settings import GatewaySettings
from tests.conftest import Recorder, wait_for
from tests.e2e.centers import write_center
from tests.e2e.test_edge_agent import _env
from tests.reliability.faultkit import advance_past_hold_down, soak, start_gateway

CENTER, NODE = "test-xa", "pi-1"
KEY = f"{CENTER}/{NODE}/node_offline"
KEEPALIVE = 5


@pytest.fixture
def gateway(broker, clock: FakeClock, tmp_path: Path) -> Iterator[Gateway]:  # noqa: ANN001
    gw = start_gateway(broker, clock, tmp_path)
    try:
        yield gw
    finally:
        gw.stop()


def offline_notices(gw: Gateway) -> list[tuple[str, str]]:
    return [(n.state, n.note) for n in gw.alerts.notifications() if n.key == KEY]


def offline_states(gw: Gateway) -> list[str]:
    return [s for s, _ in offline_notices(gw)]


def node_status(gw: Gateway) -> str | None:
    return (gw.state.node(CENTER, NODE) or {}).get("status")


@pytest.fixture(params=["hung", "network cut"])
def half_open(request, tmp_path: Path) -> Iterator[tuple[str, Mosquitto, NetSlot | None]]:  # noqa: ANN001
    """A broker, and for "network cut" a network namespace joined to it by a veth pair (root only)."""
    slot = None
    if request.param == "network cut":
        if not netns_available():
            pytest.skip("`ip netns` is not usable here (needs root and iproute2)")
        slot = NetSlot(240 + os.getpid() % 10).create()
    port = free_port()
    extra = f"listener {port} {slot.host_ip}\n" if slot else ""
    b = Mosquitto(port, extra_config=extra, workdir=tmp_path).start()
    try:
        yield request.param, b, slot
    finally:
        b.stop()
        if slot is not None:
            slot.delete()


def test_half_open_agent_is_offline_within_one_and_a_half_keepalives_plus_two(half_open, clock: FakeClock,
                                                                              tmp_path: Path) -> None:
    fault, broker, slot = half_open
    gateway = start_gateway(broker, clock, tmp_path)
    rec = Recorder(broker.host, broker.port, [topic(CENTER, NODE, "status"), topic(CENTER, NODE, "alive")])
    config = write_sim_center(tmp_path / "edge", broker.port, center=CENTER, node=NODE, keepalive=KEEPALIVE,
                              host=slot.host_ip if slot else "127.0.0.1", http_port=free_port())
    cmd = [sys.executable, "-m", "civiq", "edge", "run", str(config), "--simulate"]
    proc = subprocess.Popen((["ip", "netns", "exec", slot.ns] if slot else []) + cmd, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    will_at: list[float] = []
    try:
        wait_for(lambda: node_status(gateway) == "online", timeout=30, what="agent online at the gateway")
        wait_for(lambda: len(rec.on("/alive")) >= 2, timeout=3 * KEEPALIVE, what="the agent's alive beats")
        births = len(rec.on("/status"))
        if slot is None:
            os.kill(proc.pid, signal.SIGSTOP)  # hung: the TCP connection stays open, nothing answers
        else:
            slot.cut()  # a pulled cable: no RST, no ICMP, the agent runs on
        faulted = time.monotonic()

        def alerted() -> bool:
            if not will_at and any(b'"online":false' in p for p in rec.on("/status")[births:]):
                will_at.append(time.monotonic())
            return bool(offline_notices(gateway))

        wait_for(alerted, timeout=1.5 * KEEPALIVE + 2 + 10, interval=0.02, what="the offline alert")
        took = time.monotonic() - faulted
        assert took <= 1.5 * KEEPALIVE + 2, f"offline alert {took:.1f} s after the fault ({fault})"
        # whichever tells first, the broker's will (1.5 x keepalive after the last packet, by Mosquitto's
        # coarse clock) or the gateway's silence watch (3 beats + 0.5 s after the last message), tells once
        first = [n.detail for n in gateway.alerts.notifications() if n.key == KEY][0]
        # the broker's Last Will for the same connection comes later: it changes nothing, no second alert
        wait_for(lambda: alerted() and will_at, timeout=30, interval=0.05, what="the broker's will, later")
        will = will_at[0] - faulted
        assert gateway.ingest.wait_idle(5)
        assert offline_states(gateway) == ["firing"], offline_notices(gateway)
        if slot is None:
            os.kill(proc.pid, signal.SIGCONT)
        else:
            slot.mend()
        wait_for(lambda: node_status(gateway) == "online", timeout=40, what="the agent back online")
        advance_past_hold_down(gateway, clock, KEY)  # the engine's clear_after_s
        wait_for(lambda: len(offline_notices(gateway)) == 2, what="the recovery")
        assert offline_states(gateway) == ["firing", "resolved"]
    finally:
        if proc.poll() is None:
            if slot is None:
                os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        rec.close()
        gateway.stop()
    print(f"\nRESULT {fault}: offline alert {took:.1f} s after the fault ({first}), the broker's will "
          f"{will:.1f} s (keepalive {KEEPALIVE} s, target {1.5 * KEEPALIVE + 2:.1f} s)")


def test_a_gateway_started_after_its_node_alerts_on_time_for_a_node_it_has_heard(broker, clock: FakeClock,  # noqa: ANN001
                                                                                   tmp_path: Path) -> None:
    """The start-up grace (one heartbeat timeout, 45 s here, on a fake clock this test never advances) holds
    node_offline only for nodes the gateway has not heard since it started: this one it has."""
    rec = Recorder(broker.host, broker.port, [topic(CENTER, NODE, "status"), topic(CENTER, NODE, "alive")])
    config = write_sim_center(tmp_path / "edge", broker.port, center=CENTER, node=NODE, keepalive=KEEPALIVE,
                              http_port=free_port())
    proc = subprocess.Popen([sys.executable, "-m", "civiq", "edge", "run", str(config), "--simulate"], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gateway = None
    try:
        wait_for(lambda: any(b'"online":true' in p for p in rec.on("/status")), timeout=30,
                 what="the agent running before the gateway")
        settings = GatewaySettings.load(data_dir=tmp_path / "gw", http={"port": free_port()},
                                        mqtt={"host": broker.host, "port": broker.port, "keepalive": 5},
                                        heartbeat_timeout_s=45, alerts={"clear_after_s": 30, "mqtt": False})
        gateway = Gateway(settings, clock=clock, channels=[]).start()
        assert gateway.ingest.wait_ready(10)
        wait_for(lambda: node_status(gateway) == "online", timeout=10, what="the node at the gateway")
        beats = len(rec.on("/alive"))
        wait_for(lambda: len(rec.on("/alive")) >= beats + 2, timeout=3 * KEEPALIVE, what="beats the gateway hears")
        assert gateway.ingest.wait_idle(5)
        os.kill(proc.pid, signal.SIGSTOP)  # hung, inside the grace that follows the gateway's start
        hung = time.monotonic()
        budget = 1.5 * KEEPALIVE + 2
        wait_for(lambda: offline_notices(gateway), timeout=budget + 10, interval=0.02, what="the offline alert")
        took = time.monotonic() - hung
        assert took <= budget, f"offline alert {took:.1f} s after the node hung (budget {budget} s)"
        assert offline_states(gateway) == ["firing"]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        rec.close()
        if gateway is not None:
            gateway.stop()


class RawEdge:
    """A paho client acting as one connection of an edge agent (its own bdseq in birth and will)."""

    def __init__(self, broker, bdseq: int, client_id: str, alive_s: float | None = None) -> None:  # noqa: ANN001
        self.bdseq = bdseq
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.c.will_set(topic(CENTER, NODE, "status"), Status(online=False, bdseq=bdseq).to_json(), 1, True)
        self.c.connect(broker.host, broker.port, keepalive=30)
        self.c.loop_start()
        self.c.publish(topic(CENTER, NODE, "status"), Status(online=True, bdseq=bdseq, alive_s=alive_s).to_json(),
                       1, True).wait_for_publish(5)

    def beat(self) -> None:
        self.c.publish(topic(CENTER, NODE, "alive"), Alive(bdseq=self.bdseq).to_json(), 1).wait_for_publish(5)

    def die(self) -> None:
        self.c.loop_stop()
        self.c.socket().shutdown(socket.SHUT_RDWR)


def test_silence_then_the_will_of_the_same_connection_is_one_alert(gateway: Gateway, clock: FakeClock,  # noqa: ANN001
                                                                    broker) -> None:
    edge = RawEdge(broker, 1, "edge-hung", alive_s=0.3)  # keepalive 30: the broker alone would take 45 s
    wait_for(lambda: node_status(gateway) == "online")
    for _ in range(5):
        edge.beat()
        time.sleep(0.2)
    wait_for(lambda: offline_notices(gateway), timeout=5, what="the silence watch's alert")  # 3 x 0.3 + 0.5 s
    assert gateway.state.node(CENTER, NODE)["reason"] == "silent"
    edge.die()  # now the broker publishes the same connection's will: nothing new to say
    wait_for(lambda: gateway.state.node(CENTER, NODE)["reason"] == "will", what="the will applied")
    assert gateway.ingest.wait_idle(5)
    assert offline_states(gateway) == ["firing"]
    assert [n.detail for n in gateway.alerts.notifications() if n.key == KEY][0].startswith("silent for")
    RawEdge(broker, 2, "edge-back")  # the agent restarts: a new birth (no promise: it stays online)
    wait_for(lambda: node_status(gateway) == "online", what="online again")
    advance_past_hold_down(gateway, clock, KEY)
    wait_for(lambda: offline_states(gateway) == ["firing", "resolved"], what="one recovery")


def test_stale_last_will_after_a_new_birth_raises_nothing(gateway: Gateway, broker, recorder) -> None:  # noqa: ANN001
    rec = recorder(topic(CENTER, NODE, "status"))
    old = RawEdge(broker, 1, "edge-old-connection")
    wait_for(lambda: node_status(gateway) == "online")
    new = RawEdge(broker, 2, "edge-new-connection")  # reconnected while the old TCP session lingers
    wait_for(lambda: (gateway.state.node(CENTER, NODE) or {}).get("bdseq") == 2, what="the new birth")
    old.die()  # the broker now publishes the old will, after the new birth
    wait_for(lambda: any(b'"online":false' in p for p in rec.on("/status")), what="the stale will on the broker")
    assert gateway.ingest.wait_idle(10)
    time.sleep(0.2)  # the change hook runs right after the commit
    assert node_status(gateway) == "online"
    assert offline_notices(gateway) == [], "a stale will raised an alert"
    new.die()  # the current connection's will does count
    wait_for(lambda: offline_notices(gateway) == [("firing", "")], what="the real will's alert")


class Proxy:
    """A TCP relay between an agent and the broker whose connections can be cut (a flapping link)."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                a, _ = self.srv.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                a.close()
                continue
            with self.lock:
                self.conns += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            conns, self.conns = self.conns, []
            self.cuts += 1
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self.srv.close()
        self.cut()


@pytest.mark.slow
@pytest.mark.timeout(soak(120, 1800))
def test_flapping_link_one_alert_one_recovery(gateway: Gateway, clock: FakeClock, broker, tmp_path: Path) -> None:  # noqa: ANN001
    proxy = Proxy(broker.port)
    cfg = load_config(write_center(tmp_path, proxy.port, http_port=free_port()), env={})
    agent = make_agent(cfg, simulate=True)
    agent.start()
    duration, period = soak(20, 120), 5.0
    try:
        wait_for(lambda: node_status(gateway) == "online", timeout=20, what="agent online")
        end = time.monotonic() + duration
        births = 0
        while time.monotonic() < end:
            births += node_status(gateway) == "online"
            proxy.cut()  # the link drops every `period` seconds, whether the agent got back in time or not
            proxy_last_cut = time.monotonic()
            agent.sim.press_button("A")  # the queue goes on while the link flaps
            time.sleep(period)
            clock.advance(period)
        # the agent's backoff grows while connections last < 10 s (up to 30 s): then it settles. Wait for
        # the gateway to hold the birth of the agent's connection made after the last cut (an "online" from
        # before that cut may still stand until its will or silence is seen, and would go offline after)
        def settled() -> bool:
            sess = agent.link._session  # noqa: SLF001
            node = gateway.state.node(CENTER, NODE) or {}
            return (sess is not None and sess.alive and sess.started > last_cut and node.get("status") == "online"
                    and node.get("bdseq") == sess.bdseq)

        last_cut = proxy_last_cut
        wait_for(settled, timeout=45, what="online after the flapping, on a connection made after the last cut")
        assert gateway.ingest.wait_idle(5)
        assert births >= 2, "the link never came back between cuts: not a flap"
        assert offline_notices(gateway) == [("firing", "")], offline_notices(gateway)
        advance_past_hold_down(gateway, clock, KEY)
        wait_for(lambda: len(offline_notices(gateway)) == 2, what="the one recovery")
        assert offline_notices(gateway) == [("firing", ""), ("resolved", "")]
        wait_for(lambda: agent.store.pending_count() == 0, what="outbox drained")
        last = agent.store.last_seq()
        assert gateway.store.event_count(CENTER) == last, "an event was lost while flapping"
    finally:
        agent.stop()
        agent.sim.stop()
        proxy.close()
    print(f"\nRESULT flapping: {proxy.cuts} cuts ({births} while online) in {duration:.0f} s -> 1 alert, 1 recovery, "
          f"{last} events all stored")
