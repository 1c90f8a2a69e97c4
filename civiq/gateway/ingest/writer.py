"""The ingest's writer: one thread that takes the link's messages in batches and hands each batch to sinks.

A batch is everything queued until a 2 ms quiet gap, within ``batch_window_s`` (50 ms), at most ``batch_max`` (1000) messages. It
goes through the sinks in order:

* **inside one SQLite transaction** (``stage = "tx"``): :class:`SeriesEvents` stores events with
  ``INSERT OR IGNORE`` (the de-duplication: it decides ``item.new``), :class:`StateSink` applies every
  message to the :class:`~civiq.gateway.state.LiveState` (deciding ``new`` for status, queue, health,
  alive) and the availability watch's verdicts, and lists what it applied as
  :class:`~civiq.gateway.ingest.items.Applied`; :class:`SeriesMinutes` writes the minute series of the new
  queue snapshots and health reports of the whole batch with one ``executemany``;
* then the link acknowledges the committed events to the broker;
* **after the commit** (``stage = "after"``): :class:`InfluxSink` spools the InfluxDB lines of the batch (one
  spool transaction), the availability watch publishes changed online/offline verdicts, and
  :class:`HooksSink` calls ``on_change`` once per applied message (the alert engine, the ticket book).

A sink is any object with ``stage`` ("tx" or "after") and ``apply(batch)``; one that raises loses nothing
else: the writer logs it and goes on with the next sink (a "tx" sink that raises rolls the transaction back
and the batch is retried, as any store error is).

>>> w = Writer(store, [SeriesEvents(store, metrics), StateSink(state, watch, metrics), HooksSink(print)],
...            metrics, ack=link.ack)                                                   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import operator
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from civiq.gateway.ingest.items import Applied, Batch, Item, Malformed
from civiq.gateway.metrics import GatewayMetrics
from civiq.gateway.state import LiveState
from civiq.gateway.store import influx as ix
from civiq.gateway.store.series import SeriesStore, event_time

if TYPE_CHECKING:
    from civiq.gateway.ingest.availability import AvailabilityWatch

log = logging.getLogger("civiq.gateway.ingest")


_SERIES_KEY = operator.itemgetter(0, 1, 2, 3, 4)  # (metric, center, key, node, ts_minute) of a minute row


class Sink(Protocol):
    stage: str  # "tx": inside the store transaction; "after": after the commit and the acks

    def apply(self, batch: Batch) -> None: ...


class SeriesEvents:
    """Events into the series store; a repeat (same center, node, seq) is not new."""

    stage = "tx"

    def __init__(self, store: SeriesStore, metrics: GatewayMetrics) -> None:
        self.store, self.metrics = store, metrics

    def apply(self, batch: Batch) -> None:
        store = self.store
        events = [it for it in batch.items if it.leaf == "event"]
        if not events:
            return
        new = store.add_event_batch([(it.center, it.node, it.model, it.received) for it in events])
        for it, is_new in zip(events, new, strict=True):
            it.new = is_new
            c, n, m = it.center, it.node, it.model
            if not is_new:
                self.metrics.duplicates.inc()
                if store.is_conflict(c, n, m):
                    self.metrics.seq_conflicts.inc()
                    log.warning("%s/%s re-used seq %d with different content", c, n, m.seq)


class StateSink:
    """Every message into the live state, in arrival order, with the availability watch's bookkeeping
    (arrival times, the probe horizon, births' promises) and verdicts (``silent``, ``tick``)."""

    stage = "tx"

    def __init__(self, state: LiveState, watch: AvailabilityWatch, metrics: GatewayMetrics,
                 recent_malformed: Any = None) -> None:
        self.state, self.watch, self.metrics = state, watch, metrics
        self.recent_malformed = recent_malformed

    def apply(self, batch: Batch) -> None:
        out = batch.applied
        for it in batch.items:
            try:
                self._apply(it, out, batch)
            except Exception as e:  # noqa: BLE001 - one odd message must not lose the batch
                log.exception("applying %s from %s/%s failed", it.leaf, it.center, it.node)
                self.metrics.malformed.inc(reason="internal")
                if self.recent_malformed is not None:
                    self.recent_malformed.append(Malformed(f"{it.center}/{it.node}/{it.leaf}", "internal",
                                                           repr(e)[:300], it.received))

    def _apply(self, it: Item, out: list[Applied], batch: Batch) -> None:
        st, c, n, m, rcv, leaf = self.state, it.center, it.node, it.model, it.received, it.leaf
        if leaf == "event":
            self.watch.heard(it)
            if it.new:
                st.apply_event(c, n, m, rcv)
            out.append(Applied("event", c, n, m, rcv, it.new))
        elif leaf == "queue":
            self.watch.heard(it)
            it.new = st.apply_queue(c, n, m, rcv)
            out.append(Applied("queue", c, n, m, rcv, it.new))
        elif leaf == "health":
            self.watch.heard(it)
            it.new = st.apply_health(c, n, m, rcv)
            out.append(Applied("health", c, n, m, rcv, it.new))
        elif leaf == "alive":
            self.watch.heard(it)
            it.new = st.apply_alive(c, n, m.bdseq, rcv)
            out.append(Applied("alive", c, n, m, rcv, it.new))
        elif leaf == "status":
            self.watch.heard(it)
            it.new = st.apply_status(c, n, m, rcv)
            if it.new and m.online:
                batch.births = True
                self.watch.born(c, n, m.alive_s)
            if not it.new:
                log.info("ignored a stale death of %s/%s (bdseq %d)", c, n, m.bdseq)
            out.append(Applied("status", c, n, m, rcv, it.new))
        elif leaf == "cmd_result":
            self.watch.heard(it)
            if not m.ok:
                log.warning("%s/%s: command %s (%s) failed: %s", c, n, m.cmd, m.id, m.error)
            st.apply_cmd_result(c, n, m, rcv)
            out.append(Applied("cmd_result", c, n, m, rcv))
        elif leaf == "probe":
            self.watch.probed(m.sent)
        elif leaf == "stale":
            st.mark_stale(bool(m), rcv)
            if not m:
                self.watch.reconnected()
            out.append(Applied("stale", "", "", bool(m), rcv))
        elif leaf == "silent":  # the watch found (c, n) silent; still so now that we are here?
            seconds = self.watch.confirm_silent(it)
            if seconds is not None and st.mark_silent(c, n, rcv):
                log.warning("%s/%s silent for %.1f s (promised a message every %.1f s): offline", c, n,
                            seconds, self.watch.promise(c, n) or 0)
                out.append(Applied("heartbeat", c, n, round(seconds, 1), rcv))
        elif leaf == "tick":  # the watch's heartbeat check, run here in order with the data
            for gc, gn in st.check_heartbeats(rcv, self.watch.heartbeat_timeout_s):
                out.append(Applied("heartbeat", gc, gn, None, rcv))
            self.watch.ticked()


class SeriesMinutes:
    """The minute series of new queue snapshots and health reports, and the snapshots' ``last_seq`` (a gap
    at the tail).

    One value per series per minute, the last one wins: so under a flood the rows are held and merged for up
    to ``hold_s`` (5 s) and written with one ``executemany``, instead of every snapshot's ~25 rows each
    batch (a province's centers send a snapshot a second each at their peak). A small batch (no backlog)
    writes at once. A crash loses at most the last ``hold_s`` of minute values, never an event: those are
    written in the batch's transaction, and the snapshots stay retained on the broker."""

    stage = "tx"

    def __init__(self, store: SeriesStore, hold_s: float = 5.0, small: int = 8) -> None:
        self.store, self.hold_s, self.small = store, hold_s, small
        self.pending: dict[tuple[str, str, str, str, int], tuple[str, str, str, str, int, float]] = {}
        self._since = time.monotonic()

    def apply(self, batch: Batch) -> None:
        store, update = self.store, self.pending.update
        queue_rows, health_rows, key = store.queue_rows, store.health_rows, _SERIES_KEY
        for it in batch.items:
            if not it.new:
                continue
            leaf = it.leaf
            if leaf == "queue":
                m = it.model
                rows = queue_rows(it.center, m, event_time(m.ts, it.received))
                update(zip(map(key, rows), rows, strict=True))  # the last value of a series and minute wins (C loop)
                if m.last_seq:
                    store.note_last_seq(it.center, it.node, m.last_seq)
            elif leaf == "health":
                m = it.model
                rows = health_rows(it.center, it.node, m, event_time(m.ts, it.received))
                update(zip(map(key, rows), rows, strict=True))
        pending = self.pending
        if pending and (len(batch.items) < self.small or time.monotonic() - self._since >= self.hold_s
                        or len(pending) > 100_000):
            self.flush()

    def flush(self) -> None:
        """Write the held rows (inside the caller's transaction, if any)."""
        if self.pending:
            self.store.put_minute_rows(self.pending.values(), distinct=True)
            self.pending.clear()
        self._since = time.monotonic()


class InfluxSink:
    """The batch's InfluxDB lines into the export spool (one transaction); never stops the ingest."""

    stage = "after"

    def __init__(self, influx: ix.InfluxExport) -> None:
        self.influx = influx

    def apply(self, batch: Batch) -> None:
        lines: list[str] = []
        for a in batch.applied:
            if not a.new:
                continue
            leaf = a.leaf
            if leaf == "event":
                lines += ix.event_lines(a.center, a.model, a.received)
            elif leaf == "queue":
                lines += ix.queue_lines(a.center, a.model)
            elif leaf == "health":
                lines += ix.health_lines(a.center, a.node, a.model)
            elif leaf == "status":
                lines += ix.status_lines(a.center, a.node, a.model, a.received)
            elif leaf == "heartbeat":
                lines.append(ix.node_line(a.center, a.node, False, a.received))
        if lines:
            try:
                self.influx.add(lines)
            except Exception:  # noqa: BLE001 - the export must never stop the ingest
                log.exception("spooling %d InfluxDB points failed", len(lines))


class HooksSink:
    """``on_change(applied)`` for each applied message, after the commit. ``hook`` is called to get the
    current callback (it may be replaced while running)."""

    stage = "after"

    def __init__(self, hook: Callable[[], Callable[[Applied], None] | None]) -> None:
        self.hook = hook

    def apply(self, batch: Batch) -> None:
        fn = self.hook()
        if fn is None:
            return
        for a in batch.applied:
            try:
                fn(a)
            except Exception:  # noqa: BLE001
                log.exception("on_change callback failed")


class Writer:
    """The writer thread: batches from the queue through the sinks; housekeeping between batches."""

    def __init__(self, store: SeriesStore, sinks: list[Sink], metrics: GatewayMetrics, *,
                 ack: Callable[[list[tuple[int, int, int]]], None] | None = None,
                 batch_max: int = 1000, batch_window_s: float = 0.05, quiet_s: float = 0.002,
                 on_batch: Callable[[Batch], None] | None = None) -> None:
        self.store = store
        self.sinks = sinks
        self.metrics = metrics
        self.ack = ack
        self.batch_max = batch_max
        self.batch_window_s = batch_window_s
        self.quiet_s = quiet_s
        self.on_batch = on_batch  # after every batch, on this thread (e.g. saving the state after a birth)
        self.jobs: list[list[Any]] = []  # [interval_s, next_due, fn] run between batches (monotonic clock)
        self.q: queue.SimpleQueue[Item] = queue.SimpleQueue()  # (C: a put costs 0.1 µs, Queue's 3 µs)
        self._enqueued = 0
        self._processed = 0
        self._count_lock = threading.Lock()
        self._stopping = threading.Event()
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------- producer side
    def put(self, item: Item) -> None:
        """Queue an item (any thread)."""
        with self._count_lock:
            self._enqueued += 1
        self.q.put(item)

    def pending(self) -> int:
        with self._count_lock:
            return self._enqueued - self._processed

    @property
    def processed(self) -> int:
        return self._processed

    def every(self, interval_s: float, fn: Callable[[], None], first_in: float | None = None) -> None:
        """Run ``fn`` on the writer thread every ``interval_s`` (between batches)."""
        self.jobs.append([interval_s, time.monotonic() + (interval_s if first_in is None else first_in), fn])

    # ------------------------------------------------------------------------------------- thread
    def start(self) -> None:
        self._stopping.clear()
        self.thread = threading.Thread(target=self._run, name="gw-writer", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Commit what is queued and what the sinks hold, then stop."""
        self._stopping.set()
        if self.thread:
            self.thread.join(timeout)
            self.thread = None
        held = [s for s in self.sinks if hasattr(s, "flush")]
        if held:
            try:
                with self.store.batch():
                    for s in held:
                        s.flush()
            except Exception:  # noqa: BLE001
                log.exception("writing the held minute values failed")

    def _run(self) -> None:
        while True:
            items = self._take()
            if items:
                self.process(items)
            elif self._stopping.is_set():
                break
            now = time.monotonic()
            for job in self.jobs:
                if now >= job[1]:
                    job[1] = now + job[0]
                    try:
                        job[2]()
                    except Exception:  # noqa: BLE001 - housekeeping must not kill the writer
                        log.exception("writer job failed")

    def _take(self) -> list[Item]:
        """The next batch: everything queued, then more until the window closes, ``batch_max`` is reached or
        nothing came for ``quiet_s`` (2 ms). The quiet gap matters: the broker sends a client at most its
        in-flight window of unacknowledged QoS1 messages (Mosquitto's ``max_inflight_messages``, 100 in
        firmware-config/mosquitto/*.conf) and events are acknowledged only after the commit, so when the
        window is full nothing more comes until we commit; waiting out the whole window then would cap the
        ingest at a window per ``batch_window_s``."""
        try:
            first = self.q.get(timeout=0.1)
        except queue.Empty:
            return []
        items = [first]
        get, get_nowait = self.q.get, self.q.get_nowait
        deadline = time.monotonic() + self.batch_window_s
        while len(items) < self.batch_max:
            try:
                items.append(get_nowait())
                continue
            except queue.Empty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                items.append(get(timeout=min(left, self.quiet_s)))
            except queue.Empty:
                break
        return items

    def process(self, items: list[Item]) -> Batch:
        """Run one batch through the sinks (the transaction retried up to 3 times)."""
        batch = Batch(items)
        t0 = time.perf_counter()
        counts: dict[str, int] = {}
        for it in items:  # messages from nodes (control items have no arrival time), counted per batch here
            if it.mono:  # rather than one locked increment per message on paho's thread
                counts[it.leaf] = counts.get(it.leaf, 0) + 1
        for leaf, n in counts.items():
            self.metrics.messages.inc(n, leaf=leaf)
        tx = [s for s in self.sinks if s.stage == "tx"]
        ok = False
        for attempt in range(3):
            batch = Batch(items)
            for it in items:
                it.new = True
            try:
                with self.store.batch():
                    for s in tx:
                        s.apply(batch)
                ok = True
                break
            except Exception:  # noqa: BLE001 - e.g. disk full: retry, then give up on this batch
                log.exception("committing %d messages failed (attempt %d)", len(items), attempt + 1)
                time.sleep(0.2 * (attempt + 1))
        else:
            self.metrics.malformed.inc(len(items), reason="store_error")
            batch = Batch([])
        self.metrics.store_write.observe(time.perf_counter() - t0)
        self.metrics.batch_size.observe(len(items))
        if ok and self.ack is not None:
            acks = [it.ack for it in items if it.ack]
            if acks:
                self.ack(acks)
        for s in self.sinks:
            if s.stage != "tx":
                try:
                    s.apply(batch)
                except Exception:  # noqa: BLE001
                    log.exception("sink %s failed", type(s).__name__)
        if self.on_batch is not None:
            try:
                self.on_batch(batch)
            except Exception:  # noqa: BLE001
                log.exception("after-batch hook failed")
        with self._count_lock:
            self._processed += len(items)
        return batch
