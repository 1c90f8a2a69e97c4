"""End-to-end latencies a person sees: ``python -m bench.latency``.

Three paths, measured in the same loop, idle and under background traffic:

* **button → ticket**: the dispenser's service button (a gpiozero MockFactory pin driven low, as the
  hardware would) to the ticket's cut at the ESC/POS printer emulator (the bytes decoded off the pty);
* **key → display**: the counter keypad's ``next`` key (mock pin) to the called ticket's digits on the
  Modbus display emulator (polled every 0.5 ms);
* **button → dashboard**: the same button press to the WebSocket message of the dashboard's live stream
  (``/api/v1/live?watch=center``, a logged-in session of a real ``civiq gateway run`` process) that shows
  the new ticket (``issued_today`` of the service went up). This crosses the edge's queue snapshot (sent
  on change, at most once a second: presses are 1.2 s apart), Mosquitto, the gateway's ingest batch (50 ms),
  and the live hub's 200 ms poll.

The agent runs in this process on simulated hardware (``make_agent(cfg, simulate=True)``); the gateway and
Mosquitto are separate processes. Background traffic comes from another process (``bench.ingest flood``)
publishing the contract mix of ``--centers`` centers at the DESIGN's rates: a province (100 centers,
300 msg/s) and the whole country (3,300 centers, 10,000 msg/s offered). The table also reports what the
flood achieved and what the gateway ingested meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    GatewayProc,
    broker,
    child_env,
    dist,
    fmt,
    md_table,
    python_cmd,
    wait_until,
    write_center,
)

LEVELS = (("idle", 0, 0.0), ("province (100 centers, 300 msg/s)", 100, 300.0),
          ("country (3,300 centers, 10,000 msg/s offered)", 3300, 10_000.0))
DASH_TIMEOUT_S = 30.0  # after the last press
CENTER = "bench-lat"


class LiveClient:
    """A logged-in dashboard session watching one center's live stream (aiohttp, own thread)."""

    def __init__(self, base: str, user: str, password: str, center: str) -> None:
        self.base, self.user, self.password, self.center = base, user, password, center
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.cond = threading.Condition()
        self.error: str | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="live-client", daemon=True)
        self.connected = threading.Event()

    def start(self) -> LiveClient:
        self._thread.start()
        if not self.connected.wait(30):
            raise RuntimeError(f"live stream not connected: {self.error}")
        return self

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        import aiohttp

        self._stop = asyncio.Event()
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:  # an IP host
                async with s.post(f"{self.base}/login", data={"user": self.user, "password": self.password},
                                  allow_redirects=False) as r:
                    if r.status not in (302, 303):
                        raise RuntimeError(f"login answered {r.status}")
                async with s.ws_connect(f"{self.base}/api/v1/live?watch=center&center={self.center}") as ws:
                    self.connected.set()
                    while not self._stop.is_set():
                        try:
                            msg = await asyncio.wait_for(ws.receive(), 0.5)
                        except TimeoutError:
                            continue
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        t = time.monotonic()
                        with self.cond:
                            self.messages.append((t, json.loads(msg.data)))
                            self.cond.notify_all()
        except Exception as e:  # noqa: BLE001 - reported to the caller
            self.error = repr(e)
            self.connected.set()

    def issued(self, msg: dict[str, Any], service: str) -> int:
        svc = ((msg.get("center") or {}).get("services") or {}).get(service) or {}
        return int(svc.get("issued_today") or 0)

    def wait_issued(self, service: str, at_least: int, since: int, timeout: float) -> float | None:
        """Arrival time of the first message (index >= ``since``) with issued_today >= ``at_least``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            i = since
            while True:
                while i < len(self.messages):
                    t, m = self.messages[i]
                    if self.issued(m, service) >= at_least:
                        return t
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


def _measure(agent: Any, live: LiveClient, n: int, counts: dict[str, int]) -> dict[str, list[float]]:
    """``n`` rounds of: press A, time the print; press k1 next, time the display. The dashboard is not waited
    for inside the loop (a backlogged gateway would stall it): its arrival times are read from the live
    client's log afterwards, waiting at most ``DASH_TIMEOUT_S`` after the last press."""
    sim, cfg = agent.sim, agent.cfg
    emu = sim.emulator_of("p1")
    pin_a = cfg.dispenser.buttons["A"]
    k1 = next(k for k in cfg.keypads if k.id == "k1")
    out: dict[str, list[float]] = {"print": [], "display": [], "dashboard": [], "dashboard_timeouts": []}
    presses: list[tuple[float, int, int]] = []  # (t0, issued_today wanted, live message index then)
    for _ in range(n):
        printed = len(emu.tickets)
        counts["A"] += 1
        since = len(live.messages)
        t0 = time.monotonic()
        sim.press_pin(pin_a)
        presses.append((t0, counts["A"], since))
        emu.wait_tickets(printed + 1, timeout=15)
        out["print"].append(time.monotonic() - t0)
        label = agent.engine.waiting("A")[0].label  # c1 calls the oldest waiting ticket
        time.sleep(max(0.0, t0 + 1.2 - time.monotonic()))
        t1 = time.monotonic()
        sim.press_pin(k1.pins["next"])
        wait_until(lambda label=label: sim.shown("d1") == label, 15, 0.0005, f"display d1 showing {label}")
        out["display"].append(time.monotonic() - t1)
        time.sleep(max(0.0, t1 + 1.2 - time.monotonic()))
    live.wait_issued("A", counts["A"], presses[0][2], DASH_TIMEOUT_S)
    for t0, want, since in presses:
        td = live.wait_issued("A", want, since, 0)
        if td is None:
            out["dashboard_timeouts"].append(DASH_TIMEOUT_S)
        else:
            out["dashboard"].append(td - t0)
    return out


def run(n: int = 30, levels: tuple[tuple[str, int, float], ...] = LEVELS, warmup_s: float = 3.0,
        log: Any = print) -> list[dict[str, Any]]:
    from civiq.edge.cli import make_agent
    from civiq.edge.config import load_config

    tmp = Path(tempfile.mkdtemp(prefix="civiq-bench-latency-"))
    b = broker()
    gw = GatewayProc(b.port, tmp / "gw").start()
    agent = live = None
    results = []
    try:
        cfg = load_config(write_center(tmp, b.port, center=CENTER))
        agent = make_agent(cfg, simulate=True)
        agent.start()
        wait_until(lambda: agent.link.connected, 30, 0.05, "agent connected")
        live = LiveClient(gw.url, GatewayProc.USER, GatewayProc.PASSWORD, CENTER).start()
        if live.error:
            raise RuntimeError(live.error)
        counts = {"A": 0}
        # the gateway must know the center before we time anything: one ticket, seen on the dashboard
        counts["A"] += 1
        agent.sim.press_pin(cfg.dispenser.buttons["A"])
        if live.wait_issued("A", 1, 0, 30) is None:
            raise RuntimeError("the dashboard never showed the first ticket")
        time.sleep(1.2)
        for name, centers, rate in levels:
            flood = None
            if rate:
                flood = subprocess.Popen(
                    python_cmd("-m", "bench.ingest", "flood", "--port", str(b.port), "--centers", str(centers),
                               "--rate", str(rate), "--seconds", "3600"),
                    cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                time.sleep(warmup_s)
            m0, t_m0 = gw.metrics(), time.monotonic()
            try:
                r = _measure(agent, live, n, counts)
            finally:
                m1, t_m1 = gw.metrics(), time.monotonic()
                achieved = None
                if flood is not None:
                    flood.send_signal(signal.SIGTERM)
                    out, err = flood.communicate(timeout=60)
                    try:
                        achieved = json.loads(out.strip().splitlines()[-1])
                    except (ValueError, IndexError):
                        log(f"flood said: {err[-500:]}")
            ingested = (m1.get("civiq_gw_messages_total", m1.get("messages_total", 0))
                        - m0.get("civiq_gw_messages_total", m0.get("messages_total", 0))) / (t_m1 - t_m0)
            backlog = m1.get("civiq_gw_ingest_queue_depth", m1.get("ingest_queue_depth", math.nan))
            results.append({"level": name, "flood": achieved, "ingested_rate": ingested, "queue_depth": backlog,
                            **{k: dist(v) for k, v in r.items() if k != "dashboard_timeouts"},
                            "timeouts": len(r["dashboard_timeouts"])})
            log(f"  {name}: print p50 {dist(r['print']).p50 * 1000:.0f} ms, display p50 "
                f"{dist(r['display']).p50 * 1000:.0f} ms, dashboard p50 {dist(r['dashboard']).p50 * 1000:.0f} ms "
                f"({len(r['dashboard_timeouts'])} timeouts); gateway ingested {ingested:,.0f} msg/s")
            if flood is not None:
                time.sleep(2)  # let the gateway catch up before the next level
    finally:
        if live is not None:
            live.stop()
        if agent is not None:
            agent.stop()
            agent.sim.stop()
        gw.stop()
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def report(results: list[dict[str, Any]]) -> str:
    def ms(d: Any) -> list[str]:
        return [fmt(d.p50 * 1000, 0), fmt(d.p95 * 1000, 0), fmt(d.p99 * 1000, 0)] if d.n else ["–"] * 3

    rows = []
    for r in results:
        flood = r["flood"]
        bg = "none" if flood is None else f"{flood['rate']:,.0f} msg/s"
        for label, key in (("button → ticket printed", "print"), ("keypad next → display digits", "display"),
                           ("button → dashboard (WebSocket)", "dashboard")):
            d = r[key]
            extra = ""
            if key == "dashboard":
                extra = f"gateway ingested {r['ingested_rate']:,.0f} msg/s"
                if r["timeouts"]:
                    extra += (f"; **{r['timeouts']} of {d.n + r['timeouts']} not shown by {DASH_TIMEOUT_S:.0f} s "
                              "after the last press**")
            rows.append([r["level"], bg, label, d.n, *ms(d), extra])
    return md_table(["background", "flood achieved", "path", "N", "p50 ms", "p95 ms", "p99 ms", "note"], rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=30, help="presses per background level")
    ap.add_argument("--quick", action="store_true", help="idle only, 3 presses (smoke)")
    a = ap.parse_args(argv)
    levels = LEVELS[:1] if a.quick else LEVELS
    res = run(3 if a.quick else a.n, levels, log=lambda s: print(s, file=sys.stderr))
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
