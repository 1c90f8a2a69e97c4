"""Shared pieces of the benchmarks: the machine, percentiles, tables, and the real services they start.

Everything here starts *real* programs on free ports (Mosquitto through :class:`civiq.dev.broker.Mosquitto`,
VictoriaMetrics, civiq agents and gateway workers as subprocesses) and cleans them up; a benchmark never
mocks the part it measures.

>>> dist([3.0, 1.0, 2.0]).p50
2.0
>>> md_table(["a", "b"], [[1, "x"]])
'| a | b |\\n|---|---|\\n| 1 | x |'
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from civiq.dev.broker import Mosquitto, free_port, wait_port
from civiq.dev.tsdb import VictoriaMetrics as _VictoriaMetrics
from civiq.edge.sim.example import write_sim_center
from civiq.mqttclient import make_client

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")

# Mosquitto for benchmarks: queues that never drop (DEV_CONFIG already sets max_queued_messages 1,000,000 and
# sys_interval 1); no byte limit on queues either.
BENCH_BROKER_EXTRA = "max_queued_bytes 0\n"


# ============================================================================================ machine
def machine() -> dict[str, str]:
    """nproc, CPU model, memory, kernel and Python: the header of docs/benchmarks.md."""
    model = "unknown"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.lower().startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for ln in Path("/proc/meminfo").read_text().splitlines():
            if ln.startswith("MemTotal:"):
                mem = f"{int(ln.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count() or 0), "cpu": model, "memory": mem,
            "kernel": platform.release(), "python": platform.python_version(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


# ============================================================================================ statistics
@dataclass(frozen=True)
class Dist:
    """A distribution summary (values in the unit the caller measured)."""

    n: int
    p50: float
    p95: float
    p99: float
    min: float
    max: float
    mean: float


def percentile(xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in 0..100 (NaN for no data)."""
    if not xs:
        return math.nan
    s = sorted(xs)
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def dist(xs: Sequence[float]) -> Dist:
    if not xs:
        nan = math.nan
        return Dist(0, nan, nan, nan, nan, nan, nan)
    return Dist(len(xs), percentile(xs, 50), percentile(xs, 95), percentile(xs, 99), min(xs), max(xs),
                sum(xs) / len(xs))


def fmt(x: float, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# ============================================================================================ waiting
def wait_until(fn: Callable[[], T], timeout: float, interval: float = 0.01, what: str = "condition") -> T:
    """Poll ``fn`` until it returns something truthy; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ============================================================================================ services
def broker(extra: str = "") -> Mosquitto:
    """A fresh Mosquitto that drops nothing (big queues, $SYS every second)."""
    return Mosquitto(extra_config=BENCH_BROKER_EXTRA + extra).start()


class SysWatch:
    """Follows ``$SYS/broker/publish/messages/dropped`` for a broker's whole life (paho, own thread).

    Mosquitto publishes it (retained) when it changes, at most every ``sys_interval`` (1 s here).
    ``value`` is the last one seen (None: never seen), ``seen`` how many updates arrived."""

    TOPIC = "$SYS/broker/publish/messages/dropped"

    def __init__(self, port: int) -> None:
        self.value: int | None = None
        self.seen = 0
        self.c = make_client(f"bench-sys-{port}-{os.getpid()}")
        self.c.on_connect = lambda cl, *a: cl.subscribe(self.TOPIC, 0)
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, 30)
        self.c.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            self.value = int(msg.payload.split()[0])
            self.seen += 1
        except (ValueError, IndexError):
            pass

    def read(self, settle_s: float = 2.5) -> int | None:
        """The counter now: any change is published within one sys_interval (1 s), so wait a little more."""
        time.sleep(settle_s)
        return self.value

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class VictoriaMetrics(_VictoriaMetrics):
    """The shared runner (civiq/dev/tsdb.py); the bench deletes the storage when it stops it."""

    def stop(self) -> None:  # type: ignore[override]
        self.remove()

    def count_stable(self, match: str, expect: int, timeout: float = 30.0) -> int:
        """Count until it reaches ``expect`` or stops moving for two reads; returns the last count."""
        deadline = time.monotonic() + timeout
        last = -1
        while True:
            n = self.count(match)
            if n >= expect or (n == last and time.monotonic() > deadline - timeout / 2) or \
                    time.monotonic() > deadline:
                return n
            last = n
            time.sleep(0.3)


def child_env(**extra: str) -> dict[str, str]:
    """Environment for civiq/bench subprocesses: the repo on the path (works from a clean clone)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra)
    return env


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, *args]


# ============================================================================================ /proc
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (``/proc/<pid>/stat`` utime + stime)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kb(pid: int, key: str = "VmRSS") -> int:
    """A ``/proc/<pid>/status`` memory line in kB (VmRSS, VmHWM, RssAnon...)."""
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith(key + ":"):
            return int(ln.split()[1])
    raise KeyError(key)


# ============================================================================================ a center config
def write_center(dir: Path, port: int, *, center: str = "bench-xa", node: str = "pi-1", host: str = "127.0.0.1",
                 keepalive: int = 5, http_port: int = 0) -> Path:
    """The simulated example center (printer, two Modbus displays, two GPIO keypads, a Nextion QR board)."""
    return write_sim_center(dir, port, center=center, node=node, host=host, keepalive=keepalive,
                            http_port=http_port or free_port(), name=f"Trung tâm Phục vụ hành chính công {center}")


# ============================================================================================ a gateway process
class GatewayProc:
    """``python -m civiq gateway run --config`` in its own process, with a dashboard user.

    >>> gw = GatewayProc(mqtt_port, Path("/tmp/gw"), alerts={"webhooks": [url]}).start()  # doctest: +SKIP
    """

    USER, PASSWORD = "bench", "bench-password-123"
    extra_env: dict[str, str] = {}  # more environment for the process (e.g. NOTIFY_SOCKET)

    def __init__(self, mqtt_port: int, dir: Path, **settings: Any) -> None:
        import yaml

        self.dir = dir
        self.http_port = free_port()
        dir.mkdir(parents=True, exist_ok=True)
        cfg = {"gateway_id": "gw-bench", "data_dir": str(dir / "data"),
               "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
               "http": {"host": "127.0.0.1", "port": self.http_port,
                        "public_base_url": f"http://127.0.0.1:{self.http_port}"}}
        cfg.update(settings)
        self.config = dir / "gateway.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.http_port}"

    def start(self) -> GatewayProc:
        from civiq.gateway.web.auth import UserStore  # what `civiq gateway user` does, without a process

        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        users = UserStore(self.dir / "data" / "users.db")
        if users.get(self.USER) is None:  # a restart on the same data dir keeps its users
            users.add_user(self.USER, self.PASSWORD, "province_admin")
        users.close()
        with open(self.dir / "gateway.log", "ab") as log:
            self.proc = subprocess.Popen(python_cmd("-m", "civiq", "gateway", "run", "--config", str(self.config)),
                                         cwd=REPO, env=child_env(**self.extra_env), stdout=log, stderr=log)
        wait_port("127.0.0.1", self.http_port, 60)
        return self

    def metrics(self) -> dict[str, float]:
        """The gateway's /metrics, summed per metric name (labels dropped)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for ln in text.splitlines():
            if ln and not ln.startswith("#"):
                name, _, value = ln.rpartition(" ")
                name = name.split("{", 1)[0]
                try:
                    out[name] = out.get(name, 0.0) + float(value)
                except ValueError:
                    pass
        return out

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
