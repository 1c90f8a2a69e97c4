"""MQTT ingest: validate what the edges send, de-duplicate events, keep the live state and the series.

Two threads:

* **paho's network thread** (``on_message``) only checks and parses: size first (oversized payloads are
  dropped before any decoding), then topic, then the payload with :func:`civiq.contract.parse_payload`.
  Anything malformed is counted by reason (``civiq_gw_malformed_total{reason}``: too_large, topic, utf8,
  json, schema, internal) and dropped; nothing a device sends can raise out of the callback. Valid
  messages go on an in-memory queue.
* **the writer thread** gathers messages for up to ``batch_window_s`` (50 ms) or ``batch_max`` (1000)
  and applies them in **one SQLite transaction**: events through ``INSERT OR IGNORE`` (the de-duplication), queue snapshots and
  health into the minute series, every message into :class:`LiveState`, InfluxDB lines into the export
  spool. It also runs the periodic jobs: heartbeat timeouts, silence watch, gap watch (``rebirth``), state
  saving, pruning.

Silence watch (offline in 1.5 x keepalive + 0.5 s, not whenever the broker sends the will): an edge's birth
promises ``alive_s``, the longest it stays silent while connected. Every message's arrival is stamped on
paho's thread with the real monotonic clock; a node silent for ``silence_timeout(alive_s)`` is offline
(reason ``silent``). So that the gateway's own lag never passes for the node's silence, silence is measured
up to a *horizon*, not up to "now": every ``silence_check_s`` the gateway publishes a ``Probe`` to itself
(``civiq/v1/gateway/<id>/probe``), and the horizon is the send time of the newest probe the writer has
applied. A backlog in the broker, in paho's socket or in the writer's queue holds the horizon back with
everything else, and nobody is declared silent for it.

Delivery: the client uses a persistent MQTT v5 session (``clean_start=False``, session expiry from the
settings) and **acknowledges events only after they are committed** (paho ``manual_ack``), so events
published while the gateway restarts wait in the broker, and a crash between receive and commit makes the
broker send them again (the store drops the repeats). Gaps (a node's seq jumps) that do not fill within
``gap_grace_s`` get a ``rebirth`` command to that node, at most once per ``rebirth_interval_s``; after
``max_rebirths`` unanswered rebirths the gap is recorded as lost and no longer chased.

Subscriptions with ``mqtt.shared_group`` set (several gateway workers behind one broker): ``event`` and
``cmd_result`` use ``$share/<group>/...`` (each message goes to one worker); ``status``, ``queue`` and
``health`` stay plain subscriptions, read by every worker, because (1) retained messages are never sent to
shared subscriptions, so a worker would start blind to every node's birth and last queue snapshot;
(2) every worker serves the live view and needs the whole state; (3) health is the heartbeat: a worker that
saw only some nodes' health would time the others out. These three leaves are a few messages per node
per 15 s: cheap to read N times. The broker must route one node's events to one worker
(EMQX ``shared_subscription_strategy = hash_topic``), or gap detection sees false gaps.

>>> ingest = Ingest(settings, state, store, influx, clock=SystemClock())       # doctest: +SKIP
>>> ingest.start(); ...; ingest.send_command("hcm-q1", "pi-1", "display",     # doctest: +SKIP
...     DisplayCmd(id="d1", text="Tạm nghỉ"))
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
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
    Alive,
    CmdResult,
    Command,
    ContractError,
    Event,
    GatewayStatus,
    Health,
    Probe,
    QueueSnapshot,
    RebirthCmd,
    Status,
    cmd_topic,
    gateway_probe_topic,
    gateway_status_topic,
    parse_payload,
    parse_topic,
    silence_timeout,
)
from civiq.gateway.metrics import GatewayMetrics
from civiq.gateway.settings import GatewaySettings
from civiq.gateway.state import LiveState
from civiq.gateway.store import influx as ix
from civiq.gateway.store.series import SeriesStore

log = logging.getLogger("civiq.gateway.ingest")

PLAIN_LEAVES = ("status", "queue", "health", "alive")  # every worker reads these (see module docstring)
SHARED_LEAVES = ("event", "cmd_result")  # split between workers when shared_group is set


@dataclass
class Applied:
    """What the ingest just applied (passed to ``on_change`` after the batch was committed).

    ``leaf``: status, event, queue, health, alive, cmd_result, heartbeat (node timed out; ``model`` None,
    or the seconds of silence when an ``alive_s`` promise was broken) or stale (the gateway lost/regained
    its broker; center/node empty, ``model`` is True/False).
    ``new``: False for a duplicate event or a stale will (the state did not change); for ``alive``, True
    only when the beat brought a silent node back.
    """

    leaf: str
    center: str
    node: str
    model: Any
    received: datetime
    new: bool = True


@dataclass
class _Item:
    leaf: str
    center: str
    node: str
    model: Any
    received: datetime
    ack: tuple[int, int, int] | None = None  # (mid, qos, connection generation) to ack after commit
    mono: float = 0.0  # real monotonic time of arrival on paho's thread (the silence watch)


@dataclass
class Malformed:
    topic: str
    reason: str
    detail: str
    received: datetime


@dataclass
class _GapWatch:
    since: float
    rebirths: int = 0
    last_rebirth: float = field(default=float("-inf"))
    contiguous: int = 0


def _reason(e: ContractError) -> str:
    msg = str(e)
    if msg.startswith("payload of"):
        return "too_large"
    if "not UTF-8" in msg:
        return "utf8"
    if "not JSON" in msg or "must be a JSON object" in msg:
        return "json"
    return "schema"


def load_live_state(store: SeriesStore, tz: str | None = None) -> LiveState:
    """The live state saved in ``store`` (stale until connected), or a new one if none/damaged."""
    text = store.load_state()
    if text:
        try:
            return LiveState.from_json(text, tz) if tz else LiveState.from_json(text)
        except ValueError as e:
            log.warning("saved live state not usable, starting empty: %s", e)
    return LiveState(tz) if tz else LiveState()


class Ingest:
    """The gateway's MQTT side. Thread-safe public methods: ``send_command``, ``stats``, ``wait_idle``."""

    def __init__(
        self,
        settings: GatewaySettings,
        state: LiveState,
        store: SeriesStore,
        influx: ix.InfluxExport | None = None,
        *,
        clock: Clock,
        on_change: Callable[[Applied], None] | None = None,
        metrics: GatewayMetrics | None = None,
        gap_grace_s: float = 5.0,
        rebirth_interval_s: float = 60.0,
        max_rebirths: int = 5,
        batch_max: int = 1000,
        batch_window_s: float = 0.05,
        save_interval_s: float = 30.0,
        prune_interval_s: float = 3600.0,
        heartbeat_check_s: float = 1.0,
        silence_check_s: float = 0.25,
    ) -> None:
        self.settings = settings
        self.state = state
        self.store = store
        self.influx = influx
        self.clock = clock
        self.on_change = on_change
        self.metrics = metrics or GatewayMetrics()
        self.gap_grace_s = gap_grace_s
        self.rebirth_interval_s = rebirth_interval_s
        self.max_rebirths = max_rebirths
        self.batch_max = batch_max
        self.batch_window_s = batch_window_s
        self.save_interval_s = save_interval_s
        self._births_unsaved = False  # a birth applied since the state was last saved
        self.prune_interval_s = prune_interval_s
        self.heartbeat_check_s = heartbeat_check_s
        self.silence_check_s = silence_check_s
        self.recent_malformed: deque[Malformed] = deque(maxlen=50)
        self.ticks = 0  # passes of the writer's periodic jobs (lets tests wait for "a check has run")

        self._q: queue.Queue[_Item] = queue.Queue()
        self._enqueued = 0
        self._processed = 0
        self._count_lock = threading.Lock()
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None
        self._gen = 0  # connection generation: acks from an older connection are not sent
        self._sub_mid: int | None = None
        self.connected = threading.Event()
        self.ready = threading.Event()  # connected and subscriptions acknowledged
        self._gaps: dict[tuple[str, str], _GapWatch] = {}
        self._cmd_n = 0
        self._cmd_lock = threading.Lock()
        # silence watch (writer thread only): arrival of each node's last message, its birth's alive_s,
        # and the horizon (send time of the newest own probe applied); all real monotonic seconds
        self._last_rx: dict[tuple[str, str], float] = {}
        self._alive_s: dict[tuple[str, str], float] = {}
        self._horizon: float | None = None
        self.probe_topic = gateway_probe_topic(settings.gateway_id)

        m = self.metrics
        m.queue_depth.set_function(lambda: float(self._q.qsize()))
        m.nodes.set_function(lambda: {(k,): float(v) for k, v in self.state.node_counts().items()})
        m.ingest_lag.set_function(lambda: float("nan") if self._horizon is None
                                  else max(0.0, time.monotonic() - self._horizon))
        if influx is not None:
            m.influx_pending.set_function(lambda: float(influx.pending()))
            m.influx_sent.set_function(lambda: float(influx.sent))
            m.influx_failed.set_function(lambda: float(influx.failed_attempts))

        mq = settings.mqtt
        self.client_id = mq.client_id or f"civiq-gw-{settings.gateway_id}"
        self.v5 = mq.protocol == "5"
        if self.v5:
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5,
                            manual_ack=True)
        else:  # e.g. amqtt (the demo broker): a persistent 3.1.1 session instead of session expiry
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                            protocol=mqtt.MQTTv311, clean_session=False, manual_ack=True)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(min_delay=0.2, max_delay=10)
        c.will_set(gateway_status_topic(settings.gateway_id), GatewayStatus(online=False).to_json(), qos=1,
                   retain=True)
        if mq.username:
            c.username_pw_set(mq.username, mq.password())
        if mq.tls:
            c.tls_set(ca_certs=str(mq.ca_file) if mq.ca_file else None)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        self.client = c

    # ------------------------------------------------------------------------------------- lifecycle
    def subscriptions(self) -> list[str]:
        """The topic filters this gateway subscribes to (shared ones prefixed ``$share/<group>/``)."""
        g = self.settings.mqtt.shared_group
        out = [f"{ROOT}/+/+/{leaf}" for leaf in PLAIN_LEAVES]
        out += [(f"$share/{g}/" if g else "") + f"{ROOT}/+/+/{leaf}" for leaf in SHARED_LEAVES]
        return [*out, self.probe_topic]

    def start(self) -> Ingest:
        """Start the writer thread and connect (in the background; reconnects forever)."""
        self.state.mark_stale(True)
        self._stopping.clear()
        self._writer = threading.Thread(target=self._run_writer, name="gw-writer", daemon=True)
        self._writer.start()
        mq = self.settings.mqtt
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = mq.session_expiry_s
            props.ReceiveMaximum = 2000
            self.client.connect_async(mq.host, mq.port, mq.keepalive, clean_start=False, properties=props)
        else:
            self.client.connect_async(mq.host, mq.port, mq.keepalive)
        self.client.loop_start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Publish our offline status, disconnect, commit what is queued and save the live state.

        The store and the Influx export belong to the caller: close/stop them after this."""
        if self.connected.is_set():
            try:
                info = self.client.publish(gateway_status_topic(self.settings.gateway_id),
                                           GatewayStatus(online=False, ts=self.clock.now()).to_json(),
                                           qos=1, retain=True)
                info.wait_for_publish(timeout=2)
            except (RuntimeError, ValueError):
                pass
        self._stopping.set()
        if self._writer:
            self._writer.join(timeout)
            self._writer = None
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()
        self.ready.clear()
        self._save_state()

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until connected and subscribed."""
        return self.ready.wait(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until everything received so far has been committed (tests, orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._count_lock:
                if self._processed >= self._enqueued:
                    return True
            time.sleep(0.005)
        return False

    @property
    def stats(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "connected": self.connected.is_set(),
            "queued": self._q.qsize(),
            "processed": self._processed,
            "malformed": m.malformed.total(),
            "duplicates": m.duplicates.total(),
            "gaps": m.gaps.total(),
            "rebirths_sent": m.rebirths.total(),
            "open_gaps": len(self._gaps),
        }

    # ------------------------------------------------------------------------------------- commands
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
            self._gen += 1
            self.connected.set()
            self.metrics.connected.set(1)
            client.publish(gateway_status_topic(self.settings.gateway_id),
                           GatewayStatus(online=True, ts=self.clock.now()).to_json(), qos=1, retain=True)
            if self.v5:
                subs = [(t, SubscribeOptions(qos=1)) for t in self.subscriptions()]
            else:
                subs = [(t, 1) for t in self.subscriptions()]
            _, self._sub_mid = client.subscribe(subs)
        except Exception:  # noqa: BLE001 - never raise into paho
            log.exception("on_connect failed")

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any = None) -> None:
        if mid == self._sub_mid:
            bad = [r for r in reasons if getattr(r, "is_failure", False)]
            if bad:
                log.error("broker refused subscriptions: %s", bad)
            self._q.put(_Item("stale", "", "", False, self.clock.now()))
            self._count(1)
            self.ready.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        self.ready.clear()
        self.metrics.connected.set(0)
        if was:
            log.warning("lost the broker (%s); the live state is stale until we are back", reason)
            self._q.put(_Item("stale", "", "", True, self.clock.now()))
            self._count(1)

    def _count(self, n: int) -> None:
        with self._count_lock:
            self._enqueued += n

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._receive(msg)
        except Exception as e:  # noqa: BLE001 - nothing a device sends may escape into paho
            log.exception("unexpected error on a message")
            self._malformed(msg, "internal", repr(e))

    def _ack(self, msg: mqtt.MQTTMessage) -> None:
        if msg.qos:
            self.client.ack(msg.mid, msg.qos)

    def _malformed(self, msg: mqtt.MQTTMessage, reason: str, detail: str) -> None:
        self.metrics.malformed.inc(reason=reason)
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = repr(msg._topic)  # noqa: SLF001
        self.recent_malformed.append(Malformed(topic[:200], reason, detail[:300], self.clock.now()))
        try:
            self._ack(msg)
        except Exception:  # noqa: BLE001
            pass

    def _receive(self, msg: mqtt.MQTTMessage) -> None:
        payload = msg.payload
        if len(payload) > MAX_PAYLOAD_BYTES:  # cheap: before decoding anything
            self._malformed(msg, "too_large", f"{len(payload)} bytes")
            return
        try:
            t = msg.topic
        except UnicodeDecodeError:
            self._malformed(msg, "topic", "topic is not UTF-8")
            return
        if t.startswith(f"{ROOT}/gateway/"):  # gateways' own status (ours included): not edge data
            self._ack(msg)
            if t == self.probe_topic:
                try:
                    probe = parse_payload(Probe, payload)
                except ContractError as e:
                    self._malformed(msg, _reason(e), str(e))
                    return
                self._count(1)
                self._q.put(_Item("probe", "", "", probe, self.clock.now()))
            return
        try:
            parts = parse_topic(t)
            if parts.leaf not in LEAF_MODELS:
                raise ContractError(f"not an edge-to-gateway topic: {t!r}")
        except ContractError as e:
            self._malformed(msg, "topic", str(e))
            return
        try:
            model = parse_payload(LEAF_MODELS[parts.leaf], payload)
        except ContractError as e:
            self._malformed(msg, _reason(e), str(e))
            return
        self.metrics.messages.inc(leaf=parts.leaf)
        now, mono = self.clock.now(), time.monotonic()
        if parts.leaf == "event":
            item = _Item("event", parts.center, parts.node, model, now,
                         (msg.mid, msg.qos, self._gen) if msg.qos else None, mono)
        else:
            item = _Item(parts.leaf, parts.center, parts.node, model, now, mono=mono)
            self._ack(msg)
        self._count(1)
        self._q.put(item)

    # ------------------------------------------------------------------------------------- writer thread
    def _run_writer(self) -> None:
        mono = self.clock.monotonic
        next_hb = next_gap = mono()
        next_silence = time.monotonic()  # real time, like the edges' beats
        next_save = mono() + self.save_interval_s
        next_prune = mono() + 60.0
        while True:
            items = self._take()
            if items:
                self._process_safely(items)
            elif self._stopping.is_set():
                break
            try:
                now_m = mono()
                if now_m >= next_hb:
                    next_hb = now_m + self.heartbeat_check_s
                    self._heartbeats()
                if time.monotonic() >= next_silence:
                    next_silence = time.monotonic() + self.silence_check_s
                    self._watch_silence()
                if now_m >= next_gap:
                    next_gap = now_m + 0.5
                    self._watch_gaps()
                if now_m >= next_save or self._births_unsaved:
                    # a birth brings names (center, services, counters, clerks) that `civiq gateway report`
                    # reads from the saved state: saved at once, not up to save_interval_s later
                    next_save = now_m + self.save_interval_s
                    self._births_unsaved = False
                    self._save_state()
                if now_m >= next_prune:
                    next_prune = now_m + self.prune_interval_s
                    n = self.store.prune(self.clock.now())
                    if n:
                        log.info("pruned %d rows older than %d days", n, self.store.retention_days)
            except Exception:  # noqa: BLE001 - periodic jobs must not kill the writer
                log.exception("periodic job failed")
            self.ticks += 1

    def _take(self) -> list[_Item]:
        try:
            first = self._q.get(timeout=0.1)
        except queue.Empty:
            return []
        # gather for up to batch_window_s (real time: I/O pacing, not domain time): one commit costs
        # milliseconds, so committing a few dozen messages at once is what sustains thousands per second
        items = [first]
        deadline = time.monotonic() + self.batch_window_s
        while len(items) < self.batch_max:
            try:
                items.append(self._q.get_nowait())
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    items.append(self._q.get(timeout=left))
                except queue.Empty:
                    break
        return items

    def _process_safely(self, items: list[_Item]) -> None:
        for attempt in range(3):
            try:
                self._process(items)
                break
            except Exception:  # noqa: BLE001 - e.g. disk full: retry, then give up on this batch
                log.exception("committing %d messages failed (attempt %d)", len(items), attempt + 1)
                time.sleep(0.2 * (attempt + 1))
        else:
            self.metrics.malformed.inc(len(items), reason="store_error")
        with self._count_lock:
            self._processed += len(items)

    def _process(self, items: list[_Item]) -> None:
        t0 = time.perf_counter()
        applied: list[Applied] = []
        lines: list[str] = []
        acks: list[tuple[int, int, int]] = []
        st, store = self.state, self.store
        with store.batch():
            for it in items:
                try:
                    self._apply(it, st, store, applied, lines)
                except Exception as e:  # noqa: BLE001 - one odd message must not lose the batch
                    log.exception("applying %s from %s/%s failed", it.leaf, it.center, it.node)
                    self.metrics.malformed.inc(reason="internal")
                    self.recent_malformed.append(Malformed(f"{it.center}/{it.node}/{it.leaf}", "internal",
                                                           repr(e)[:300], it.received))
                if it.ack:
                    acks.append(it.ack)
        self.metrics.store_write.observe(time.perf_counter() - t0)
        self.metrics.batch_size.observe(len(items))
        for mid, qos, gen in acks:
            if gen == self._gen:  # after a reconnect the broker re-sends these itself
                try:
                    self.client.ack(mid, qos)
                except Exception:  # noqa: BLE001
                    pass
        if self.influx is not None and lines:
            try:
                self.influx.add(lines)
            except Exception:  # noqa: BLE001 - the export must never stop the ingest
                log.exception("spooling %d InfluxDB points failed", len(lines))
        self._notify(applied)
        if any(it.leaf in ("event", "queue") for it in items):
            self._watch_gaps()  # notice new gaps at once (rebirth timing still follows the clock)

    def _apply(self, it: _Item, st: LiveState, store: SeriesStore, applied: list[Applied],
               lines: list[str]) -> None:
        c, n, m, rcv = it.center, it.node, it.model, it.received
        export = self.influx is not None
        if it.leaf == "stale":
            st.mark_stale(bool(m), rcv)
            if not m:  # back on the broker: every node gets a full silence period from now
                t = time.monotonic()
                self._last_rx = dict.fromkeys(self._last_rx, t)
            applied.append(Applied("stale", "", "", bool(m), rcv))
            return
        if it.leaf == "probe":
            assert isinstance(m, Probe)
            self._horizon = m.sent if self._horizon is None else max(self._horizon, m.sent)
            return
        if it.mono:
            self._last_rx[(c, n)] = it.mono
        if it.leaf == "alive":
            assert isinstance(m, Alive)
            applied.append(Applied("alive", c, n, m, rcv, st.apply_alive(c, n, m.bdseq, rcv)))
            return
        if it.leaf == "event":
            assert isinstance(m, Event)
            new = store.add_event(c, n, m, rcv)
            if new:
                st.apply_event(c, n, m, rcv)
                if export:
                    lines += ix.event_lines(c, m, rcv)
            else:
                self.metrics.duplicates.inc()
                if store.is_conflict(c, n, m):
                    self.metrics.seq_conflicts.inc()
                    log.warning("%s/%s re-used seq %d with different content", c, n, m.seq)
            applied.append(Applied("event", c, n, m, rcv, new))
        elif it.leaf == "queue":
            assert isinstance(m, QueueSnapshot)
            new = st.apply_queue(c, n, m, rcv)
            if new:
                store.record_queue(c, n, m, rcv)
                if export:
                    lines += ix.queue_lines(c, m)
            applied.append(Applied("queue", c, n, m, rcv, new))
        elif it.leaf == "health":
            assert isinstance(m, Health)
            new = st.apply_health(c, n, m, rcv)
            if new:
                store.record_health(c, n, m, rcv)
                if export:
                    lines += ix.health_lines(c, n, m)
            applied.append(Applied("health", c, n, m, rcv, new))
        elif it.leaf == "status":
            assert isinstance(m, Status)
            new = st.apply_status(c, n, m, rcv)
            if new and m.online:
                self._births_unsaved = True
                if m.alive_s is None:
                    self._alive_s.pop((c, n), None)
                else:
                    self._alive_s[(c, n)] = m.alive_s
            if not new:
                log.info("ignored a stale death of %s/%s (bdseq %d)", c, n, m.bdseq)
            elif export:
                lines += ix.status_lines(c, n, m, rcv)
            applied.append(Applied("status", c, n, m, rcv, new))
        elif it.leaf == "cmd_result":
            assert isinstance(m, CmdResult)
            if not m.ok:
                log.warning("%s/%s: command %s (%s) failed: %s", c, n, m.cmd, m.id, m.error)
            st.apply_cmd_result(c, n, m, rcv)
            applied.append(Applied("cmd_result", c, n, m, rcv))

    def _notify(self, applied: list[Applied]) -> None:
        if self.on_change is None:
            return
        for a in applied:
            try:
                self.on_change(a)
            except Exception:  # noqa: BLE001
                log.exception("on_change callback failed")

    # ------------------------------------------------------------------------------------- periodic jobs
    def _heartbeats(self) -> None:
        now = self.clock.now()
        gone = self.state.check_heartbeats(now, self.settings.heartbeat_timeout_s)
        if not gone:
            return
        if self.influx is not None:
            self.influx.add([ix.node_line(c, n, False, now) for c, n in gone])
        self._notify([Applied("heartbeat", c, n, None, now) for c, n in gone])

    def _watch_silence(self) -> None:
        """Send the next probe; declare offline the nodes silent past their promise, up to the horizon."""
        if self.connected.is_set():
            self.client.publish(self.probe_topic, Probe(sent=time.monotonic()).to_json(), qos=1)
        horizon = self._horizon
        if horizon is None or self.state.stale:
            return
        now = self.clock.now()
        gone: list[tuple[str, str, float]] = []
        for key, alive_s in self._alive_s.items():
            last = self._last_rx.get(key)
            if last is None:
                continue
            silent = horizon - last
            if silent > silence_timeout(alive_s) and self.state.mark_silent(*key, now):
                log.warning("%s/%s silent for %.1f s (promised a message every %.1f s): offline", *key,
                            silent, alive_s)
                gone.append((*key, silent))
        if not gone:
            return
        if self.influx is not None:
            self.influx.add([ix.node_line(c, n, False, now) for c, n, _ in gone])
        self._notify([Applied("heartbeat", c, n, round(s, 1), now) for c, n, s in gone])

    def _watch_gaps(self) -> None:
        """Rebirth nodes whose gap has not filled within ``gap_grace_s`` (rate-limited, bounded)."""
        now = self.clock.monotonic()
        gaps = self.store.gaps()
        for key in [k for k in self._gaps if k not in gaps]:
            del self._gaps[key]
        sent = 0
        for key, sq in gaps.items():
            w = self._gaps.get(key)
            if w is None:
                self._gaps[key] = _GapWatch(since=now, contiguous=sq.contiguous)
                self.metrics.gaps.inc()
                log.info("gap in %s/%s: have 1..%d, know of %d", *key, sq.contiguous, sq.max_seq)
                continue
            if sq.contiguous > w.contiguous:  # progress: the replay is filling it
                w.contiguous, w.rebirths = sq.contiguous, 0
            if now - w.since < self.gap_grace_s or now - w.last_rebirth < self.rebirth_interval_s:
                continue
            if w.rebirths >= self.max_rebirths:
                lost = self.store.missing_seqs(*key)
                log.error("%s/%s: events %s never arrived after %d rebirths; recorded as lost",
                          *key, lost[:20], w.rebirths)
                self.store.skip_gap(*key)
                del self._gaps[key]
                continue
            if sent >= 20 or not self.connected.is_set():  # no storms after a restart
                continue
            try:
                # from_seq: the edge re-sends its log from the first missing event (its outbox may have
                # forgotten them: a broker acknowledged them and then lost them)
                self.send_command(key[0], key[1], "rebirth", RebirthCmd(id=self.new_command_id("rebirth"),
                                                                        from_seq=sq.contiguous + 1))
            except ContractError:
                continue
            w.rebirths += 1
            w.last_rebirth = now
            self.metrics.rebirths.inc()
            sent += 1

    def _save_state(self) -> None:
        try:
            self.store.save_state(self.state.to_json())
        except Exception:  # noqa: BLE001
            log.exception("saving the live state failed")
