"""The edge's MQTT link: publishes the durable outbox in order, birth/death status, state snapshots, commands.

Delivery guarantee: every event appended to the :class:`~civiq.edge.queue.store.EdgeStore` reaches the broker
at least once, in ``seq`` order of first arrival, whatever happens to the network, the broker or this process.
The outbox row is deleted only when the broker's PUBACK for that event came back; after any disconnect
everything still in the outbox is re-sent from the oldest. The gateway de-duplicates by ``(node, seq)``, so
exactly-once per seq is its job. Correctness never depends on broker sessions: every connection is a fresh
clean session (MQTT 3.1.1 ``clean_session``, the same as MQTT 5 ``clean_start`` with no session expiry; 3.1.1
because the embedded demo broker, amqtt, speaks no MQTT 5).

Why our own reconnect loop and not paho's: paho's ``reconnect_delay_set`` is a deterministic exponential
without jitter (a province of edges reconnects in lock-step after a broker restart), its Last Will is fixed
when set (we need a new ``bdseq`` in the will of every attempt), and on reconnect it silently re-sends the
QoS1 messages it still holds in memory, which would interleave with our outbox replay. So every attempt gets
a fresh paho client (``reconnect_on_failure=False``) with its own will, and the delay between attempts is
"full jitter": uniform between ``backoff_min`` and ``min(backoff_max, backoff_min * 2**(attempt+1))``.

Liveness: the birth promises ``alive_s`` (keepalive / 2): while connected the link publishes something at
least that often, an ``alive`` message whenever it has sent nothing else for ``alive_s`` seconds (only while a
gateway's status says online: beats nobody reads would pile up in the gateway's persistent session). The gateway
then sees a hung agent or a cut cable by the silence itself (``silence_timeout``: 1.5 x keepalive + 0.5 s after
the last message) instead of waiting for the broker's Last Will, which Mosquitto 2.0 publishes seconds later
than its keepalive rule says (docs/reliability.md).

A gateway coming (back) online (its live status, not the retained copy) makes the link re-announce itself on
the same connection: birth, latest queue snapshot, fresh health, after a 0-2 s jitter.

Threads: a supervisor (connects, reconnects), a pump (publishes the outbox, writes acks to SQLite, so the
fsync never runs on paho's network thread), a beat (the ``alive`` messages), paho's network thread per
connection, and a command worker. Reconnect delays, timeouts and beats are real time; timestamps in payloads
come from the injected clock.

Example::

    link = EdgeLink(store, center="hcm-q1", node="pi-1", host="127.0.0.1", port=1883, clock=SystemClock())
    link.start()                   # returns at once; connects in the background, forever
    store.append("ticket.issued", {"ticket": "A001"}, clock.now()); link.notify()
    link.stop()                    # retained {online: false, clean: true}, then DISCONNECT
"""

from __future__ import annotations

import logging
import random
import socket
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

import civiq
from civiq.clock import Clock
from civiq.contract import (
    ROOT,
    Alive,
    CmdResult,
    Command,
    ContractError,
    DeviceInfo,
    GatewayStatus,
    Health,
    Model,
    OutboxHealth,
    ServiceInfo,
    Status,
    WorkProfile,
    parse_payload,
    topic,
)
from civiq.edge.link.commands import CommandRunner, Handler
from civiq.edge.queue.store import EdgeStore
from civiq.mqttclient import make_client

log = logging.getLogger(__name__)

BDSEQ_KEY = "link.bdseq"
STATE_LEAVES = ("queue", "health")
GATEWAY_STATUS_FILTER = f"{ROOT}/gateway/+/status"


class _QuietPaho(logging.Filter):
    """paho 2.2 logs an ERROR ("Client is not connected") on every normal disconnect: drop that one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


_PAHO_LOG = logging.getLogger(f"{__name__}.paho")
_PAHO_LOG.addFilter(_QuietPaho())


def backoff_delay(attempt: int, lo: float, hi: float, rng: random.Random | None = None) -> float:
    """Full-jitter delay before reconnect attempt ``attempt`` (0 = first retry), within ``[lo, hi]``.

    >>> all(0.5 <= backoff_delay(n, 0.5, 30.0) <= 30.0 for n in range(50))
    True
    """
    cap = min(hi, lo * 2 ** min(attempt + 1, 30))
    return (rng or random).uniform(lo, max(lo, cap))


@dataclass
class _Latest:
    """The newest snapshot of one state leaf (latest wins; nothing older is ever queued)."""

    model: Model
    payload: bytes
    retain: bool
    sent: bool = False


class _Session:
    """One connection attempt: a fresh paho client with its own bdseq and will, and its in-flight events."""

    def __init__(self, client: mqtt.Client, bdseq: int) -> None:
        self.client = client
        self.bdseq = bdseq
        self.started = time.monotonic()
        self.ready = threading.Event()  # CONNACK accepted, subscribed, birth handed to paho
        self.ended = threading.Event()  # connection closed (or never made)
        self.alive = True
        self.torn_down = False
        self.refused: str | None = None
        self.pubacks: deque[int] = deque()  # mids, appended by the network thread
        self.inflight: dict[int, int] = {}  # mid -> seq, touched by the pump thread only
        self.sent_upto = 0  # highest seq handed to this connection (pump thread only)
        self.last_out = time.monotonic()  # when we last handed paho a message for this connection

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        self.last_out = time.monotonic()
        return self.client.publish(topic, payload, qos=qos, retain=retain)


class EdgeLink:
    """The edge agent's MQTT link. See the module docstring for the guarantees and the threads."""

    def __init__(
        self,
        store: EdgeStore,
        *,
        center: str,
        node: str,
        host: str,
        port: int,
        clock: Clock,
        keepalive: int = 10,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        version: str = civiq.__version__,
        config_hash: str = "",
        devices: Iterable[DeviceInfo] = (),
        center_name: str | None = None,
        services: Mapping[str, ServiceInfo] | None = None,
        counters: Mapping[str, str] | None = None,
        priority_classes: Mapping[str, ServiceInfo] | None = None,
        clerks: Mapping[str, str] | None = None,
        rating_scale: int | None = None,
        rating_reasons: Mapping[str, ServiceInfo] | None = None,
        counter_skills: Mapping[str, Sequence[str]] | None = None,
        counter_profiles: Mapping[str, WorkProfile] | None = None,
        on_command: Handler | None = None,
        max_inflight: int = 100,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
        health_source: Callable[[], Health] | None = None,
        alive_s: float | None = None,
    ) -> None:
        if not 1 <= max_inflight <= 65_000:
            raise ValueError("max_inflight must be between 1 and 65000 (paho cannot track more than 65535)")
        if not 0 < backoff_min <= backoff_max:
            raise ValueError("need 0 < backoff_min <= backoff_max")
        if tls and ca_file is not None and not Path(ca_file).is_file():
            raise ValueError(f"MQTT TLS CA file {ca_file!r} does not exist")
        self.store = store
        self.center, self.node = center, node
        self.host, self.port = host, port
        self.clock = clock
        self.keepalive = keepalive
        self.alive_s = alive_s if alive_s is not None else keepalive / 2
        if self.alive_s <= 0:
            raise ValueError("alive_s must be positive")
        self.username, self.password = username, password
        self.tls, self.ca_file = tls, ca_file
        self.version = version
        self.config_hash = config_hash
        self.devices = list(devices)
        self.center_name = center_name
        self.services = dict(services or {})
        self.counters = dict(counters or {})
        self.priority_classes = dict(priority_classes or {})
        self.clerks = dict(clerks or {})  # clerk id -> name (staff, for the dashboard and reports)
        self.rating_scale = rating_scale
        self.rating_reasons = dict(rating_reasons or {})
        self.counter_skills = {k: list(v) for k, v in (counter_skills or {}).items()}  # for the advisor
        self.counter_profiles = dict(counter_profiles or {})
        self.max_inflight = max_inflight
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.health_source = health_source
        self.client_id = f"civiq-edge-{center}-{node}"

        self._topic = {leaf: topic(center, node, leaf) for leaf in ("status", "event", "queue", "health",
                                                                     "alive", "cmd_result")}
        self._cmd_prefix = topic(center, node, "cmd/")
        self._counters = {"published": 0, "acked": 0, "connects": 0, "reconnects": 0, "connect_failures": 0,
                          "disconnects": 0, "beats": 0}
        self._counters_lock = threading.Lock()
        self._state: dict[str, _Latest] = {}
        self._state_lock = threading.Lock()
        self._gateways: dict[str, bool] = {}  # gateway id -> online, from their retained status
        self._gateways_lock = threading.Lock()
        self._last_bdseq = 0
        self._reannounce_at: float | None = None  # a gateway came (back) online: rebirth at this monotonic time
        self._session: _Session | None = None  # the ready session, None while offline
        self._current: _Session | None = None  # the session being attempted or up (supervisor's)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._rewind = threading.Event()  # replay_from(): the pump restarts from the oldest pending event
        self._threads: list[threading.Thread] = []
        self._commands = CommandRunner(on_command, self._publish_result, builtins={"rebirth": self._cmd_rebirth})

    # ============================================================================================ public
    def start(self) -> None:
        """Start connecting in the background and return at once (the agent works with no broker)."""
        if self._threads:
            return
        self._stopping.clear()
        self._commands.start()
        for name, target in (("civiq-link-supervisor", self._supervise), ("civiq-link-pump", self._pump),
                             ("civiq-link-beat", self._beat)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, clean: bool = True, timeout: float = 3.0) -> None:
        """Stop the link. ``clean``: publish the retained death ``{online: false, clean: true}`` and wait (at
        most ``timeout``) for its PUBACK, then DISCONNECT (the broker drops the will). Not clean: cut the
        socket as a crash would, so the broker publishes the Last Will."""
        if not self._threads:
            return
        self._stopping.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout + 6)  # the supervisor may be inside a blocking connect (5 s socket timeout)
        self._threads = []
        sess = self._current
        if sess is not None:
            if clean and sess.ready.is_set() and sess.alive:
                death = Status(online=False, bdseq=sess.bdseq, ts=self.clock.now(), clean=True)
                info = sess.publish(self._topic["status"], death.to_json(), qos=1, retain=True)
                try:
                    info.wait_for_publish(timeout)
                    if not info.is_published():
                        log.warning("clean death status not acknowledged within %.1f s", timeout)
                except (RuntimeError, ValueError) as e:  # the broker is gone: the will tells the story
                    log.warning("clean death status not sent: %s", e)
            self._teardown(sess, graceful=clean)
            self._settle(sess)
        self._current = None
        self._session = None
        self._commands.stop()

    def notify(self) -> None:
        """Wake the pump: new events were appended to the store."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        s = self._session
        return s is not None and s.alive

    @property
    def gateway_online(self) -> bool:
        """True when connected and at least one gateway's retained status says it is online."""
        with self._gateways_lock:
            return self.connected and any(self._gateways.values())

    @property
    def stats(self) -> dict[str, int]:
        with self._counters_lock:
            out = dict(self._counters)
        out.update(self._commands.stats)
        return out

    def pending_stats(self) -> OutboxHealth:
        """How many events wait in the outbox and the age of the oldest (by the injected clock)."""
        pending = self.store.pending_count()
        oldest = self.store.oldest_pending_ts() if pending else None
        age = max(0.0, (self.clock.now() - oldest).total_seconds()) if oldest else 0.0
        return OutboxHealth(pending=pending, oldest_s=age)

    def wait_drained(self, timeout: float = 10.0) -> bool:
        """Block until the outbox is empty (every event acknowledged); False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.store.pending_count():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def publish_state(self, leaf: str, model: Model, retain: bool) -> None:
        """Publish a ``queue`` or ``health`` snapshot at QoS1. Latest wins: while offline only the newest is
        kept, and it is sent after the next birth. Retained snapshots are re-sent after every reconnect (a
        restarted broker may have lost them)."""
        if leaf not in STATE_LEAVES:
            raise ValueError(f"state leaf must be one of {STATE_LEAVES}, not {leaf!r}")
        with self._state_lock:
            entry = _Latest(model, model.to_json(), retain)
            self._state[leaf] = entry
            sess = self._session
            if sess is not None:
                self._send_state(sess, leaf, entry)

    def rebirth(self) -> None:
        """Republish the birth, the latest queue snapshot and a fresh health (the gateway asked: it lost
        track of this node)."""
        sess = self._session
        if sess is None:
            return
        self._publish_birth(sess)
        with self._state_lock:
            queue_state = self._state.get("queue")
            if queue_state is not None:
                self._send_state(sess, "queue", queue_state)
            health = self._fresh_health()
            entry = _Latest(health, health.to_json(), False)
            self._state["health"] = entry
            self._send_state(sess, "health", entry)

    def replay_from(self, seq: int) -> int:
        """Put every logged event from ``seq`` on back into the outbox and send them again (the gateway lost
        them after the broker had acknowledged them). Returns how many were re-queued. The event log itself
        is untouched; the gateway de-duplicates what it already has."""
        seq = max(1, int(seq))
        n = self.store.requeue(seq)
        log.info("replaying events from seq %d (%d re-queued)", seq, n)
        self._rewind.set()
        self._wake.set()
        return n

    # ============================================================================================ supervisor
    def _supervise(self) -> None:
        attempt = 0
        failures_logged = 0
        while not self._stopping.is_set():
            sess = self._connect_once()
            if sess is not None:
                self._current = sess
                connack_deadline = time.monotonic() + max(5.0, 1.5 * self.keepalive)
                while not self._stopping.is_set() and not sess.ended.wait(0.1):
                    if not sess.ready.is_set() and time.monotonic() > connack_deadline:
                        log.warning("no CONNACK from %s:%s in time; dropping the attempt", self.host, self.port)
                        break
                if self._stopping.is_set():
                    return  # stop() tears the session down (it may first publish the clean death)
                lasted = time.monotonic() - sess.started
                was_up = sess.ready.is_set()
                self._teardown(sess, graceful=False)
                self._current = None
                if was_up:
                    self._count("disconnects")
                    log.warning("MQTT connection to %s:%s lost after %.1f s; outbox replays from the oldest",
                                self.host, self.port, lasted)
                    failures_logged = 0
                    if lasted >= 10.0:
                        attempt = 0
            if self._stopping.is_set():
                return
            if sess is None or not sess.ready.is_set():
                failures_logged += 1
                level = logging.WARNING if failures_logged == 1 else logging.DEBUG
                log.log(level, "MQTT broker %s:%s unreachable (attempt %d)%s", self.host, self.port,
                        failures_logged, f": {sess.refused}" if sess and sess.refused else "")
            delay = backoff_delay(attempt, self.backoff_min, self.backoff_max)
            attempt += 1
            self._stopping.wait(delay)

    def _next_bdseq(self) -> int:
        raw = self.store.get_meta(BDSEQ_KEY, "0") or "0"
        try:
            n = int(raw) + 1
        except ValueError:
            log.warning("bad %s in store meta (%r): restarting at 1", BDSEQ_KEY, raw)
            n = 1
        n = max(n, self._last_bdseq + 1)  # grows even when it could not be saved
        self._last_bdseq = n
        try:
            self.store.set_meta(BDSEQ_KEY, str(n))
        except sqlite3.Error as e:  # disk full: connect anyway (the birth matters more than the saved bdseq)
            log.error("bdseq %d not saved (%s); connecting anyway", n, e)
        return n

    def _connect_once(self) -> _Session | None:
        bdseq = self._next_bdseq()
        try:
            sess = self._new_session(bdseq)
        except Exception as e:  # a bad TLS setup or similar: report, keep retrying, never die
            self._count("connect_failures")
            log.error("cannot set up the MQTT client: %s: %s", type(e).__name__, e)
            return None
        try:
            sess.client.connect(self.host, self.port, self.keepalive)
        except (OSError, ValueError) as e:
            self._count("connect_failures")
            sess.refused = str(e)
            sess.alive = False
            return None
        sess.client.loop_start()
        return sess

    def _new_session(self, bdseq: int) -> _Session:
        """A fresh paho client whose Last Will carries ``bdseq``, with our callbacks bound to its session."""
        client = make_client(self.client_id, clean_start=True, reconnect_on_failure=False,
                             username=self.username, password=self.password, tls=self.tls, ca_file=self.ca_file,
                             will=(self._topic["status"], Status(online=False, bdseq=bdseq).to_json(), 1, True),
                             max_inflight=self.max_inflight, logger=_PAHO_LOG)
        client.suppress_exceptions = True
        sess = _Session(client, bdseq)
        client.on_connect = lambda c, u, flags, rc, props: self._on_connect(sess, rc)
        client.on_disconnect = lambda c, u, flags, rc, props: self._on_disconnect(sess, rc)
        client.on_publish = lambda c, u, mid, rc, props: self._on_publish(sess, mid)
        client.on_message = lambda c, u, msg: self._on_message(msg)
        return sess

    def _teardown(self, sess: _Session, graceful: bool) -> None:
        if sess.torn_down:
            return
        sess.torn_down = True
        client = sess.client
        if graceful:
            client.disconnect()
        else:
            _shutdown_socket(client)
        stopper = threading.Thread(target=client.loop_stop, daemon=True)
        stopper.start()
        stopper.join(3.0)
        if stopper.is_alive():  # a hung peer: force the network thread out
            _shutdown_socket(client)
            stopper.join(3.0)
        self._mark_down(sess)

    def _mark_down(self, sess: _Session) -> None:
        sess.alive = False
        sess.ended.set()
        if self._session is sess:
            self._session = None
            with self._gateways_lock:
                self._gateways.clear()
        self._wake.set()

    # ============================================================================================ callbacks
    # These run on paho's network thread: no SQLite, no blocking, no exceptions out.
    def _on_connect(self, sess: _Session, rc: mqtt.ReasonCode) -> None:
        try:
            if rc.is_failure:
                sess.refused = f"broker refused the connection: {rc}"
                log.error("MQTT %s", sess.refused)
                return
            client = sess.client
            client.subscribe([(self._cmd_prefix + "+", 1), (GATEWAY_STATUS_FILTER, 1)])
            self._publish_birth(sess)
            with self._state_lock:
                for leaf, entry in self._state.items():
                    if entry.retain or not entry.sent:
                        self._send_state(sess, leaf, entry)
                self._session = sess
            with self._counters_lock:
                self._counters["connects"] += 1
                if self._counters["connects"] > 1:
                    self._counters["reconnects"] += 1
            sess.ready.set()
            log.info("MQTT connected to %s:%s as %s (bdseq %d)", self.host, self.port, self.client_id, sess.bdseq)
            self._wake.set()
        except Exception:
            log.exception("on_connect failed")

    def _on_disconnect(self, sess: _Session, rc: mqtt.ReasonCode) -> None:
        log.debug("MQTT disconnected: %s", rc)
        self._mark_down(sess)

    def _on_publish(self, sess: _Session, mid: int) -> None:
        sess.pubacks.append(mid)
        self._wake.set()

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        try:
            t = msg.topic
            if t.startswith(self._cmd_prefix):
                self._commands.submit(t[len(self._cmd_prefix):], msg.payload)
            elif t.startswith(f"{ROOT}/gateway/"):
                gateway_id = t.split("/")[3]
                online: bool | None = None
                if msg.payload:  # empty: the retained status was cleared
                    try:
                        online = parse_payload(GatewayStatus, msg.payload).online
                    except ContractError as e:
                        log.warning("ignored bad gateway status from %r: %s", gateway_id, e)
                        return
                with self._gateways_lock:
                    was = self._gateways.get(gateway_id)
                    if online is None:
                        self._gateways.pop(gateway_id, None)
                    else:
                        self._gateways[gateway_id] = online
                if online and not was and not msg.retain:
                    # a gateway (re)started while we were connected: re-announce ourselves (birth, queue,
                    # a fresh health), spread over up to 2 s so a province's edges do not answer in one burst
                    self._reannounce_at = time.monotonic() + random.uniform(0.0, 2.0)
                    self._wake.set()
        except Exception:
            log.exception("on_message failed for %r", getattr(msg, "topic", "?"))

    # ============================================================================================ pump
    def _pump(self) -> None:
        active: _Session | None = None
        while not self._stopping.is_set():
            try:
                cur = self._session
                if active is not None and active is not cur:
                    self._settle(active)  # late PUBACKs of the old connection are still acknowledgements
                active = cur
                if cur is None or not cur.alive:
                    self._sleep(0.5)
                    continue
                self._settle(cur)
                due = self._reannounce_at
                if due is not None and time.monotonic() >= due:
                    self._reannounce_at = None
                    log.info("a gateway came online: re-announcing (birth, queue, health)")
                    self.rebirth()
                if self._rewind.is_set():
                    self._rewind.clear()
                    cur.sent_upto = 0
                room = self.max_inflight - len(cur.inflight)
                if room <= 0:
                    self._sleep(0.5)
                    continue
                batch = self.store.pending(limit=min(room, 500), after_seq=cur.sent_upto)
                if not batch:
                    self._sleep(1.0)
                    continue
                for ev in batch:
                    info = cur.publish(self._topic["event"], ev.to_json(), qos=1)
                    if info.rc != mqtt.MQTT_ERR_SUCCESS:
                        log.debug("publish of seq %d failed (%s); waiting for the reconnect", ev.seq,
                                  mqtt.error_string(info.rc))
                        self._sleep(0.2)
                        break
                    cur.inflight[info.mid] = ev.seq
                    cur.sent_upto = ev.seq
                    self._count("published")
            except Exception:
                log.exception("outbox pump error; retrying")
                self._sleep(1.0)
        if active is not None:
            self._settle(active)

    # ============================================================================================ beat
    def _beat(self) -> None:
        """Keep the birth's promise: something at least every ``alive_s`` seconds while connected."""
        step = min(0.25, self.alive_s / 4)
        while not self._stopping.wait(step):
            sess = self._session
            if sess is None or not sess.alive or time.monotonic() - sess.last_out < self.alive_s:
                continue
            if not self.gateway_online:  # nobody watches: beats would only pile up in the gateway's session
                continue
            try:
                info = sess.publish(self._topic["alive"], Alive(bdseq=sess.bdseq).to_json(), qos=1)
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    self._count("beats")
            except Exception:  # noqa: BLE001 - the beat must outlive any one bad moment
                log.exception("alive beat failed")

    def _settle(self, sess: _Session) -> None:
        """Turn the PUBACKs received so far into outbox deletions (one SQLite transaction)."""
        seqs = []
        while sess.pubacks:
            seq = sess.inflight.pop(sess.pubacks.popleft(), None)
            if seq is not None:  # None: a PUBACK for a status, snapshot or result, not an event
                seqs.append(seq)
        if seqs:
            self.store.ack(seqs)
            self._count("acked", len(seqs))

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    # ============================================================================================ helpers
    def _publish_birth(self, sess: _Session) -> None:
        birth = Status(online=True, bdseq=sess.bdseq, ts=self.clock.now(), version=self.version,
                       config_hash=self.config_hash, devices=self.devices, center_name=self.center_name,
                       services=self.services, counters=self.counters, alive_s=self.alive_s,
                       priority_classes=self.priority_classes, clerks=self.clerks,
                       rating_scale=self.rating_scale, rating_reasons=self.rating_reasons,
                       counter_skills=self.counter_skills, counter_profiles=self.counter_profiles)
        sess.publish(self._topic["status"], birth.to_json(), qos=1, retain=True)

    def _send_state(self, sess: _Session, leaf: str, entry: _Latest) -> None:
        info = sess.publish(self._topic[leaf], entry.payload, qos=1, retain=entry.retain)
        entry.sent = info.rc == mqtt.MQTT_ERR_SUCCESS

    def _fresh_health(self) -> Health:
        if self.health_source is not None:
            try:
                return self.health_source()
            except Exception:
                log.exception("health_source failed; sending the last health with a fresh outbox")
        last = self._state.get("health")
        outbox = self.pending_stats()
        if last is not None and isinstance(last.model, Health):
            return last.model.model_copy(update={"ts": self.clock.now(), "outbox": outbox})
        return Health(ts=self.clock.now(), outbox=outbox)

    def _publish_result(self, result: CmdResult) -> None:
        sess = self._session
        if sess is None:
            log.warning("offline: result of command %r (%s) not sent", result.id, result.cmd)
            return
        sess.publish(self._topic["cmd_result"], result.to_json(), qos=1)

    def _cmd_rebirth(self, name: str, cmd: Command) -> dict[str, int] | None:
        # ``from_seq`` is not in the v1 RebirthCmd yet; once the contract has it, a rebirth also fills gaps.
        from_seq = getattr(cmd, "from_seq", None)
        replayed = self.replay_from(from_seq) if isinstance(from_seq, int) and from_seq >= 1 else None
        self.rebirth()
        return None if replayed is None else {"replayed": replayed}

    def _count(self, key: str, n: int = 1) -> None:
        with self._counters_lock:
            self._counters[key] += n


def _shutdown_socket(client: mqtt.Client) -> None:
    sock = client.socket()
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
