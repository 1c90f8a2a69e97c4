"""MQTT ingest: validate what the edges send, de-duplicate events, keep the live state and the series.

One job per thread and per class (docs/timeseries.md, "Ingest"):

* :class:`~civiq.gateway.ingest.link.MqttLink` (paho's network thread): the session, the subscriptions,
  validation of every payload (:mod:`civiq.gateway.ingest.decode`: msgspec structs checked against the
  contract's pydantic models), manual acks, commands, probes. Malformed messages are counted by reason
  (``civiq_gw_malformed_total{reason}``: too_large, topic, utf8, json, schema, internal) and dropped.
* :class:`~civiq.gateway.ingest.writer.Writer` (``gw-writer``): takes the valid messages in batches of up to
  ``batch_max`` (1000) or ``batch_window_s`` (50 ms) and hands each batch to its sinks: series store and live
  state in **one SQLite transaction**, then (after the commit and the acks) the InfluxDB spool, the
  availability verdicts and the change hooks (``on_change``). It also saves the state and prunes.
* :class:`~civiq.gateway.ingest.availability.AvailabilityWatch` (``gw-availability``): heartbeats, silence,
  gaps -> ``rebirth``, and the retained ``availability`` verdict per node.

Delivery: the client uses a persistent MQTT v5 session (``clean_start=False``, session expiry from the
settings) and **acknowledges events only after they are committed** (paho ``manual_ack``), so events
published while the gateway restarts wait in the broker, and a crash between receive and commit makes the
broker send them again (the store drops the repeats).

Scale-out (docs/scale.md): several gateway workers split the centers between them **by subscription**
(``shard`` in the settings: a list of centers per worker, or a hash of the center id over the province's
centers). Each worker subscribes only to its own centers' topics, so every message is read once, one node's
messages stay in order on one worker (no false gaps) and each alert is raised by one worker.
With ``mqtt.shared_group`` instead (MQTT v5 shared subscriptions, kept for brokers that hash by topic, e.g.
EMQX ``shared_subscription_strategy = hash_topic``): ``event`` and ``cmd_result`` use ``$share/<group>/...``;
``status``, ``queue`` and ``health`` stay plain subscriptions read by every worker (retained messages are
never sent to shared subscriptions, the live view needs the whole state, health is the heartbeat).

>>> ingest = Ingest(settings, state, store, influx, clock=SystemClock())       # doctest: +SKIP
>>> ingest.start(); ...; ingest.send_command("hcm-q1", "pi-1", "display",     # doctest: +SKIP
...     DisplayCmd(id="d1", text="Tạm nghỉ"))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from civiq.clock import Clock
from civiq.contract import Command
from civiq.gateway.ingest.availability import AvailabilityWatch
from civiq.gateway.ingest.items import Applied, Item, Malformed
from civiq.gateway.ingest.link import PLAIN_LEAVES, SHARED_LEAVES, MqttLink
from civiq.gateway.ingest.writer import (
    Batch,
    HooksSink,
    InfluxSink,
    SeriesEvents,
    SeriesMinutes,
    Sink,
    StateSink,
    Writer,
)
from civiq.gateway.metrics import GatewayMetrics
from civiq.gateway.settings import GatewaySettings
from civiq.gateway.state import LiveState
from civiq.gateway.store import influx as ix
from civiq.gateway.store.series import SeriesStore

__all__ = ["PLAIN_LEAVES", "SHARED_LEAVES", "Applied", "AvailabilityWatch", "Batch", "Ingest", "Item",
           "Malformed", "MqttLink", "Sink", "Writer", "load_live_state"]

log = logging.getLogger("civiq.gateway.ingest")


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
    """The gateway's MQTT side: a link, a writer with its sinks and an availability watch, wired together.

    Thread-safe public methods: ``send_command``, ``stats``, ``wait_idle``. ``sinks`` may be extended
    before ``start()`` (e.g. an aggregate the advisor reads): a sink with ``stage = "tx"`` sees each batch
    inside the store transaction, one with ``stage = "after"`` after the commit."""

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
        centers: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.state = state
        self.store = store
        self.influx = influx
        self.clock = clock
        self.on_change = on_change
        self.metrics = m = metrics or GatewayMetrics()
        if centers is None:
            centers = settings.shard.owned()
        self.writer = Writer(store, [], m, batch_max=batch_max, batch_window_s=batch_window_s,
                             on_batch=self._after_batch)
        self.link = MqttLink(settings, clock, m, self.writer.put, centers=centers)
        self.recent_malformed = self.link.recent_malformed
        self.watch = AvailabilityWatch(state, store, self.link, self.writer.put, clock, m,
                                       heartbeat_timeout_s=settings.heartbeat_timeout_s, gap_grace_s=gap_grace_s,
                                       rebirth_interval_s=rebirth_interval_s, max_rebirths=max_rebirths,
                                       heartbeat_check_s=heartbeat_check_s, silence_check_s=silence_check_s)
        sinks: list[Any] = [SeriesEvents(store, m), StateSink(state, self.watch, m, self.recent_malformed),
                            SeriesMinutes(store)]
        if influx is not None:
            sinks.append(InfluxSink(influx))
        sinks += [self.watch, HooksSink(lambda: self.on_change)]
        self.writer.sinks = self.sinks = sinks
        self.writer.ack = self.link.ack
        self.save_interval_s = save_interval_s
        self.prune_interval_s = prune_interval_s
        self.writer.every(save_interval_s, self._save_state)
        self.writer.every(prune_interval_s, self._prune, first_in=60.0)
        self.client = self.link.client
        self.client_id = self.link.client_id
        self.v5 = self.link.v5
        self.probe_topic = self.link.probe_topic
        self.connected = self.link.connected
        self.ready = self.link.ready
        self._running = False

        m.queue_depth.set_function(lambda: float(self.writer.q.qsize()))
        m.nodes.set_function(lambda: {(k,): float(v) for k, v in self.state.node_counts().items()})
        m.ingest_lag.set_function(lambda: float("nan") if self.watch.horizon is None
                                  else max(0.0, time.monotonic() - self.watch.horizon))
        if influx is not None:
            m.influx_pending.set_function(lambda: float(influx.pending()))
            m.influx_sent.set_function(lambda: float(influx.sent))
            m.influx_failed.set_function(lambda: float(influx.failed_attempts))

    # ------------------------------------------------------------------------------------- lifecycle
    def subscriptions(self) -> list[str]:
        """The topic filters this gateway subscribes to (see :meth:`MqttLink.subscriptions`)."""
        return self.link.subscriptions()

    def start(self) -> Ingest:
        """Start the writer and the availability watch, and connect (in the background; reconnects forever)."""
        self.state.mark_stale(True)
        self.writer.start()
        self.watch.start()
        self.link.start()
        self._running = True
        return self

    @property
    def running(self) -> bool:
        return self._running

    def stop(self, timeout: float = 5.0) -> None:
        """Publish our offline status, disconnect, commit what is queued and save the live state.

        The store and the Influx export belong to the caller: close/stop them after this."""
        self.link.say_offline()
        self.watch.stop()
        self.writer.stop(timeout)
        self.link.stop()
        self._running = False
        self._save_state()

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait until connected and subscribed."""
        return self.ready.wait(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until everything received so far has been committed (tests, orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.writer.pending() <= 0:
                return True
            time.sleep(0.005)
        return False

    @property
    def ticks(self) -> int:
        """Passes of the availability watch (lets tests wait for "a check has run")."""
        return self.watch.ticks

    @property
    def stats(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "connected": self.connected.is_set(),
            "queued": self.writer.q.qsize(),
            "processed": self.writer.processed,
            "malformed": m.malformed.total(),
            "duplicates": m.duplicates.total(),
            "gaps": m.gaps.total(),
            "rebirths_sent": m.rebirths.total(),
            "open_gaps": len(self.watch.gaps),
        }

    # ------------------------------------------------------------------------------------- commands
    def send_command(self, center: str, node: str, name: str, cmd: Command, retain: bool = False,
                     qos: int = 1) -> mqtt.MQTTMessageInfo:
        """Publish ``cmd`` on ``civiq/v1/<center>/<node>/cmd/<name>`` (see :meth:`MqttLink.send_command`)."""
        return self.link.send_command(center, node, name, cmd, retain=retain, qos=qos)

    def new_command_id(self, prefix: str = "gw") -> str:
        return self.link.new_command_id(prefix)

    # ------------------------------------------------------------------------------------- housekeeping
    def _after_batch(self, batch: Batch) -> None:
        # a birth brings names (center, services, counters, clerks) that `civiq gateway report` reads from
        # the saved state: saved at once, not up to save_interval_s later
        if batch.births:
            self._save_state()

    def _prune(self) -> None:
        n = self.store.prune(self.clock.now())
        if n:
            log.info("pruned %d rows older than %d days", n, self.store.retention_days)

    def _save_state(self) -> None:
        try:
            self.store.save_state(self.state.to_json())
        except Exception:  # noqa: BLE001
            log.exception("saving the live state failed")
