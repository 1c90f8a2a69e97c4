"""The shipped Mosquitto configs, run for real: TLS, passwords, the generated ACL.

One broker per module, started from ``firmware-config/mosquitto/production.conf`` exactly as shipped, with only
its paths and ports substituted, included from a stock Debian ``mosquitto.conf`` (the way an operator installs
it). Certificates are a throwaway CA made with ``openssl``; node passwords and the ACL come from
``civiq gateway acl``; the gateway's password is added with ``mosquitto_passwd -b``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from civiq.clock import SystemClock
from civiq.contract import CmdResult, DisplayCmd, Event, cmd_topic, parse_payload, topic
from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import config_warnings, load_config
from civiq.edge.link import EdgeLink
from civiq.edge.queue.store import EdgeStore
from tests.conftest import wait_for
from tests.e2e.centers import write_center
from tests.reliability.faultkit import ConfMosquitto

ROOT_DIR = Path(__file__).resolve().parents[2]
SHIPPED = ROOT_DIR / "firmware-config" / "mosquitto"
NODES = [("hcm-q1", "pi-1"), ("hcm-q1", "pi-2"), ("hcm-q3", "pi-1")]
GATEWAY_PASSWORD = "gw-Secret-Pass-42"

pytestmark = pytest.mark.skipif(not (shutil.which("openssl") and shutil.which("mosquitto_passwd")),
                                reason="needs openssl and mosquitto_passwd")


def _run(*cmd: str, cwd: Path | None = None) -> str:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{cmd}: {r.stdout}{r.stderr}"
    return r.stdout


def make_certs(d: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
         "-subj", "/CN=civiq-test-ca", cwd=d)
    _run("openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "2", "-extfile", "san.ext", cwd=d)


@dataclass
class Secure:
    broker: ConfMosquitto
    tls_port: int
    local_port: int
    dir: Path

    @property
    def ca(self) -> str:
        return str(self.dir / "ca.crt")

    def password_file(self, center: str, node: str) -> Path:
        return self.dir / "secrets" / f"{center}-{node}.password"

    def password(self, center: str, node: str) -> str:
        return self.password_file(center, node).read_text().strip()


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    d = tmp_path_factory.mktemp("secure-mqtt")
    make_certs(d)
    (d / "nodes.txt").write_text("# center/node\n" + "".join(f"{c}/{n}\n" for c, n in NODES))
    env = dict(os.environ, PYTHONPATH=str(ROOT_DIR))
    r = subprocess.run([sys.executable, "-m", "civiq", "gateway", "acl", str(d / "nodes.txt"), "--acl",
                        str(d / "civiq.acl"), "--passwd", str(d / "civiq.passwd"), "--secrets-dir",
                        str(d / "secrets")], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    _run("mosquitto_passwd", "-b", str(d / "civiq.passwd"), "gateway", GATEWAY_PASSWORD)
    tls_port, local_port = free_port(), free_port()
    conf = (SHIPPED / "production.conf").read_text()
    for old, new in (("/etc/mosquitto/civiq.passwd", str(d / "civiq.passwd")),
                     ("/etc/mosquitto/civiq.acl", str(d / "civiq.acl")),
                     ("/etc/mosquitto/certs/", f"{d}/"),
                     ("listener 8883", f"listener {tls_port} 127.0.0.1"),
                     ("listener 1883 127.0.0.1", f"listener {local_port} 127.0.0.1")):
        assert old in conf, f"production.conf no longer has {old!r}"
        conf = conf.replace(old, new)
    (d / "conf.d").mkdir()
    (d / "conf.d" / "civiq.conf").write_text(conf)
    # A stock Debian mosquitto.conf (paths moved), which includes conf.d: how an operator installs ours.
    (d / "mosquitto.conf").write_text(f"user root\npersistence true\npersistence_location {d}/\n"
                                      f"log_dest stderr\ninclude_dir {d}/conf.d\n")
    b = ConfMosquitto(d / "mosquitto.conf", [tls_port, local_port], d / "mosquitto.log").start()
    try:
        yield Secure(b, tls_port, local_port, d)
    finally:
        b.stop()


class Client:
    """A paho client that records the CONNACK and every message."""

    def __init__(self, s: Secure, user: str | None, password: str | None, *, tls: bool = True,
                 port: int | None = None, connack_timeout: float = 5.0) -> None:
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if user is not None:
            self.c.username_pw_set(user, password)
        if tls:
            self.c.tls_set(ca_certs=s.ca)
        self.rc: mqtt.ReasonCode | None = None
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.connack = threading.Event()
        self.subacks = threading.Semaphore(0)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: self.subacks.release()
        self.error: Exception | None = None
        try:
            self.c.connect("127.0.0.1", port or s.tls_port, keepalive=10)
        except OSError as e:
            self.error = e
            return
        self.c.loop_start()
        self.connack.wait(connack_timeout)

    def _on_connect(self, c, u, flags, rc, props=None) -> None:  # noqa: ANN001
        self.rc = rc
        self.connack.set()

    def _on_message(self, c, u, m) -> None:  # noqa: ANN001
        with self.lock:
            self.messages.append((m.topic, m.payload))

    @property
    def accepted(self) -> bool:
        return self.rc is not None and not self.rc.is_failure

    def subscribe(self, flt: str) -> None:
        self.c.subscribe(flt, qos=1)
        assert self.subacks.acquire(timeout=5), "no SUBACK"

    def publish(self, t: str, payload: bytes) -> None:
        self.c.publish(t, payload, qos=1).wait_for_publish(5)

    def got(self, t: str) -> list[bytes]:
        with self.lock:
            return [p for tt, p in self.messages if tt == t]

    def close(self) -> None:
        self.c.disconnect()
        sock = self.c.socket()
        if sock is not None and not self.accepted:
            try:
                sock.shutdown(2)  # a refused or half-open TLS handshake: do not wait for paho's select
            except OSError:
                pass
        self.c.loop_stop()


@pytest.fixture
def clients(secure: Secure) -> Iterator:
    made: list[Client] = []

    def make(user: str | None, password: str | None, **kw: object) -> Client:
        c = Client(secure, user, password, **kw)  # type: ignore[arg-type]
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def node_user(center: str, node: str) -> str:
    return f"edge-{center}-{node}"


def test_anonymous_and_wrong_passwords_are_refused(secure: Secure, clients) -> None:  # noqa: ANN001
    for port in (secure.tls_port, secure.local_port):
        anon = clients(None, None, tls=port == secure.tls_port, port=port)
        assert anon.rc is not None and anon.rc.is_failure and "authori" in str(anon.rc).lower(), anon.rc
    wrong = clients(node_user("hcm-q1", "pi-1"), "not-the-password")
    assert wrong.rc is not None and wrong.rc.is_failure
    other = clients(node_user("hcm-q1", "pi-1"), secure.password("hcm-q1", "pi-2"))  # another node's password
    assert other.rc is not None and other.rc.is_failure
    # plain MQTT on the TLS port: never a CONNACK
    plain = clients("gateway", GATEWAY_PASSWORD, tls=False, connack_timeout=1.5)
    assert not plain.accepted
    assert clients("gateway", GATEWAY_PASSWORD).accepted
    assert clients("gateway", GATEWAY_PASSWORD, tls=False, port=secure.local_port).accepted


def test_a_node_cannot_write_into_or_read_other_nodes_topics(secure: Secure, clients) -> None:  # noqa: ANN001
    gw = clients("gateway", GATEWAY_PASSWORD)
    gw.subscribe("civiq/v1/#")
    spy = clients(node_user("hcm-q1", "pi-1"), secure.password("hcm-q1", "pi-1"))
    spy.subscribe("#")
    assert spy.accepted
    victim = clients(node_user("hcm-q3", "pi-1"), secure.password("hcm-q3", "pi-1"))
    forged = [topic("hcm-q3", "pi-1", "event"), topic("hcm-q3", "pi-1", "status"), topic("hcm-q1", "pi-2", "queue"),
              "civiq/v1/gateway/gw-1/status", "civiq/v1/alerts/hcm-q3", "civiq/v1/hcm-q1/pi-1/other"]
    for t in forged:
        spy.publish(t, b'{"seq": 1}')
    victim.publish(topic("hcm-q3", "pi-1", "event"), b"victim-secret")
    spy.publish(topic("hcm-q1", "pi-1", "event"), b"barrier")  # allowed: arrives after everything above
    wait_for(lambda: gw.got(topic("hcm-q1", "pi-1", "event")) and gw.got(topic("hcm-q3", "pi-1", "event")),
             what="the allowed messages at the gateway")
    assert gw.got(topic("hcm-q3", "pi-1", "event")) == [b"victim-secret"]
    for t in forged:
        assert t == topic("hcm-q3", "pi-1", "event") or gw.got(t) == [], f"forged {t} got through"
    assert spy.got(topic("hcm-q3", "pi-1", "event")) == [], "a node read another center's events"


def test_only_the_gateway_may_command(secure: Secure, clients, tmp_path: Path) -> None:  # noqa: ANN001
    seen: list[str] = []
    store = EdgeStore(tmp_path / "edge.db")
    link = EdgeLink(store, center="hcm-q1", node="pi-1", host="127.0.0.1", port=secure.tls_port,
                    clock=SystemClock(), keepalive=5, username=node_user("hcm-q1", "pi-1"),
                    password=secure.password("hcm-q1", "pi-1"), tls=True, ca_file=secure.ca,
                    on_command=lambda name, cmd: seen.append(cmd.id) or None)
    link.start()
    gw = clients("gateway", GATEWAY_PASSWORD)
    gw.subscribe(topic("hcm-q1", "pi-1", "cmd_result"))
    try:
        wait_for(lambda: link.connected, what="the edge link over TLS with its password")
        target = cmd_topic("hcm-q1", "pi-1", "display")
        neighbour = clients(node_user("hcm-q1", "pi-2"), secure.password("hcm-q1", "pi-2"))
        neighbour.publish(target, DisplayCmd(id="forged-by-neighbour", text="HACK").to_json())
        foreign = clients(node_user("hcm-q3", "pi-1"), secure.password("hcm-q3", "pi-1"))
        foreign.publish(target, DisplayCmd(id="forged-by-other-center", text="HACK").to_json())
        self_ = clients(node_user("hcm-q1", "pi-1"), secure.password("hcm-q1", "pi-1"))
        self_.publish(target, DisplayCmd(id="forged-by-itself", text="HACK").to_json())
        gw.publish(target, DisplayCmd(id="from-gateway", text="NGHỈ").to_json())
        results = wait_for(lambda: [parse_payload(CmdResult, p) for p in gw.got(topic("hcm-q1", "pi-1",
                                                                                      "cmd_result"))],
                           what="the gateway's command answered")
        assert [r.id for r in results] == ["from-gateway"] and results[0].ok
        assert seen == ["from-gateway"]
        assert link.stats["commands"] == 1 and link.stats["bad_commands"] == 0
    finally:
        link.stop()
        store.close()


def test_edge_agent_over_tls_with_a_password_file_and_no_secret_in_logs(
        secure: Secure, clients, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    caplog.set_level(logging.DEBUG)
    password_file = tmp_path / "mqtt-password"
    password = secure.password("hcm-q1", "pi-1")
    password_file.write_text(password + "\n")
    password_file.chmod(0o644)  # a technician's mistake: the agent must say so
    config = write_center(tmp_path, 0, center="hcm-q1", node="pi-1", http_port=free_port())
    text = config.read_text().replace(
        "mqtt: {host: 127.0.0.1, port: 0, keepalive: 5}",
        f"mqtt: {{host: 127.0.0.1, port: {secure.tls_port}, keepalive: 5, username: {node_user('hcm-q1', 'pi-1')},"
        f" password_file: {password_file}, tls: true, ca_file: {secure.ca}}}")
    assert text != config.read_text()
    config.write_text(text)
    cfg = load_config(config, env={})
    warnings = config_warnings(cfg)
    assert any("chmod 600" in w and "0644" in w for w in warnings), warnings
    gw = clients("gateway", GATEWAY_PASSWORD)
    gw.subscribe("civiq/v1/hcm-q1/pi-1/#")
    agent = make_agent(cfg, simulate=True)
    agent.start()
    try:
        wait_for(lambda: agent.link.connected, what="agent connected over TLS")
        agent.sim.press_button("A")
        events = wait_for(lambda: [parse_payload(Event, p) for p in gw.got(topic("hcm-q1", "pi-1", "event"))],
                          what="the agent's event at the gateway")
        assert events[0].data["ticket"] == "A001"
        wait_for(lambda: agent.store.pending_count() == 0, what="outbox acknowledged by the secure broker")
    finally:
        agent.stop()
        agent.sim.stop()
    assert "chmod 600" in caplog.text  # the permission warning reached the agent's log
    assert "MQTT connected" in caplog.text
    assert password not in caplog.text, "the MQTT password appeared in the agent's logs"
    assert password not in (secure.dir / "mosquitto.log").read_text()


def test_dev_config_installs_on_a_stock_debian_config(tmp_path: Path) -> None:
    port = free_port()
    conf = (SHIPPED / "dev.conf").read_text().replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "civiq.conf").write_text(conf)
    (tmp_path / "mosquitto.conf").write_text(f"user root\npersistence true\npersistence_location {tmp_path}/\n"
                                             f"log_dest stderr\ninclude_dir {tmp_path}/conf.d\n")
    b = ConfMosquitto(tmp_path / "mosquitto.conf", [port], tmp_path / "mosquitto.log").start()
    try:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert c.publish("civiq/v1/x/y/event", b"{}", qos=1).wait_for_publish(5) is None
        c.loop_stop()
        c.disconnect()
    finally:
        b.stop()
