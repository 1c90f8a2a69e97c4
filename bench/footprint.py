"""Edge agent footprint: memory and CPU of ``civiq edge run --simulate``, idle and at a peak.
``python -m bench.footprint``.

The agent is a subprocess connected to a real Mosquitto; it is sampled every 0.5 s from ``/proc/<pid>/status``
(VmRSS; VmHWM = the peak) and ``/proc/<pid>/stat`` (utime + stime → CPU as a share of one core). Phases:

* **idle**: nobody at the center (device polling every 3 s, QR board cycling, health every 15 s);
* **peak**: the local simulator API drives ``--tickets`` tickets/s (alternating service buttons A/B) and
  ``--calls`` calls/s (``next`` on both keypads): by default 5 tickets/s and 4 calls/s, ~60× the busiest
  hour of a large center (~300 tickets/h). Every ticket is rendered as a raster (Pillow), printed over the
  pty and published; every call updates a Modbus display and publishes.

Caveat: in simulation the device emulators (ESC/POS decoding of every raster ticket, the Modbus boards, the
Nextion board) run *inside* the agent process, so these figures over-state what the agent alone needs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    broker,
    child_env,
    fmt,
    md_table,
    proc_cpu_s,
    proc_status_kb,
    python_cmd,
    wait_until,
    write_center,
)

PI_ZERO_2W = {"ram_mb": 512, "cores": 4, "slowdown": 10.0}


def _post(url: str) -> int:
    req = urllib.request.Request(url, method="POST", data=b"")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except OSError:
        return 0


def _api_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/state", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def _sample(pid: int, seconds: float, drive: Callable[[float], None] | None = None) -> dict[str, float]:
    """Sample RSS every 0.5 s for ``seconds`` while ``drive(elapsed)`` runs; CPU share over the window."""
    rss: list[int] = []
    c0, t0 = proc_cpu_s(pid), time.monotonic()
    next_sample = t0
    while (now := time.monotonic()) - t0 < seconds:
        if now >= next_sample:
            rss.append(proc_status_kb(pid, "VmRSS"))
            next_sample += 0.5
        if drive is not None:
            drive(now - t0)
        time.sleep(0.005)
    c1, t1 = proc_cpu_s(pid), time.monotonic()
    return {"cpu_pct": (c1 - c0) / (t1 - t0) * 100, "rss_mb_mean": sum(rss) / len(rss) / 1024,
            "rss_mb_max": max(rss) / 1024, "hwm_mb": proc_status_kb(pid, "VmHWM") / 1024, "seconds": t1 - t0}


def run(idle_s: float = 15.0, peak_s: float = 20.0, tickets: float = 5.0, calls: float = 4.0,
        log: Callable[[str], None] = print, settle_s: float = 5.0) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="civiq-bench-footprint-"))
    b = broker()
    proc = None
    try:
        cfg = write_center(tmp, b.port, center="bench-fp")
        import yaml

        http_port = yaml.safe_load(cfg.read_text())["http"]["port"]
        url = f"http://127.0.0.1:{http_port}"
        t_start = time.monotonic()
        proc = subprocess.Popen(python_cmd("-m", "civiq", "edge", "run", str(cfg), "--simulate"), cwd=REPO,
                                env=child_env(), stdout=subprocess.DEVNULL, stderr=open(tmp / "agent.log", "wb"))  # noqa: SIM115
        wait_until(lambda: _api_up(url), 60, 0.05, "the agent's local API")
        startup_s = time.monotonic() - t_start
        time.sleep(settle_s)  # settle: first device poll, birth, health, QR page
        idle = _sample(proc.pid, idle_s)
        log(f"  idle: {idle['cpu_pct']:.1f} % CPU, RSS {idle['rss_mb_max']:.0f} MB")
        sent = {"tickets": 0, "calls": 0, "failed": 0}

        def drive(elapsed: float) -> None:
            while sent["tickets"] < elapsed * tickets:
                ok = _post(f"{url}/sim/press/{'AB'[sent['tickets'] % 2]}") == 200
                sent["tickets"] += 1
                sent["failed"] += not ok
            while sent["calls"] < elapsed * calls:
                ok = _post(f"{url}/sim/key/{('k1', 'k2')[sent['calls'] % 2]}/next") == 200
                sent["calls"] += 1
                sent["failed"] += not ok

        peak = _sample(proc.pid, peak_s, drive)
        with urllib.request.urlopen(f"{url}/sim/printers/p1/tickets", timeout=10) as r:
            printed = len(json.loads(r.read()))
        peak.update(tickets_per_s=sent["tickets"] / peak["seconds"], calls_per_s=sent["calls"] / peak["seconds"],
                    printed=printed, sent=sent["tickets"], failed=sent["failed"])
        log(f"  peak: {peak['cpu_pct']:.1f} % CPU, RSS {peak['rss_mb_max']:.0f} MB, {printed}/{sent['tickets']} "
            "tickets printed")
        return {"startup_s": startup_s, "idle": idle, "peak": peak}
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def report(r: dict[str, Any]) -> str:
    i, p = r["idle"], r["peak"]
    rows = [["idle", fmt(i["cpu_pct"]), fmt(i["rss_mb_mean"], 0), fmt(i["rss_mb_max"], 0), fmt(i["hwm_mb"], 0), ""],
            [f"peak: {p['tickets_per_s']:.1f} tickets/s + {p['calls_per_s']:.1f} calls/s", fmt(p["cpu_pct"]),
             fmt(p["rss_mb_mean"], 0), fmt(p["rss_mb_max"], 0), fmt(p["hwm_mb"], 0),
             f"{p['printed']}/{p['sent']} tickets printed, {p['failed']} API errors"]]
    out = md_table(["phase", "CPU (% of one core)", "RSS mean MB", "RSS max MB", "VmHWM MB", "note"], rows)
    slow = PI_ZERO_2W["slowdown"]
    per_ticket = max(0.0, p["cpu_pct"] - i["cpu_pct"]) / max(p["tickets_per_s"], 1e-9)
    real = i["cpu_pct"] + per_ticket * 300 / 3600
    out += (f"\n\nStart-up to a serving local API: {r['startup_s']:.1f} s.\n\n"
            f"Against a Raspberry Pi Zero 2 W ({PI_ZERO_2W['ram_mb']} MB RAM, {PI_ZERO_2W['cores']} Cortex-A53 "
            f"cores at 1 GHz): memory {p['hwm_mb']:.0f} MB peak is {p['hwm_mb'] / PI_ZERO_2W['ram_mb']:.0%} of "
            f"the RAM. Assuming one A53 core runs this Python code {slow:.0f}× slower than one core here "
            f"(a deliberately pessimistic factor), the peak needs ≈ {p['cpu_pct'] * slow:.0f} % of one core "
            f"and idle ≈ {i['cpu_pct'] * slow:.0f} %. The peak here is ~60× the busiest real hour (300 tickets/h "
            f"≈ 0.08/s); scaled to that hour the agent needs ≈ {real:.1f} % here, ≈ {real * slow:.0f} % of one "
            f"A53 core. The agent is one Python process (one core at a time, GIL), so the other three cores are "
            f"spare for the OS.")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.footprint", description=__doc__.splitlines()[0])
    ap.add_argument("--idle", type=float, default=15.0)
    ap.add_argument("--peak", type=float, default=20.0)
    ap.add_argument("--tickets", type=float, default=5.0)
    ap.add_argument("--calls", type=float, default=4.0)
    a = ap.parse_args(argv)
    print(report(run(a.idle, a.peak, a.tickets, a.calls, log=lambda s: print(s, file=sys.stderr))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
