"""Gateway ingest throughput against the bare MQTT limits: ``python -m bench.ingest``.

Method (one run, side by side, on one fresh Mosquitto configured to drop nothing):

1. Every consumer first connects with a **persistent session** (MQTT v5, session expiry 1 h; mosquitto_sub
   with ``-c``), subscribes at QoS1 and disconnects: ``mosquitto_sub``; a bare paho subscriber; one gateway;
   two gateway workers sharded by center (``shard: {centers, workers: 2, index}``); four.
2. A publisher process floods contract payloads (``event``, ``queue``, ``health``, built with the pydantic
   models of :mod:`civiq.contract`, the mix a center sends at its peak) as ``--centers`` simulated centers
   would (one node each, per-node gap-free ``seq``), at QoS1, with at most 5,000 unacknowledged messages
   (paho's 65,535 limit, MEASURED.md). The broker queues a copy of the backlog for every session.
3. Each consumer in turn reconnects and **drains the same backlog** alone; its rate is messages / (time from
   its connect to the last message received *and committed*). So every consumer is measured at full speed,
   independent of the publisher, on the same messages.
4. The gateway is the real thing: :class:`civiq.gateway.ingest.Ingest` + ``LiveState`` + ``SeriesStore``
   (SQLite) + ``InfluxExport`` (disk spool, influxdb-client) to a real VictoriaMetrics started per config.
   Checks: ``$SYS/broker/publish/messages/dropped`` stays 0; the gateway's ``events`` rows (summed over
   workers) equal the events published; the Influx spool drains (pending 0, nothing rejected) and
   VictoriaMetrics holds one ``ticket_event_count`` sample per ticket event.

Workers split the centers by subscription (:class:`civiq.gateway.settings.ShardSettings`, a CRC-32 of the
center id): each subscribes only to its own centers' topics, so every message is read once, one node's
messages stay in order on one worker, and a gap or a duplicate (both counted and reported) would be real.

Sub-commands ``publish`` and ``worker`` are the child processes; ``run`` (default) orchestrates.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    SysWatch,
    VictoriaMetrics,
    broker,
    child_env,
    fmt,
    md_table,
    python_cmd,
)

LEAF_WEIGHTS = {"event": 0.5, "queue": 0.4, "health": 0.1}  # a center at its peak (docs/benchmarks.md)
LEAVES = tuple(LEAF_WEIGHTS)
MAX_UNACKED = 5_000
SESSION_EXPIRY_S = 3600


# ============================================================================================ traffic
def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def traffic_stream(centers: int, seed: int = 1, start: datetime | None = None,
                   step_ms: float = 1.0) -> Iterator[tuple[str, str, bytes]]:
    """Endless (leaf, topic, payload) as ``centers`` one-node centers send them at their peak.

    Payloads are the JSON of the contract models (events, queue snapshots with 4 services and 6 counters,
    health with 8 devices), written with ``json.dumps`` so a publisher can produce 10,000 a second;
    tests/bench checks them against :mod:`civiq.contract`. Events cycle issued -> called -> completed per
    node with gap-free seqs; timestamps advance ``step_ms`` per message from ``start`` (unique per
    millisecond, so every ticket event is its own sample in VictoriaMetrics)."""
    from civiq.contract import topic

    rng = random.Random(seed)
    now = start or datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    day = now.date().isoformat()
    topics = {leaf: [topic(f"bench-{i:04d}", "pi-1", leaf) for i in range(centers)] for leaf in LEAVES}
    seqs = [0] * centers
    leaves, weights = list(LEAF_WEIGHTS), list(LEAF_WEIGHTS.values())
    services = ("A", "B", "C", "D")
    devices = [{"id": d, "kind": kind, "state": "ok", "detail": ""} for d, kind in
               (("p1", "printer"), ("d1", "display"), ("d2", "display"), ("d3", "display"),
                ("k1", "keypad"), ("k2", "keypad"), ("btn", "dispenser"), ("q1", "qrboard"))]

    def js(x: Any) -> str:
        return json.dumps(x, separators=(",", ":"))

    # pre-serialised variants of the bulky parts: a message costs a few microseconds, not fifty
    queue_tail = [js({
        "services": {s: {"waiting": rng.randrange(30), "oldest_wait_s": round(rng.uniform(0, 3600), 1),
                         "eta_s": round(rng.uniform(0, 3600), 1), "served_today": rng.randrange(300),
                         "issued_today": rng.randrange(400)} for s in services},
        "counters": {f"c{j}": {"state": "open", "ticket": f"A{j:03d}", "services": ["A", "B"],
                               "served_today": rng.randrange(80)} for j in range(1, 7)}})[1:] for _ in range(97)]
    health_tail = [js({
        "host": {"cpu_temp_c": round(rng.uniform(40, 70), 1), "load1": round(rng.uniform(0, 2), 2),
                 "mem_used_pct": 40.0, "disk_used_pct": 30.0, "disk_free_mb": 9000.0, "clock_offset_s": 0.01,
                 "clock": "synced", "uptime_s": 86400.0},
        "devices": devices, "outbox": {"pending": 0, "oldest_s": 0.0}})[1:] for _ in range(31)]
    i = 0
    while True:
        k = rng.randrange(centers)
        leaf = rng.choices(leaves, weights)[0]
        ts = _iso(now + timedelta(milliseconds=i * step_ms))
        i += 1
        if leaf == "event":
            seqs[k] += 1
            seq = seqs[k]
            n, step = (seq + 2) // 3, seq % 3
            svc = services[n % 4]
            label = f"{svc}{n:03d}"
            if step == 1:
                typ, data = "ticket.issued", {"ticket": label, "service": svc, "number": n, "day": day,
                                              "ahead": rng.randrange(20), "eta_s": round(rng.uniform(60, 1800), 1)}
            elif step == 2:
                typ, data = "ticket.called", {"ticket": label, "service": svc, "counter": f"c{n % 6 + 1}",
                                              "wait_s": round(rng.uniform(0, 1800), 1), "recalls": 0, "day": day}
            else:
                typ, data = "ticket.completed", {"ticket": label, "service": svc, "counter": f"c{n % 6 + 1}",
                                                 "service_s": round(rng.uniform(60, 900), 1), "day": day}
            text = f'{{"seq":{seq},"ts":"{ts}","type":"{typ}","clock":"synced","data":{js(data)}}}'
        elif leaf == "queue":
            text = f'{{"ts":"{ts}","day":"{day}","last_seq":{seqs[k]},{queue_tail[i % 97]}'
        else:
            text = f'{{"ts":"{ts}",{health_tail[i % 31]}'
        yield leaf, topics[leaf][k], text.encode()


def build_traffic(centers: int, messages: int, seed: int = 1) -> tuple[list[tuple[str, bytes]], dict[str, int]]:
    """The first ``messages`` of :func:`traffic_stream` and the count per leaf."""
    counts = dict.fromkeys(LEAVES, 0)
    out = []
    for leaf, t, p in itertools.islice(traffic_stream(centers, seed), messages):
        counts[leaf] += 1
        out.append((t, p))
    return out, counts


def flood(port: int, centers: int, rate: float, seconds: float, seed: int = 7) -> dict[str, float]:
    """Publish ``rate`` msg/s of :func:`traffic_stream` at QoS1 for ``seconds`` (paced every 10 ms, at most
    5,000 unacknowledged). Returns what was achieved."""
    from civiq.mqttclient import make_client

    c = make_client(f"bench-flood-{port}-{seed}")
    c.max_queued_messages_set(0)
    acked = [0]
    c.on_publish = lambda *a: acked.__setitem__(0, acked[0] + 1)
    c.connect("127.0.0.1", port, 60)
    c.loop_start()
    stream = traffic_stream(centers, seed, start=datetime.now(UTC), step_ms=1000 / rate)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
    sent = 0
    t0 = time.monotonic()
    while (now := time.monotonic()) - t0 < seconds and not stop.is_set():
        due = int((now - t0) * rate) - sent
        for _ in range(max(0, min(due, MAX_UNACKED - (sent - acked[0])))):
            _, t, p = next(stream)
            c.publish(t, p, qos=1)
            sent += 1
        time.sleep(0.01)
    dt = time.monotonic() - t0
    deadline = time.monotonic() + 30
    while acked[0] < sent and time.monotonic() < deadline:
        time.sleep(0.01)
    c.disconnect()
    c.loop_stop()
    return {"sent": sent, "seconds": dt, "rate": sent / dt, "acked": acked[0]}


def publish(port: int, traffic: list[tuple[str, bytes]], max_unacked: int = MAX_UNACKED) -> float:
    """Publish everything at QoS1, never more than ``max_unacked`` unacknowledged; returns seconds."""
    import paho.mqtt.client as mqtt

    from civiq.mqttclient import make_client

    c = make_client(f"bench-pub-{port}")
    c.max_queued_messages_set(0)
    acked = [0]
    cond = threading.Condition()

    def on_publish(client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        with cond:
            acked[0] += 1
            cond.notify()

    c.on_publish = on_publish
    c.connect("127.0.0.1", port, 60)
    c.loop_start()
    t0 = time.perf_counter()
    for i, (t, p) in enumerate(traffic):
        if i - acked[0] >= max_unacked:
            with cond:
                cond.wait_for(lambda i=i: i - acked[0] < max_unacked // 2, timeout=60)
        info = c.publish(t, p, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish failed: {mqtt.error_string(info.rc)}")
    with cond:
        if not cond.wait_for(lambda: acked[0] >= len(traffic), timeout=120):
            raise RuntimeError(f"only {acked[0]} of {len(traffic)} publishes acknowledged")
    dt = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return dt


# ============================================================================================ worker process
def _subscribe_bare(port: int, client_id: str) -> Any:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from civiq.contract import ROOT
    from civiq.mqttclient import make_client

    c = make_client(client_id, v5=True)
    c.max_queued_messages_set(0)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    got = threading.Event()
    c.on_subscribe = lambda *a: got.set()
    c.on_connect = lambda cl, *a: cl.subscribe([(f"{ROOT}/+/+/{leaf}", 1) for leaf in LEAVES])
    c.connect("127.0.0.1", port, 60, clean_start=False, properties=props)
    return c, got


def worker(a: argparse.Namespace) -> int:
    """A consumer in its own process. stdin: "go <json>" then "stop"; stdout: JSON progress lines."""
    def say(**kw: Any) -> None:
        print(json.dumps(kw), flush=True)

    if a.mode == "bare":
        c, got = _subscribe_bare(a.port, a.client_id)
        c.loop_start()
        got.wait(10)
        c.disconnect()
        c.loop_stop()
        say(subscribed=True)
        sys.stdin.readline()
        cpu0 = thread_cpu()
        n = [0]

        def on_message(cl: Any, u: Any, m: Any) -> None:
            n[0] += 1

        c, _ = _subscribe_bare(a.port, a.client_id)
        c.on_message = on_message
        t0 = time.monotonic()
        c.loop_start()
        say(t0=t0)
        while not _stdin_says_stop(0.05):
            say(t=time.monotonic(), received=n[0], idle=True)
        threads = thread_cpu(cpu0)
        c.disconnect()
        c.loop_stop()
        say(final=True, events=None, threads=threads)
        return 0

    from civiq.clock import SystemClock
    from civiq.gateway.ingest import Ingest
    from civiq.gateway.settings import GatewaySettings
    from civiq.gateway.state import LiveState
    from civiq.gateway.store.influx import InfluxExport
    from civiq.gateway.store.series import SeriesStore

    data = Path(a.dir)
    shard = {}
    if a.shard:
        k, n = (int(x) for x in a.shard.split("/"))
        shard = {"centers": [f"bench-{i:04d}" for i in range(a.centers)], "workers": n, "index": k}
    settings = GatewaySettings.load(
        data_dir=data, heartbeat_timeout_s=3600, shard=shard,
        mqtt={"port": a.port, "client_id": a.client_id, "shared_group": a.group or None, "keepalive": 60,
              "session_expiry_s": SESSION_EXPIRY_S})
    store = SeriesStore(settings.db_path)
    state = LiveState()
    clock = SystemClock()
    first = Ingest(settings, state, store, None, clock=clock)
    first.start()
    if not first.wait_ready(15):
        say(error="gateway did not connect")
        return 1
    first.stop()
    say(subscribed=True)
    go = json.loads(sys.stdin.readline().split(" ", 1)[1])
    cpu0 = thread_cpu()  # what starting up cost is not the drain's
    influx = None
    if go.get("influx_url"):
        influx = InfluxExport(go["influx_url"], "", "civiq", "civiq", data / "spool.db").start()
    ingest = Ingest(settings, state, store, influx, clock=clock)
    profs: dict[str, Any] = {}
    if os.environ.get("CIVIQ_BENCH_PROFILE"):  # cProfile of the writer and paho's threads, to
        import cProfile  # <that path>.<client id>.<writer|paho>

        def profiled(name: str, run: Any) -> Any:
            prof = profs[name] = cProfile.Profile()

            def wrapped() -> None:
                prof.enable()
                try:
                    run()
                finally:
                    prof.disable()
            return wrapped

        ingest.writer._run = profiled("writer", ingest.writer._run)  # type: ignore[method-assign]  # noqa: SLF001
        c = ingest.link.client
        c._thread_main = profiled("paho", c._thread_main)  # type: ignore[method-assign]  # noqa: SLF001
    t0 = time.monotonic()
    ingest.start()
    say(t0=t0)
    while not _stdin_says_stop(0.05):
        say(t=time.monotonic(), received=int(ingest.metrics.messages.total()),
            idle=ingest.wait_idle(0.001), gaps=int(ingest.metrics.gaps.total()))
    threads = thread_cpu(cpu0)  # before the threads end
    ingest.stop()
    for name, prof in profs.items():
        import pstats

        with open(f"{os.environ['CIVIQ_BENCH_PROFILE']}.{a.client_id}.{name}", "w") as out:
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(40)
    spool: dict[str, Any] = {}
    t_spool = None
    if influx is not None:
        deadline = time.monotonic() + 120
        while influx.pending() and time.monotonic() < deadline and influx.rejected == 0:
            time.sleep(0.05)
        t_spool = time.monotonic()
        spool = {k: v for k, v in influx.stats.items() if k != "last_error"}
        influx.stop()
    say(final=True, events=store.event_count(), spool=spool, t_spool=t_spool, threads=threads,
        malformed=int(ingest.metrics.malformed.total()), duplicates=int(ingest.metrics.duplicates.total()),
        gaps=int(ingest.metrics.gaps.total()), rebirths=int(ingest.metrics.rebirths.total()),
        batches=int(ingest.metrics.batch_size.count()),
        open_gaps=len(store.gaps()))
    store.close()
    return 0


def thread_cpu(since: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds used so far by each live thread of this process, by Python thread name (Linux), less
    what ``since`` (an earlier call) had counted."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(task.name), "other")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    for k, v in (since or {}).items():
        if k in out:
            out[k] = max(0.0, out[k] - v)
    return out


def _stdin_says_stop(timeout: float) -> bool:
    r, _, _ = select.select([sys.stdin], [], [], timeout)
    return bool(r) and sys.stdin.readline().strip() in ("stop", "")


# ============================================================================================ orchestration
@dataclass
class Worker:
    proc: subprocess.Popen[str]
    last: dict[str, Any] = field(default_factory=dict)
    t0: float = 0.0
    final: dict[str, Any] = field(default_factory=dict)

    def read(self, timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise TimeoutError("worker silent")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited ({self.proc.poll()}); see its stderr")
        msg = json.loads(line)
        if "error" in msg:
            raise RuntimeError(msg["error"])
        return msg

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()


def _spawn(port: int, mode: str, client_id: str, group: str | None, d: Path, shard: str | None = None,
           centers: int = 0) -> Worker:
    cmd = python_cmd("-m", "bench.ingest", "worker", "--port", str(port), "--mode", mode, "--client-id",
                     client_id, "--dir", str(d)) + (["--group", group] if group else []) + \
        (["--shard", shard, "--centers", str(centers)] if shard else [])
    d.mkdir(parents=True, exist_ok=True)
    err = open(d / "stderr.log", "w")  # noqa: SIM115 - the child owns it
    p = subprocess.Popen(cmd, cwd=REPO, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=err, text=True, bufsize=1)
    return Worker(p)


@dataclass
class Row:
    consumer: str
    seconds: float
    rate: float
    checks: str


def _drain(workers: list[Worker], expected: int, influx_url: str | None, timeout: float) -> tuple[float, list]:
    """Start the workers' drain together; return (seconds, finals)."""
    for w in workers:
        w.send("go " + json.dumps({"influx_url": influx_url}))
    for w in workers:
        while "t0" not in (m := w.read()):
            pass
        w.t0 = m["t0"]
    t_start = min(w.t0 for w in workers)
    deadline = time.monotonic() + timeout
    t_done = None
    while t_done is None:
        for w in workers:
            w.last = w.read()
        if sum(w.last["received"] for w in workers) >= expected and all(w.last["idle"] for w in workers):
            t_done = max(w.last["t"] for w in workers)
        elif time.monotonic() > deadline:
            got = sum(w.last["received"] for w in workers)
            raise TimeoutError(f"drain: {got} of {expected} messages after {timeout:.0f} s")
    for w in workers:
        w.send("stop")
    finals = []
    for w in workers:
        while not (m := w.read(180)).get("final"):
            pass
        finals.append(m)
        w.proc.wait(30)
    return t_done - t_start, finals


def run_shape(centers: int, messages: int, workers_list: tuple[int, ...] = (1, 2, 4), *,
              with_influx: bool = True, log: Any = print) -> dict[str, Any]:
    """One traffic shape: returns the published rate and one row per consumer."""
    tmp = Path(tempfile.mkdtemp(prefix="civiq-bench-ingest-"))
    b = broker()
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    sys_watch = SysWatch(b.port)
    spawned: list[Worker] = []
    try:
        port = b.port
        # 1. sessions first
        topics = [a for leaf in LEAVES for a in ("-t", f"civiq/v1/+/+/{leaf}")]
        sub_id = "bench-mosquitto-sub"
        subprocess.run(["mosquitto_sub", "-p", str(port), "-c", "-i", sub_id, "-q", "1", "-E", "-V", "mqttv5",
                        "-x", str(SESSION_EXPIRY_S), *topics], check=True, timeout=15)
        bare = _spawn(port, "bare", "bench-bare", None, tmp / "bare")
        groups: dict[int, list[Worker]] = {}
        for n in workers_list:  # sharded by center: each worker subscribes only to its own centers' topics
            groups[n] = [_spawn(port, "gateway", f"bench-gw{n}-{i}", None, tmp / f"gw{n}-{i}",
                                f"{i}/{n}" if n > 1 else None, centers) for i in range(n)]
        spawned += [bare, *[w for ws in groups.values() for w in ws]]
        for w in [bare, *[w for ws in groups.values() for w in ws]]:
            while not w.read(60).get("subscribed"):
                pass
        # 2. the flood
        pub = subprocess.run(python_cmd("-m", "bench.ingest", "publish", "--port", str(port), "--centers",
                                        str(centers), "--messages", str(messages)),
                             cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=900)
        if pub.returncode != 0:
            raise RuntimeError(f"publisher failed: {pub.stderr[-2000:]}")
        p = json.loads(pub.stdout.strip().splitlines()[-1])
        counts: dict[str, int] = p["counts"]
        extra.update(published_rate=messages / p["seconds"], counts=counts)
        log(f"  published {messages:,} in {p['seconds']:.1f} s ({messages / p['seconds']:,.0f} msg/s)")
        # 3a. mosquitto_sub: the broker's delivery limit
        t0 = time.monotonic()
        ms = subprocess.run(["mosquitto_sub", "-p", str(port), "-c", "-i", sub_id, "-q", "1", "-V", "mqttv5",
                             "-x", str(SESSION_EXPIRY_S), "-C", str(messages), "-W", "600", *topics],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=700)
        dt = time.monotonic() - t0
        if ms.returncode != 0:
            raise RuntimeError(f"mosquitto_sub did not get {messages} messages: {ms.stderr.decode()[-300:]}")
        rows.append(Row("`mosquitto_sub` (broker limit)", dt, messages / dt, f"{messages:,} received"))
        log(f"  mosquitto_sub {messages / dt:,.0f} msg/s")
        # 3b. bare paho
        dt, bare_finals = _drain([bare], messages, None, 600)
        rows.append(Row("bare paho subscriber (1 process)", dt, messages / dt, f"{messages:,} received"))
        base = messages / dt
        extra["cpu"] = {0: bare_finals[0].get("threads", {})}
        log(f"  bare paho {base:,.0f} msg/s")
        # 3c. gateways
        for n, ws in groups.items():
            vm = VictoriaMetrics(tmp / f"vm-{n}").start() if with_influx else None
            try:
                dt, finals = _drain(ws, messages, vm.url if vm else None, 900)
                events = sum(f["events"] for f in finals)
                gaps = sum(f["gaps"] for f in finals)
                dups = sum(f["duplicates"] for f in finals)
                checks = [f"events stored {events:,}/{counts['event']:,}", f"gaps {gaps}, duplicates {dups}"]
                if vm is not None:
                    pending = sum(f["spool"].get("pending", 0) for f in finals)
                    rejected = sum(f["spool"].get("rejected", 0) for f in finals)
                    ticket_samples = vm.count_stable('{__name__="ticket_event_count"}', counts["event"])
                    spool_s = max(f["t_spool"] for f in finals) - min(w.t0 for w in ws)
                    checks.append(f"spool pending {pending}, rejected {rejected}, drained at {spool_s:.1f} s")
                    checks.append(f"VictoriaMetrics ticket events {ticket_samples:,}/{counts['event']:,}")
                    extra.setdefault("verify", []).append(
                        dict(workers=n, events=events, expected=counts["event"], pending=pending,
                             rejected=rejected, vm=ticket_samples, gaps=gaps, duplicates=dups))
                else:
                    extra.setdefault("verify", []).append(dict(workers=n, events=events, expected=counts["event"],
                                                               gaps=gaps, duplicates=dups))
                label = "gateway, everything on (1 process)" if n == 1 else \
                    f"gateway × {n} processes, sharded by center"
                rows.append(Row(label, dt, messages / dt, "; ".join(checks)))
                log(f"  gateway x{n}: {messages / dt:,.0f} msg/s ({'; '.join(checks)}); "
                    f"{sum(f.get('batches', 0) for f in finals)} commits")
                cpu: dict[str, float] = {}
                for f in finals:
                    for k, v in f.get("threads", {}).items():
                        cpu[k] = cpu.get(k, 0.0) + v
                extra["cpu"][n] = cpu
                log("    CPU s by thread: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda x: -x[1])))
            finally:
                if vm is not None:
                    vm.stop()
        dropped = sys_watch.read()
        extra["dropped"] = "unknown ($SYS not received)" if dropped is None else dropped
        extra["base"] = base
    finally:
        for w in spawned:  # after a failure: no worker may outlive the run
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        sys_watch.close()
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"centers": centers, "messages": messages, "rows": rows, **extra}


def best_of(centers: int, messages: int, workers_list: tuple[int, ...] = (1, 2, 4), rounds: int = 2, *,
            with_influx: bool = True, log: Any = print) -> dict[str, Any]:
    """:func:`run_shape` ``rounds`` times (a fresh broker and backlog each time); each consumer's best round.

    The machine is shared: another job taking a core for a few seconds makes one drain look slow. The best
    of a few rounds is what the consumer can do; every round's checks must hold (they are all reported)."""
    runs = []
    for i in range(rounds):
        if rounds > 1:
            log(f"  round {i + 1} of {rounds}")
        runs.append(run_shape(centers, messages, workers_list, with_influx=with_influx, log=log))
    out = dict(runs[0])
    rows, cpu = [], {}
    for j, row in enumerate(runs[0]["rows"]):
        k = max(range(rounds), key=lambda r: runs[r]["rows"][j].rate)
        rows.append(runs[k]["rows"][j])
        key = 0 if row.consumer.startswith("bare") else 1 if row.consumer.startswith("gateway, everything") else \
            int(row.consumer.split("× ")[1].split(" ")[0]) if "×" in row.consumer else None
        if key is not None and key in runs[k].get("cpu", {}):
            cpu[key] = runs[k]["cpu"][key]
    out.update(rows=rows, cpu=cpu, rounds=rounds, base=next(r.rate for r in rows if r.consumer.startswith("bare")),
               verify=[v for r in runs for v in r.get("verify", [])],
               dropped=", ".join(str(r["dropped"]) for r in runs),
               published_rate=min(r["published_rate"] for r in runs))
    return out


def report(shapes: list[dict[str, Any]]) -> str:
    out = []
    for s in shapes:
        base = s["base"]
        cpu = s.get("cpu", {})

        def us(r: Row, cpu: dict = cpu, s: dict = s) -> str:
            key = 0 if r.consumer.startswith("bare") else 1 if r.consumer.startswith("gateway, everything") else \
                int(r.consumer.split("× ")[1].split(" ")[0]) if "×" in r.consumer else None
            c = cpu.get(key) if key is not None else None
            return f"{sum(c.values()) / s['messages'] * 1e6:.0f}" if c else "–"

        rows = [[r.consumer, fmt(r.seconds, 2), f"{r.rate:,.0f}", f"{r.rate / base:.2f}", us(r), r.checks]
                for r in s["rows"]]
        counts = s["counts"]
        rounds = s.get("rounds", 1)
        best = f" Each consumer's best of {rounds} rounds (each round: a fresh broker, backlog and drain)." \
            if rounds > 1 else ""
        out.append(f"**{s['centers']:,} simulated centers**, {s['messages']:,} messages "
                   f"({counts['event']:,} events, {counts['queue']:,} queue snapshots, {counts['health']:,} "
                   f"health), published at {s['published_rate']:,.0f} msg/s (QoS1, ≤ {MAX_UNACKED:,} "
                   f"unacknowledged); broker `$SYS/broker/publish/messages/dropped` = **{s['dropped']}**.{best}\n")
        out.append(md_table(["consumer (drains the backlog alone)", "seconds", "msg/s", "÷ bare paho",
                             "CPU µs/msg", "checks"], rows))
        gw = cpu.get(1)
        if gw:
            total = sum(gw.values())
            out.append("\nWhere one gateway process spends its CPU (share of its CPU seconds, by thread): " + ", ".join(
                f"`{k}` {v / total:.0%}" for k, v in sorted(gw.items(), key=lambda x: -x[1]) if v / total >= 0.01)
                + ". CPU µs/msg counts every thread of the consumer's process (not the broker's).")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    r = sub.add_parser("run")
    r.add_argument("--shapes", default="100:40000,3300:40000", help="centers:messages,...")
    r.add_argument("--workers", default="1,2,4")
    r.add_argument("--no-influx", action="store_true")
    r.add_argument("--rounds", type=int, default=2, help="best of this many rounds per consumer")
    p = sub.add_parser("publish")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--centers", type=int, required=True)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    f = sub.add_parser("flood")
    f.add_argument("--port", type=int, required=True)
    f.add_argument("--centers", type=int, required=True)
    f.add_argument("--rate", type=float, required=True)
    f.add_argument("--seconds", type=float, required=True)
    f.add_argument("--seed", type=int, default=7)
    w = sub.add_parser("worker")
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--mode", choices=("bare", "gateway"), required=True)
    w.add_argument("--client-id", required=True)
    w.add_argument("--group")
    w.add_argument("--shard", help="k/n: this worker owns the centers whose hash is k of n")
    w.add_argument("--centers", type=int, default=0)
    w.add_argument("--dir", required=True)
    a = ap.parse_args(argv if argv is not None else sys.argv[1:] or ["run"])
    if a.cmd == "publish":
        traffic, counts = build_traffic(a.centers, a.messages, a.seed)
        dt = publish(a.port, traffic)
        print(json.dumps({"seconds": dt, "counts": counts}))
        return 0
    if a.cmd == "flood":
        print(json.dumps(flood(a.port, a.centers, a.rate, a.seconds, a.seed)), flush=True)
        return 0
    if a.cmd == "worker":
        return worker(a)
    shapes = []
    for spec in a.shapes.split(","):
        c, m = (int(x) for x in spec.split(":"))
        print(f"ingest: {c} centers, {m} messages", file=sys.stderr)
        shapes.append(best_of(c, m, tuple(int(x) for x in a.workers.split(",")), a.rounds,
                              with_influx=not a.no_influx, log=lambda s: print(s, file=sys.stderr)))
    print(report(shapes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
