"""Offline detection: how long after an edge agent dies, hangs or loses its network does on-call hear of it?
``python -m bench.offline``.

Each trial starts a real agent process (``python -m civiq edge run CONFIG --simulate``, MQTT keepalive
``--keepalive`` s, 5 by default) with its own node id, waits for its birth, then injects one fault and times
the ``node_offline`` alert's arrival at a local webhook (the gateway's ``WebhookChannel``; the gateway is a
``civiq gateway run`` process). Faults:

* ``kill -9``: the process dies; the kernel resets its TCP connection, Mosquitto publishes the Last Will;
* ``SIGSTOP``: the process hangs with its socket open; only the broker's keepalive check (1.5 × keepalive)
  notices it;
* ``network cut``: the agent runs in its own network namespace, joined to the host by a veth pair; the
  namespace side of the link is set down (the Pi's cable pulled): no RST, no ICMP, silence. Needs root and
  ``ip netns``; skipped with a note otherwise.

Also recorded: when the Last Will reached an MQTT subscriber (the broker's part of the delay). Agents run 5
at a time (faults 0.3 s apart) to keep the run short; alert ``clear_after_s``/``flap_window_s`` are 0 and
every trial has a fresh node, so no trial is damped by the previous one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
from civiq.dev.harness import Webhook

CENTER = "bench-off"
MODES = ("kill -9", "SIGSTOP", "network cut")
HEARTBEAT_TIMEOUT_S = 30.0
NET_PREFIX = "10.231"



class StatusWatch:
    """An MQTT subscriber on every node's status: births and Last Wills, timestamped."""

    def __init__(self, port: int) -> None:
        from civiq.mqttclient import make_client

        self.births: dict[str, float] = {}
        self.deaths: dict[str, float] = {}
        self.c = make_client(f"bench-status-{port}")
        self.c.on_connect = lambda cl, *a: cl.subscribe(f"civiq/v1/{CENTER}/+/status", 1)
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        t = time.monotonic()
        node = msg.topic.split("/")[3]
        try:
            online = bool(json.loads(msg.payload).get("online"))
        except ValueError:
            return
        (self.births if online else self.deaths).setdefault(node, t)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def netns_available() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"cqprobe{os.getpid() % 10000}"
    ok = subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return ok


class NetSlot:
    """A network namespace ``cqoff<k>`` joined to the host by veth ``cqh<k>`` (host, .1) / ``cqa<k>`` (.2)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.ns, self.host_if, self.ns_if = f"cqoff{k}", f"cqh{k}", f"cqa{k}"
        self.host_ip, self.ns_ip = f"{NET_PREFIX}.{k}.1", f"{NET_PREFIX}.{k}.2"

    def _ip(self, *args: str, ns: bool = False) -> None:
        cmd = (["ip", "netns", "exec", self.ns, "ip"] if ns else ["ip"]) + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")

    def create(self) -> NetSlot:
        self.delete()
        self._ip("netns", "add", self.ns)
        self._ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        self._ip("link", "set", self.ns_if, "netns", self.ns)
        self._ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        self._ip("link", "set", self.host_if, "up")
        self._ip("addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if, ns=True)
        self._ip("link", "set", self.ns_if, "up", ns=True)
        self._ip("link", "set", "lo", "up", ns=True)
        return self

    def cut(self) -> None:
        self._ip("link", "set", self.ns_if, "down", ns=True)

    def mend(self) -> None:
        self._ip("link", "set", self.ns_if, "up", ns=True)

    def delete(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


def _start_agent(tmp: Path, port: int, node: str, keepalive: int, slot: NetSlot | None) -> subprocess.Popen[bytes]:
    host = slot.host_ip if slot else "127.0.0.1"
    cfg = write_center(tmp / node, port, center=CENTER, node=node, host=host, keepalive=keepalive)
    cmd = python_cmd("-m", "civiq", "edge", "run", str(cfg), "--simulate")
    if slot is not None:
        cmd = ["ip", "netns", "exec", slot.ns, *cmd]
    log = open(tmp / f"{node}.log", "wb")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(cmd, cwd=REPO, env=child_env(), stdout=log, stderr=log)


def run(n: int = 10, keepalive: int = 5, batch: int = 5, modes: tuple[str, ...] = MODES,
        log: Callable[[str], None] = print, heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S) -> dict[str, Any]:
    """``n`` trials per fault mode; ``heartbeat_timeout_s`` is the gateway's (its alert grace after start)."""
    tmp = Path(tempfile.mkdtemp(prefix="civiq-bench-offline-"))
    use_netns = "network cut" in modes and netns_available()
    slots = [NetSlot(200 + k) for k in range(batch)] if use_netns else []
    notes: list[str] = []
    if "network cut" in modes and not use_netns:
        notes.append("network cut skipped: `ip netns` is not usable here (needs root and iproute2)")
        modes = tuple(m for m in modes if m != "network cut")
    for s in slots:
        s.create()
    extra = "".join(f"listener {{port}} {s.host_ip}\n" for s in slots)
    b = None
    hook = Webhook()
    results: dict[str, dict[str, list[float]]] = {}
    try:
        from civiq.dev.broker import free_port

        port = free_port()
        from civiq.dev.broker import Mosquitto

        b = Mosquitto(port, extra_config="max_queued_bytes 0\n" + extra.format(port=port)).start() if slots \
            else broker()
        port = b.port
        gw = GatewayProc(port, tmp / "gw", heartbeat_timeout_s=heartbeat_timeout_s,
                         alerts={"webhooks": [hook.url], "raise_after_s": 0, "clear_after_s": 0,
                                 "flap_window_s": 0, "mqtt": False}).start()
        t_gw = time.monotonic()
        watch = StatusWatch(port)
        try:
            for mode in modes:
                res: dict[str, list[float]] = {"alert": [], "will": [], "missed": [], "false": []}
                done = 0
                while done < n:
                    k = min(batch, n - done)
                    nodes = [f"{mode.split()[0].lower().replace('sigstop', 'stop')}-{done + i}" for i in range(k)]
                    procs = []
                    for i, node in enumerate(nodes):
                        procs.append(_start_agent(tmp, port, node, keepalive, slots[i] if mode == "network cut"
                                                  else None))
                    try:
                        wait_until(lambda nodes=nodes: all(x in watch.births for x in nodes), 90, 0.05,
                                   f"births of {nodes}")
                        # the gateway waits one heartbeat timeout after start before any node_offline
                        time.sleep(max(0.0, t_gw + heartbeat_timeout_s + 1 - time.monotonic()))
                        time.sleep(max(0.0, max(watch.births[x] for x in nodes) + 0.5 - time.monotonic()))
                        t_fault = {}
                        for i, (node, p) in enumerate(zip(nodes, procs, strict=True)):
                            t_fault[node] = time.monotonic()
                            if mode == "kill -9":
                                p.send_signal(signal.SIGKILL)
                            elif mode == "SIGSTOP":
                                p.send_signal(signal.SIGSTOP)
                            else:
                                slots[i].cut()
                            time.sleep(0.3)
                        alerted = {}
                        for node in nodes:
                            alerted[node] = hook.wait(node, t_fault[node], 6 * keepalive + 30)
                        # the broker's will may come after the gateway's alert (its silence watch): wait for it
                        # too, so the will column measures the broker and not the end of the trial
                        try:
                            wait_until(lambda nodes=nodes: all(x in watch.deaths for x in nodes), 3 * keepalive,
                                       0.05, "the wills")
                        except TimeoutError:
                            pass  # reported as a missing will (the column's N), not a failure
                        for node in nodes:
                            t = alerted[node]
                            if hook.early(node, t_fault[node]):
                                res["false"].append(1)
                            if t is None:
                                res["missed"].append(1)
                            else:
                                res["alert"].append(t - t_fault[node])
                            if node in watch.deaths:
                                res["will"].append(watch.deaths[node] - t_fault[node])
                    finally:
                        for p in procs:
                            if p.poll() is None:
                                p.send_signal(signal.SIGKILL)
                            p.wait(30)
                        if mode == "network cut":
                            for s in slots[:k]:
                                s.mend()
                    done += k
                results[mode] = res
                d = dist(res["alert"])
                log(f"  {mode}: alert p50 {d.p50:.2f} s, max {d.max:.2f} s, missed {len(res['missed'])}")
        finally:
            watch.close()
            gw.stop()
    finally:
        hook.close()
        if b is not None:
            b.stop()
        for s in slots:
            s.delete()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"keepalive": keepalive, "results": results, "notes": notes, "n": n}


def report(r: dict[str, Any]) -> str:
    ka = r["keepalive"]
    rows = []
    for mode, res in r["results"].items():
        a, w = dist(res["alert"]), dist(res["will"])
        rows.append([mode, a.n, fmt(w.p50, 2), fmt(w.max, 2), fmt(a.p50, 2), fmt(a.p95, 2), fmt(a.max, 2),
                     f"{a.max / ka:.2f}", len(res["missed"]), len(res["false"])])
    out = md_table(["fault", "N", "Last Will at a subscriber p50 (s)", "Last Will max (s)",
                    "alert at webhook p50 (s)", "p95 (s)", "max (s)", "max ÷ keepalive", "missed",
                    "false alarms before the fault"], rows)
    out += (f"\n\nMQTT keepalive {ka} s, target {1.5 * ka + 2:.1f} s (1.5 × keepalive + 2 s). The edge publishes "
            f"something at least every {ka / 2:.1f} s (its birth's `alive_s`), so the MQTT rule (1.5 × keepalive "
            f"after the last packet) alone would put the broker's will {1.5 * ka - ka / 2:.1f}–{1.5 * ka:.1f} s after "
            "a hang or a cut; the Last Will columns show what Mosquitto adds with its whole-second clock. The "
            f"gateway's silence watch declares the node offline {1.5 * ka + 0.5:.1f} s after its last message at the "
            "latest, whichever comes first (docs/mqtt.md, 'Liveness').")
    for note in r["notes"]:
        out += f"\n\n{note}"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.offline", description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--keepalive", type=int, default=5)
    ap.add_argument("--modes", default=",".join(MODES))
    a = ap.parse_args(argv)
    r = run(a.n, a.keepalive, modes=tuple(m.strip() for m in a.modes.split(",")),
            log=lambda s: print(s, file=sys.stderr))
    print(report(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
