"""The availability watch: is each node there? Heartbeats, silence, gaps -> rebirth, and the retained verdict.

It has a thread of its own (``gw-availability``) that only *times* things; every change to the live state
happens on the writer thread, in order with the data (a verdict reached here is queued to the writer as a
control item and checked again there, so a node that spoke meanwhile is never declared gone):

* **Silence** (offline in 1.5 x keepalive + 0.5 s, not whenever the broker sends the will): an edge's birth
  promises ``alive_s``, the longest it stays silent while connected. Every message's arrival is stamped on
  paho's thread with the real monotonic clock; a node silent for ``silence_timeout(alive_s)`` is offline
  (reason ``silent``). So that the gateway's own lag never passes for the node's silence, silence is
  measured up to a *horizon*, not up to "now": every ``silence_check_s`` the gateway publishes a ``Probe``
  to itself, and the horizon is the send time of the newest probe the writer has applied. A backlog in the
  broker, in paho's socket or in the writer's queue holds the horizon back with everything else.
* **Heartbeats**: every ``heartbeat_check_s`` a ``tick`` goes to the writer, which marks offline the nodes
  not heard for ``heartbeat_timeout_s`` (the fallback for edges that make no ``alive_s`` promise).
* **Gaps**: a node's seq jumps (seen by the series store); a gap that does not fill within ``gap_grace_s``
  gets a ``rebirth`` command (``from_seq`` = the first missing), at most once per ``rebirth_interval_s``;
  after ``max_rebirths`` unanswered rebirths the gap is recorded as lost and no longer chased.
* **The verdict** (after each commit, on the writer thread): when a node's online/offline status changes,
  the gateway publishes it retained on ``civiq/v1/<center>/<node>/availability`` (``Availability``:
  ``{"state": "online", "reason": "birth", "ts": ...}``), the availability topic Home Assistant and
  Zigbee2MQTT users expect (docs/mqtt.md).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from civiq.clock import Clock
from civiq.contract import Availability, ContractError, RebirthCmd, availability_topic, silence_timeout
from civiq.gateway.ingest.items import Batch, Item
from civiq.gateway.metrics import GatewayMetrics
from civiq.gateway.state import LiveState
from civiq.gateway.store.series import SeriesStore

if TYPE_CHECKING:
    from civiq.gateway.ingest.link import MqttLink

log = logging.getLogger("civiq.gateway.ingest")


@dataclass
class _GapWatch:
    since: float
    rebirths: int = 0
    last_rebirth: float = field(default=float("-inf"))
    contiguous: int = 0


class AvailabilityWatch:
    """See the module docstring. ``put`` queues a control item to the writer."""

    stage = "after"  # as a writer sink: publishes the changed verdicts of a committed batch

    def __init__(self, state: LiveState, store: SeriesStore, link: MqttLink, put, clock: Clock,  # noqa: ANN001
                 metrics: GatewayMetrics, *, heartbeat_timeout_s: float, gap_grace_s: float = 5.0,
                 rebirth_interval_s: float = 60.0, max_rebirths: int = 5, heartbeat_check_s: float = 1.0,
                 silence_check_s: float = 0.25, publish: bool = True) -> None:
        self.state, self.store, self.link, self.put, self.clock = state, store, link, put, clock
        self.metrics = metrics
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.gap_grace_s = gap_grace_s
        self.rebirth_interval_s = rebirth_interval_s
        self.max_rebirths = max_rebirths
        self.heartbeat_check_s = heartbeat_check_s
        self.silence_check_s = silence_check_s
        self.publish_verdicts = publish
        self.ticks = 0  # passes of this thread (lets tests wait for "a check has run")
        self.gaps: dict[tuple[str, str], _GapWatch] = {}
        self._lock = threading.Lock()
        # real monotonic seconds: arrival of each node's last message, its birth's alive_s, and the horizon
        self.last_rx: dict[tuple[str, str], float] = {}
        self.alive_s: dict[tuple[str, str], float] = {}
        self.horizon: float | None = None
        self._declared: set[tuple[str, str]] = set()  # silent verdicts sent, until the node is heard again
        self._tick_pending = False
        self._published: dict[tuple[str, str], str] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------- writer thread
    def heard(self, it: Item) -> None:
        if it.mono:
            key = (it.center, it.node)
            with self._lock:
                self.last_rx[key] = it.mono
                self._declared.discard(key)

    def born(self, center: str, node: str, alive_s: float | None) -> None:
        with self._lock:
            if alive_s is None:
                self.alive_s.pop((center, node), None)
            else:
                self.alive_s[(center, node)] = alive_s

    def promise(self, center: str, node: str) -> float | None:
        return self.alive_s.get((center, node))

    def probed(self, sent: float) -> None:
        with self._lock:
            self.horizon = sent if self.horizon is None else max(self.horizon, sent)

    def reconnected(self) -> None:
        """Back on the broker: every node gets a full silence period from now."""
        with self._lock:
            self.last_rx = dict.fromkeys(self.last_rx, time.monotonic())

    def confirm_silent(self, it: Item) -> float | None:
        """The seconds of silence of a ``silent`` verdict, or None if the node spoke since it was reached."""
        with self._lock:
            if self.last_rx.get((it.center, it.node)) != it.mono:
                return None
        return float(it.model)

    def ticked(self) -> None:
        self._tick_pending = False

    def wake(self) -> None:
        """Look at the gaps now (new events or snapshots were committed)."""
        self._wake.set()

    def apply(self, batch: Batch) -> None:
        """Publish the verdicts this batch changed (retained, QoS1)."""
        if any(it.leaf in ("event", "queue") for it in batch.items):
            self.wake()
        if not self.publish_verdicts:
            return
        for a in batch.applied:
            key = (a.center, a.node)
            if not a.center:
                continue
            if a.leaf == "status" and a.new:
                verdict, reason = ("online", "birth") if a.model.online else \
                    ("offline", "clean" if a.model.clean else "will")
            elif a.leaf == "heartbeat":
                verdict, reason = "offline", "heartbeat" if a.model is None else "silent"
            elif self._published.get(key) in ("online", "unknown") or a.leaf == "stale":
                continue  # (unknown: no birth yet; only a status message changes that)
            else:  # traffic from a node we have no verdict on, or that we declared offline
                node = self.state.node(*key)
                if node is None or node["status"] not in ("online", "offline"):
                    self._published[key] = "unknown"
                    continue
                verdict, reason = node["status"], node.get("reason") or ""
            if self._published.get(key) == verdict:
                continue
            self._published[key] = verdict
            try:
                self.link.publish(availability_topic(*key),
                                  Availability(state=verdict, reason=reason, ts=a.received).to_json(), retain=True)
            except (ContractError, ValueError, RuntimeError):
                log.exception("publishing the availability of %s/%s failed", *key)

    # ------------------------------------------------------------------------------------- own thread
    def start(self) -> None:
        self._stop.clear()
        self.thread = threading.Thread(target=self._run, name="gw-availability", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self.thread:
            self.thread.join(5)
            self.thread = None

    def _run(self) -> None:
        mono = self.clock.monotonic
        next_hb = next_gap = mono()
        next_silence = time.monotonic()
        while not self._stop.is_set():
            woke = self._wake.wait(max(0.0, next_silence - time.monotonic()))
            if self._stop.is_set():
                break
            self._wake.clear()
            try:
                if time.monotonic() >= next_silence:
                    next_silence = time.monotonic() + self.silence_check_s
                    self.link.send_probe()
                    self.watch_silence()
                now_m = mono()
                if woke or now_m >= next_gap:
                    next_gap = now_m + 0.5
                    self.watch_gaps()
                if now_m >= next_hb and not self._tick_pending:
                    next_hb = now_m + self.heartbeat_check_s
                    self._tick_pending = True
                    self.put(Item("tick", "", "", None, self.clock.now()))
            except Exception:  # noqa: BLE001 - the watch must not die
                log.exception("availability watch")
            self.ticks += 1

    def watch_silence(self) -> None:
        """Queue a ``silent`` verdict for every node silent past its promise, up to the horizon."""
        with self._lock:
            horizon = self.horizon
            if horizon is None or self.state.stale:
                return
            found = []
            for key, alive_s in self.alive_s.items():
                last = self.last_rx.get(key)
                if last is None or key in self._declared:
                    continue
                silent = horizon - last
                if silent > silence_timeout(alive_s):
                    self._declared.add(key)
                    found.append((key, silent, last))
        now = self.clock.now()
        for (c, n), silent, last in found:
            self.put(Item("silent", c, n, silent, now, mono=last))

    def watch_gaps(self) -> None:
        """Rebirth nodes whose gap has not filled within ``gap_grace_s`` (rate-limited, bounded)."""
        now = self.clock.monotonic()
        gaps = self.store.gaps()
        for key in [k for k in self.gaps if k not in gaps]:
            del self.gaps[key]
        sent = 0
        for key, sq in gaps.items():
            w = self.gaps.get(key)
            if w is None:
                self.gaps[key] = _GapWatch(since=now, contiguous=sq.contiguous)
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
                del self.gaps[key]
                continue
            if sent >= 20 or not self.link.connected.is_set():  # no storms after a restart
                continue
            try:
                # from_seq: the edge re-sends its log from the first missing event (its outbox may have
                # forgotten them: a broker acknowledged them and then lost them)
                self.link.send_command(key[0], key[1], "rebirth",
                                       RebirthCmd(id=self.link.new_command_id("rebirth"), from_seq=sq.contiguous + 1))
            except ContractError:
                continue
            w.rebirths += 1
            w.last_rebirth = now
            self.metrics.rebirths.inc()
            sent += 1
