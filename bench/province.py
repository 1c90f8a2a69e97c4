"""A province on one gateway: ``python -m bench.province [--centers 100] [--days 28] [--seconds 120]``.

What DESIGN.md's scale table plans for a province gateway, measured on a real ``civiq gateway run`` process:

1. **History.** ``--centers`` centers (``bench-0000``...) get ``--days`` local days of history (Sundays closed),
   written straight into the gateway's SQLite store through :class:`~civiq.gateway.store.series.SeriesStore`
   (``add_events``, the ingest's own write path) before the gateway starts. Each day is a day of
   :mod:`bench.loadsim` (its four day profiles, the real edge queue engine under a FakeClock: arrivals on the
   day curve, lognormal counter times, no-shows, breaks), one profile per center, a pool of simulated days
   re-dated per center and day (~650 events a center-day). Every ``--busy-every``-th center (10th) is a busy
   city center instead: the busy day of :mod:`bench.replay` (``morning_surge`` ×7 in tickets and counters,
   ~5,500 events a day, the size of the center the issue measured).
2. **Live traffic.** ``python -m bench.ingest flood`` publishes the contract mix of the same centers (events,
   queue snapshots with 4 services and 6 counters, health) at ``--rate`` msg/s (300: a province at one message
   every 5 s per device) to a real Mosquitto. The queue snapshots give every center counters, so the advisor
   advises all of them every ``balance.interval_s`` (60 s).
3. **Measured** over ``--seconds`` (and at least two more passes) after the gateway knows every center
   and has finished one full pass:

   * advisor pass time: ``civiq_gw_advisor_pass_seconds`` of every pass over all centers (``/metrics``);
   * alert tick lag: how late the light loop's alert tick finished after it was due
     (``civiq_gw_loop_tick_lag_seconds``, p99 and max over the last 600 ticks);
   * watchdog: ``NOTIFY_SOCKET`` points at a datagram socket of this process (as systemd's would); the
     largest interval between two ``WATCHDOG=1`` pings must stay under half of ``WatchdogSec`` (30 s);
   * dashboard: a queue snapshot of one more center (``bench-dash``) is published every 1.2 s as an edge
     would, and timed until a logged-in WebSocket ``/api/v1/live?watch=center`` shows it (``issued_today``).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import REPO, GatewayProc, broker, child_env, dist, fmt, md_table, python_cmd, wait_until
from civiq.dev.harness import NotifySocket

WATCHDOG_SEC = 30.0  # systemd/civiq-gateway.service
DASH_CENTER = "bench-dash"
HIST_NODE = "pi-0"  # the node of the history (the flood's own node, pi-1, starts its seqs at 1)


# ============================================================================================ history
def generate_history(db: Path, centers: int, days: int, *, today: date | None = None, pool: int = 14,
                     busy_every: int = 10, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write ``days`` local days (before ``today``, Sundays closed) of loadsim days for ``centers`` centers
    into the SeriesStore at ``db``. Returns counts and timings."""
    from bench.loadsim import DEFAULT_DATE, PROFILES, DaySim
    from bench.replay import busy_day_events
    from civiq.clock import DEFAULT_TZ
    from civiq.contract import Event
    from civiq.gateway.store.series import SeriesStore

    zone = ZoneInfo(DEFAULT_TZ)
    today = today or datetime.now(zone).date()
    t0 = time.perf_counter()
    names = list(PROFILES)
    sims: dict[tuple[str, int], tuple[Any, ...]] = {}
    for name in names:  # a pool of simulated days per profile, reused (re-dated) across centers and days
        for seed in range(pool):
            sims[(name, seed)] = DaySim(PROFILES[name], "profiles", seed=seed + 1, on=DEFAULT_DATE,
                                        keep_events=True).run().events
    busy_pool = max(1, pool // 2)
    if busy_every:
        for seed in range(busy_pool):
            sims[("busy", seed)] = tuple(busy_day_events(seed + 1))  # on loadsim's DEFAULT_DATE too
    t_sim = time.perf_counter() - t0
    store = SeriesStore(db)
    rng = random.Random(1)
    n = 0
    t1 = time.perf_counter()
    for c in range(centers):
        center = f"bench-{c:04d}"
        seq = 0
        batch: list[tuple[str, str, Event]] = []
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            if day.weekday() == 6:
                continue
            shift = timedelta(days=(day - DEFAULT_DATE).days)
            iso = day.isoformat()
            busy = busy_every and c % busy_every == 0
            key = ("busy", rng.randrange(busy_pool)) if busy else (names[c % len(names)], rng.randrange(pool))
            for ev in sims[key]:
                seq += 1
                data = dict(ev.data)
                if "day" in data:
                    data["day"] = iso
                batch.append((center, HIST_NODE, Event.model_construct(seq=seq, ts=ev.ts + shift, type=ev.type,
                                                                       clock=ev.clock, data=data)))
        store.add_events(batch, received=datetime.now(UTC))
        n += len(batch)
        if c % 10 == 9:
            log(f"  history: {c + 1}/{centers} centers, {n:,} events ({time.perf_counter() - t1:.0f} s)")
    store.close()
    return {"events": n, "sim_s": t_sim, "write_s": time.perf_counter() - t1,
            "db_mb": db.stat().st_size / 1e6}


# ============================================================================================ watchdog

# ============================================================================================ dashboard
class DashProbe:
    """Publishes ``bench-dash``'s queue snapshot (as its edge would) with ``issued_today`` + 1 each time."""

    def __init__(self, port: int) -> None:
        from civiq.contract import topic
        from civiq.mqttclient import make_client

        self.topic = topic(DASH_CENTER, "pi-1", "queue")
        self.issued = 0
        self.c = make_client(f"bench-dash-{port}")
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()

    def publish(self) -> int:
        self.issued += 1
        now = datetime.now(UTC)
        snap = {"ts": now.isoformat(), "day": now.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat(),
                "services": {"A": {"waiting": 1, "oldest_wait_s": 1.0, "served_today": 0,
                                   "issued_today": self.issued}},
                "counters": {"c1": {"state": "open", "services": ["A"], "served_today": 0}}}
        self.c.publish(self.topic, json.dumps(snap), qos=1).wait_for_publish(10)
        return self.issued

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


# ============================================================================================ the run
def _metric(gw: GatewayProc, name: str, stat: str | None = None) -> float | None:
    import urllib.request

    with urllib.request.urlopen(f"{gw.url}/metrics", timeout=30) as r:
        text = r.read().decode()
    for ln in text.splitlines():
        key, _, value = ln.rpartition(" ")
        if key == name or (stat is not None and key == f'{name}{{stat="{stat}"}}'):
            return float(value)
    return None


class PassWatch:
    """Polls ``/metrics`` every second (own thread): each completed advisor pass (time, centers advised)."""

    def __init__(self, gw: GatewayProc) -> None:
        self.gw = gw
        self.passes: list[tuple[float, float, float]] = []  # (monotonic seen, pass seconds, centers)
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pass-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = 0.0
        while not self._stop.wait(1.0):
            try:
                n = _metric(self.gw, "civiq_gw_advisor_passes_total") or 0.0
                if n > last:
                    last = n
                    self.passes.append((time.monotonic(), _metric(self.gw, "civiq_gw_advisor_pass_seconds") or 0.0,
                                        _metric(self.gw, "civiq_gw_advisor_centers") or 0.0))
            except OSError:
                self.errors += 1

    def full(self, centers: int, since: float = 0.0) -> list[tuple[float, float, float]]:
        return [p for p in self.passes if p[2] >= centers and p[0] >= since]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def run(centers: int = 100, days: int = 28, rate: float = 300.0, seconds: float = 120.0, *, pool: int = 14,
        busy_every: int = 10,
        interval_s: float = 60.0, dash_n: int | None = None, log: Callable[[str], None] = print,
        warm_timeout_s: float = 1800.0) -> dict[str, Any]:
    from bench.latency import LiveClient

    tmp = Path(tempfile.mkdtemp(prefix="civiq-bench-province-"))
    b = notify = flood = live = probe = watch = None
    gw: GatewayProc | None = None
    try:
        log(f"province: generating {days} days of history for {centers} centers")
        hist = generate_history(tmp / "gw" / "data" / "series.db", centers, days, pool=pool,
                                busy_every=busy_every, log=log)
        log(f"  {hist['events']:,} events in {hist['write_s']:.0f} s ({hist['db_mb']:.0f} MB)")
        b = broker()
        notify = NotifySocket(tmp / "notify.sock")
        gw = GatewayProc(b.port, tmp / "gw", balance={"interval_s": interval_s})
        gw.extra_env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(int(WATCHDOG_SEC * 1e6))}
        t_start = time.monotonic()
        gw.start()
        t_up = time.monotonic() - t_start
        flood = subprocess.Popen(
            python_cmd("-m", "bench.ingest", "flood", "--port", str(b.port), "--centers", str(centers),
                       "--rate", str(rate), "--seconds", str(warm_timeout_s + seconds + 600)),
            cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        probe = DashProbe(b.port)
        probe.publish()
        live = LiveClient(gw.url, GatewayProc.USER, GatewayProc.PASSWORD, DASH_CENTER).start()
        if live.error:
            raise RuntimeError(live.error)
        if live.wait_issued("A", 1, 0, 60) is None:
            raise RuntimeError("the dashboard never showed bench-dash")
        watch = PassWatch(gw)
        # warm up: the gateway has heard every center, and one pass over all of them has *started* after that
        log("  waiting for a full advisor pass over every center")
        t_warm = time.monotonic()
        first = wait_until(lambda: watch.full(centers), warm_timeout_s, 1.0, "a full advisor pass")
        log(f"  first full pass: {first[0][1]:.1f} s ({time.monotonic() - t_warm:.0f} s after the flood started)")
        m0 = gw.metrics()
        t0 = time.monotonic()
        lat: list[float] = []
        timeouts = 0
        n_dash = dash_n if dash_n is not None else int(seconds / 1.2)
        for _ in range(n_dash):
            since = len(live.messages)
            ts = time.monotonic()
            want = probe.publish()
            got = live.wait_issued("A", want, since, 10.0)
            if got is None:
                timeouts += 1
            else:
                lat.append(got - ts)
            time.sleep(max(0.0, ts + 1.2 - time.monotonic()))
        # the window ends after the second pass that ended inside it
        wait_until(lambda: len(watch.full(centers, t0 + 0.5)) >= 2, max(warm_timeout_s, seconds), 1.0,
                   "two advisor passes inside the window")
        t1 = time.monotonic()
        m1 = gw.metrics()
        lag_p99 = _metric(gw, "civiq_gw_loop_tick_lag_seconds", "p99")
        lag_max = _metric(gw, "civiq_gw_loop_tick_lag_seconds", "max")
        passes = [p[1] for p in watch.full(centers, t0 + 0.5)]
        ingested = (m1.get("civiq_gw_messages_total", 0) - m0.get("civiq_gw_messages_total", 0)) / (t1 - t0)
        depth = m1.get("civiq_gw_ingest_queue_depth", float("nan"))
        achieved = None
        flood.send_signal(signal.SIGTERM)
        out, err = flood.communicate(timeout=120)
        try:
            achieved = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            log(f"flood said: {err[-500:]}")
        flood = None
        return {"centers": centers, "days": days, "busy": len(range(0, centers, busy_every)) if busy_every else 0, "rate": rate, "history": hist, "startup_s": t_up,
                "window_s": t1 - t0, "passes": passes, "first_pass_s": first[0][1], "interval_s": interval_s,
                "tick_lag_p99": lag_p99, "tick_lag_max": lag_max, "lag_ticks_window": min(600.0, t1 - t0),
                "watchdog_max": notify.max_interval(t0, t1), "watchdog_pings": len(notify.times_of("WATCHDOG=1")),
                "dashboard": dist(lat), "dash_timeouts": timeouts, "ingested_rate": ingested,
                "queue_depth": depth, "flood": achieved}
    finally:
        if flood is not None:
            flood.kill()
            flood.wait()
        for x in (watch, live, probe):
            if x is not None:
                x.stop() if hasattr(x, "stop") else x.close()
        if gw is not None:
            gw.stop()
        if notify is not None:
            notify.close()
        if b is not None:
            b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def report(r: dict[str, Any], label: str = "this version") -> str:
    """One table row per figure (the caller may put several runs side by side)."""
    return md_table(["figure", label], rows(r))


def rows(r: dict[str, Any]) -> list[list[str]]:
    p = dist(r["passes"])
    d = r["dashboard"]
    flood = r["flood"]
    half = WATCHDOG_SEC / 2
    return [
        ["history in the store", f"{r['centers']} centers × {r['days']} days ({r['busy']} busy): "
                                 f"{r['history']['events']:,} events, "
                                 f"{r['history']['db_mb']:,.0f} MB"],
        ["live traffic", f"{flood['rate']:,.0f} msg/s offered" if flood else "–"],
        ["gateway ingested (window)", f"{r['ingested_rate']:,.0f} msg/s, queue depth at the end "
                                      f"{fmt(r['queue_depth'], 0)}"],
        [f"advisor pass, {r['centers']} centers (interval {r['interval_s']:.0f} s)",
         f"{fmt(p.p50, 2)} s median, {fmt(p.max, 2)} s max ({p.n} passes in the window)"],
        ["alert tick lag p99 / max", f"{fmt((r['tick_lag_p99'] or float('nan')) * 1000, 1)} ms / "
                                     f"{fmt((r['tick_lag_max'] or float('nan')) * 1000, 1)} ms"],
        [f"watchdog ping interval max (limit {half:.0f} s)",
         f"{r['watchdog_max']:.2f} s {'✓' if r['watchdog_max'] < half else '**over the limit**'}"],
        ["dashboard event → screen p50 / p99",
         f"{fmt(d.p50 * 1000, 0)} / {fmt(d.p99 * 1000, 0)} ms (N {d.n}"
         + (f", **{r['dash_timeouts']} not shown within 10 s**" if r["dash_timeouts"] else "") + ")"],
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.province", description=__doc__.splitlines()[0])
    ap.add_argument("--centers", type=int, default=100)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--rate", type=float, default=300.0, help="live traffic, msg/s")
    ap.add_argument("--seconds", type=float, default=120.0, help="measuring window (at least one full pass)")
    ap.add_argument("--busy-every", type=int, default=10, help="every n-th center is a busy one (0: none)")
    ap.add_argument("--interval", type=float, default=60.0, help="the advisor's balance.interval_s")
    ap.add_argument("--json", help="also write the raw result here")
    a = ap.parse_args(argv)
    r = run(a.centers, a.days, a.rate, a.seconds, interval_s=a.interval, busy_every=a.busy_every, log=lambda s: print(s, file=sys.stderr, flush=True))
    if a.json:
        Path(a.json).write_text(json.dumps({**r, "dashboard": r["dashboard"].__dict__}, indent=1, default=str))
    print(report(r))
    return 0 if r["watchdog_max"] < WATCHDOG_SEC / 2 else 1


if __name__ == "__main__":
    sys.exit(main())
