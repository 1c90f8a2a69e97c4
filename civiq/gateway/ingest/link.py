"""The ingest's MQTT link: session, subscriptions, validation on paho's thread, manual acks, commands, probes.

Everything here runs on paho's network thread (callbacks) or is thread-safe (``send_command``, ``publish``,
``ack``). ``on_message`` only checks and parses: size first (an oversized payload is dropped before any
decoding), then topic, then the payload (:func:`civiq.gateway.ingest.decode.decode`). Anything malformed is
counted by reason (``civiq_gw_malformed_total{reason}``) and dropped; nothing a device sends can raise out of
the callback. A valid message becomes an :class:`~civiq.gateway.ingest.items.Item` handed to ``deliver``
(the writer's queue). Events are acknowledged to the broker only after the writer committed them
(:meth:`MqttLink.ack`, one write for the batch); everything else as soon as the burst of packets paho's
thread is reading ends (one write for the burst).

>>> link = MqttLink(settings, clock, metrics, deliver=writer.put)      # doctest: +SKIP
>>> link.subscriptions()[:2]                                             # doctest: +SKIP
['civiq/v1/+/+/status', 'civiq/v1/+/+/queue']
"""

from __future__ import annotations

import logging
import os
import struct
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from civiq.clock import Clock
from civiq.contract import (
    COMMAND_MODELS,
    LEAF_MODELS,
    MAX_PAYLOAD_BYTES,
    ROOT,
    Command,
    ContractError,
    GatewayStatus,
    Probe,
    cmd_topic,
    gateway_probe_topic,
    gateway_status_topic,
    parse_payload,
    parse_topic,
)
from civiq.gateway.ingest.decode import decode
from civiq.gateway.ingest.items import Item, Malformed, reason_of
from civiq.gateway.metrics import GatewayMetrics
from civiq.gateway.settings import GatewaySettings
from civiq.mqttclient import make_client

log = logging.getLogger("civiq.gateway.ingest")

PLAIN_LEAVES = ("status", "queue", "health", "alive")  # every worker reads these (see the package docstring)
SHARED_LEAVES = ("event", "cmd_result")  # split between workers when shared_group is set
SUBSCRIBE_CHUNK = 200  # topic filters per SUBSCRIBE packet (a sharded worker may own hundreds of centers)
_PUBACK = struct.Struct("!BBH")  # an MQTT PUBACK: type 0x40, remaining length 2, packet id (v5: reason 0)
READ_BUFFER = 65536
READ_BURST = 500  # packets read per wake-up of paho's loop, at most (then it writes, pings, selects again)
PAHO_CHECKED = (("2", "1"), ("2", "2"))  # paho versions whose internals the fast path was checked against
_PAHO_INTERNALS = ("_create_socket", "_packet_read", "_loop_rc_handle", "_packet_queue")


def paho_fast_path() -> bool:
    """Whether the link may use paho's internals (buffered reads, bursts, acks in one write): only on a paho
    version they were checked on, with every one of them present, and unless ``CIVIQ_PAHO_FAST=0``. Otherwise
    the link uses paho's public API only (slower, same guarantees): a paho upgrade can never silently stop the
    acks."""
    import paho.mqtt

    version = tuple(str(getattr(paho.mqtt, "__version__", "")).split(".")[:2])
    return (os.environ.get("CIVIQ_PAHO_FAST", "1") != "0" and version in PAHO_CHECKED
            and all(callable(getattr(mqtt.Client, n, None)) for n in _PAHO_INTERNALS))


class BufferedSocket:
    """paho's socket, read through a buffer: one ``recv`` per up to 64 KiB instead of three or four per MQTT
    packet (paho reads the command byte, each remaining-length byte and the rest with separate calls). Each
    ``recv`` gives the GIL away and must win it back from the busy writer thread, so fewer of them is what
    lets paho's thread keep up. ``pending()`` tells paho's loop that buffered bytes are there without
    waiting in ``select`` (the hook paho has for TLS). Everything else goes to the wrapped socket.

    >>> import socket
    >>> a, b = socket.socketpair()
    >>> _ = a.send(b"\\x30\\x03abc\\x40")
    >>> s = BufferedSocket(b)
    >>> s.recv(1), s.pending(), s.recv(1), s.recv(3), s.recv(5), s.pending()
    (b'0', 5, b'\\x03', b'abc', b'@', 0)
    >>> a.close(); s.recv(1)
    b''
    """

    __slots__ = ("_sock", "_buf", "_pos")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, n: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos < len(buf):
            end = pos + n
            if end >= len(buf):
                self._buf, self._pos = b"", 0
                return buf[pos:] if pos else buf
            self._pos = end
            return buf[pos:end]
        data = self._sock.recv(max(n, READ_BUFFER))  # BlockingIOError / SSL errors reach paho as before
        if len(data) > n:
            self._buf, self._pos = data, n
            return data[:n]
        return data

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)
        return len(self._buf) - self._pos + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class MqttLink:
    """The paho client and what happens on its thread. ``deliver(item)`` must be thread-safe and cheap."""

    def __init__(self, settings: GatewaySettings, clock: Clock, metrics: GatewayMetrics,
                 deliver: Callable[[Item], None], centers: list[str] | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.deliver = deliver
        self.centers = centers  # None: every center (wildcards); else only these centers' topics
        self.recent_malformed: deque[Malformed] = deque(maxlen=50)
        self.probe_topic = gateway_probe_topic(settings.gateway_id)
        self.gen = 0  # connection generation: acks from an older connection are not sent
        self._sub_mids: set[int] = set()
        self._cmd_n = 0
        self._cmd_lock = threading.Lock()
        self.connected = threading.Event()
        self.ready = threading.Event()  # connected and subscriptions acknowledged
        self._probe_prefix = f"{ROOT}/gateway/"
        self._topics: dict[str, Any] = {}  # topic -> TopicParts of the valid ones seen (parsed once)
        mq = settings.mqtt
        self.client_id = mq.client_id or f"civiq-gw-{settings.gateway_id}"
        self.v5 = mq.protocol == "5"
        # 3.1.1 (e.g. amqtt, the demo broker): a persistent session instead of MQTT 5's session expiry
        c = make_client(self.client_id, v5=self.v5, clean_start=False, manual_ack=True,
                        username=mq.username or None, password=mq.password() if mq.username else None,
                        tls=mq.tls, ca_file=mq.ca_file,
                        will=(gateway_status_topic(settings.gateway_id), GatewayStatus(online=False).to_json(), 1,
                              True))
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(min_delay=0.2, max_delay=10)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        # paho internals, pinned by tests/gateway/test_ingest_units.py: the socket read through a buffer,
        # a burst of packets per loop wake-up, and the acks of the burst's queue/health messages in one write
        self._acks: list[bytes] = []  # PUBACKs owed for this burst's non-event messages (paho's thread only)
        self.fast = paho_fast_path()
        if self.fast:
            create = c._create_socket  # noqa: SLF001
            c._create_socket = lambda: BufferedSocket(create())  # type: ignore[method-assign]  # noqa: SLF001
            c.loop_read = self._loop_read  # type: ignore[method-assign]
        else:
            log.warning("paho-mqtt %s: its internals are not the checked ones; the ingest uses paho's public API "
                        "(slower)", getattr(sys.modules.get("paho.mqtt"), "__version__", "?"))
        self.client = c

    # ------------------------------------------------------------------------------------- lifecycle
    def subscriptions(self) -> list[str]:
        """The topic filters: ``+`` wildcards, or one set per owned center when sharded (then no shared
        group is needed: each message goes to the one worker that owns its center). With
        ``mqtt.shared_group`` the high-volume leaves are ``$share/<group>/...``."""
        if self.centers is not None:
            subs = [f"{ROOT}/{c}/+/{leaf}" for c in self.centers for leaf in (*PLAIN_LEAVES, *SHARED_LEAVES)]
            return [*subs, self.probe_topic]
        g = self.settings.mqtt.shared_group
        out = [f"{ROOT}/+/+/{leaf}" for leaf in PLAIN_LEAVES]
        out += [(f"$share/{g}/" if g else "") + f"{ROOT}/+/+/{leaf}" for leaf in SHARED_LEAVES]
        return [*out, self.probe_topic]

    def start(self) -> None:
        """Connect in the background (reconnects forever)."""
        mq = self.settings.mqtt
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = mq.session_expiry_s
            props.ReceiveMaximum = 2000
            self.client.connect_async(mq.host, mq.port, mq.keepalive, clean_start=False, properties=props)
        else:
            self.client.connect_async(mq.host, mq.port, mq.keepalive)
        self.client.loop_start()

    def say_offline(self) -> None:
        """Publish our retained offline status (orderly stop)."""
        if not self.connected.is_set():
            return
        try:
            info = self.client.publish(gateway_status_topic(self.settings.gateway_id),
                                       GatewayStatus(online=False, ts=self.clock.now()).to_json(),
                                       qos=1, retain=True)
            info.wait_for_publish(timeout=2)
        except (RuntimeError, ValueError):
            pass

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()
        self.ready.clear()

    # ------------------------------------------------------------------------------------- outgoing
    def ack(self, acks: list[tuple[int, int, int]]) -> None:
        """Acknowledge committed messages (from the writer thread). Acks of an older connection are
        dropped: after a reconnect the broker re-sends those itself. The QoS 1 acks (events) go out as **one**
        write of back-to-back PUBACK packets (paho would queue, wake its loop and ``send`` each one alone)."""
        gen = self.gen
        pack = _PUBACK.pack
        out: list[bytes] = []
        for mid, qos, g in acks:
            if g != gen:
                continue
            if qos == 1 and self.fast:
                out.append(pack(0x40, 2, mid))
            else:
                try:
                    self.client.ack(mid, qos)
                except Exception:  # noqa: BLE001
                    pass
        if out:
            try:
                self.client._packet_queue(0x40, b"".join(out), 0, 0)  # noqa: SLF001 - see above
            except Exception:  # noqa: BLE001
                pass

    def _loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """paho's ``loop_read`` (called by its loop when the socket, or the buffer, has data), reading up to
        ``READ_BURST`` packets (paho's own reads one, with manual acks), then sending the burst's acks."""
        c = self.client
        try:
            for _ in range(READ_BURST):
                if c._sock is None:  # noqa: SLF001
                    return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
                rc = c._packet_read()  # noqa: SLF001
                if rc > 0:
                    return c._loop_rc_handle(rc)  # noqa: SLF001
                if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN:
                    break
            return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        finally:
            self._flush_acks()

    def _flush_acks(self) -> None:
        if self._acks:
            packet = b"".join(self._acks)
            self._acks.clear()
            try:
                self.client._packet_queue(0x40, packet, 0, 0)  # noqa: SLF001
            except Exception:  # noqa: BLE001
                pass

    def publish(self, t: str, payload: bytes, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(t, payload, qos=qos, retain=retain)

    def send_probe(self) -> None:
        """A probe to ourselves (the silence watch's horizon), when connected."""
        if self.connected.is_set():
            self.client.publish(self.probe_topic, Probe(sent=time.monotonic()).to_json(), qos=1)

    def send_command(self, center: str, node: str, name: str, cmd: Command, retain: bool = False,
                     qos: int = 1) -> mqtt.MQTTMessageInfo:
        """Publish ``cmd`` on ``civiq/v1/<center>/<node>/cmd/<name>``. Policies are sent retained.

        Raises :class:`ContractError` for an unknown command name, a model that does not match it, or a
        bad center/node id. While disconnected the command is queued by paho and sent on reconnect.
        """
        model = COMMAND_MODELS.get(name)
        if model is None:
            raise ContractError(f"unknown command {name!r}; known: {', '.join(COMMAND_MODELS)}")
        if not isinstance(cmd, model):
            raise ContractError(f"command {name!r} takes {model.__name__}, got {type(cmd).__name__}")
        t = cmd_topic(center, node, name)
        info = self.client.publish(t, cmd.to_json(), qos=qos, retain=retain)
        self.metrics.commands.inc(name=name)
        return info

    def new_command_id(self, prefix: str = "gw") -> str:
        with self._cmd_lock:
            self._cmd_n += 1
            return f"{prefix}-{self._cmd_n}-{uuid.uuid4().hex[:8]}"

    # ------------------------------------------------------------------------------------- paho callbacks
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
        try:
            if reason.is_failure:
                log.warning("broker refused the connection: %s", reason)
                return
            self.gen += 1
            self._acks.clear()  # owed to the old connection: the broker sends those messages again
            self.connected.set()
            self.metrics.connected.set(1)
            client.publish(gateway_status_topic(self.settings.gateway_id),
                           GatewayStatus(online=True, ts=self.clock.now()).to_json(), qos=1, retain=True)
            topics = self.subscriptions()
            mids = set()
            for i in range(0, len(topics), SUBSCRIBE_CHUNK):
                chunk = topics[i:i + SUBSCRIBE_CHUNK]
                subs = [(t, SubscribeOptions(qos=1)) for t in chunk] if self.v5 else [(t, 1) for t in chunk]
                _, mid = client.subscribe(subs)
                mids.add(mid)
            self._sub_mids = mids
        except Exception:  # noqa: BLE001 - never raise into paho
            log.exception("on_connect failed")

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any = None) -> None:
        if mid not in self._sub_mids:
            return
        bad = [r for r in reasons if getattr(r, "is_failure", False)]
        if bad:
            log.error("broker refused subscriptions: %s", bad)
        self._sub_mids.discard(mid)
        if not self._sub_mids:
            self.deliver(Item("stale", "", "", False, self.clock.now()))
            self.ready.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        self.ready.clear()
        self.metrics.connected.set(0)
        if was:
            log.warning("lost the broker (%s); the live state is stale until we are back", reason)
            self.deliver(Item("stale", "", "", True, self.clock.now()))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self.receive(msg)
        except Exception as e:  # noqa: BLE001 - nothing a device sends may escape into paho
            log.exception("unexpected error on a message")
            self.malformed(msg, "internal", repr(e))

    def _ack_now(self, msg: mqtt.MQTTMessage) -> None:
        if msg.qos:
            self.client.ack(msg.mid, msg.qos)

    def malformed(self, msg: mqtt.MQTTMessage, reason: str, detail: str) -> None:
        self.metrics.malformed.inc(reason=reason)
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = repr(msg._topic)  # noqa: SLF001
        self.recent_malformed.append(Malformed(topic[:200], reason, detail[:300], self.clock.now()))
        try:
            self._ack_now(msg)
        except Exception:  # noqa: BLE001
            pass

    def receive(self, msg: mqtt.MQTTMessage) -> None:
        """Check and parse one message on paho's thread; hand it to ``deliver`` or count it malformed."""
        payload = msg.payload
        if len(payload) > MAX_PAYLOAD_BYTES:  # cheap: before decoding anything
            self.malformed(msg, "too_large", f"{len(payload)} bytes")
            return
        try:
            t = msg.topic
        except UnicodeDecodeError:
            self.malformed(msg, "topic", "topic is not UTF-8")
            return
        if t.startswith(self._probe_prefix):  # gateways' own status (ours included): not edge data
            self._ack_now(msg)
            if t == self.probe_topic:
                try:
                    probe = parse_payload(Probe, payload)
                except ContractError as e:
                    self.malformed(msg, reason_of(e), str(e))
                    return
                self.deliver(Item("probe", "", "", probe, self.clock.now()))
            return
        parts = self._topics.get(t)
        if parts is None:
            try:
                parts = parse_topic(t)
                if parts.leaf not in LEAF_MODELS:
                    raise ContractError(f"not an edge-to-gateway topic: {t!r}")
            except ContractError as e:
                self.malformed(msg, "topic", str(e))
                return
            if len(self._topics) > 200_000:  # valid topics only, bounded: a province has a few thousand
                self._topics.clear()
            self._topics[t] = parts
        leaf = parts.leaf
        try:
            model = decode(leaf, payload)
        except ContractError as e:
            self.malformed(msg, reason_of(e), str(e))
            return
        now, mono = self.clock.now(), time.monotonic()
        if leaf == "event":
            item = Item("event", parts.center, parts.node, model, now,
                        (msg.mid, msg.qos, self.gen) if msg.qos else None, mono)
        else:
            item = Item(leaf, parts.center, parts.node, model, now, mono=mono)
            if msg.qos == 1 and self.fast:
                self._acks.append(_PUBACK.pack(0x40, 2, msg.mid))  # sent at the end of the read burst
            else:
                self._ack_now(msg)
        self.deliver(item)
