"""Shared pieces of the benchmarks: the machine, percentiles, tables, and the real services they start.

Everything here starts *real* programs on free ports (Mosquitto through :class:`civiq.dev.broker.Mosquitto`,
VictoriaMetrics, civiq agents and gateway workers as subprocesses) and cleans them up; a benchmark never
mocks the part it measures. The parts the tests use too (waiting, VictoriaMetrics, the gateway process, the
webhook receiver) are in civiq/dev/harness.py.

>>> dist([3.0, 1.0, 2.0]).p50
2.0
>>> md_table(["a", "b"], [[1, "x"]])
'| a | b |\\n|---|---|\\n| 1 | x |'
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from civiq.dev.broker import Mosquitto, free_port
from civiq.dev.harness import REPO as REPO
from civiq.dev.harness import GatewayProc as GatewayProc
from civiq.dev.harness import VictoriaMetrics as _VictoriaMetrics
from civiq.dev.harness import child_env as child_env
from civiq.dev.harness import wait_until as wait_until
from civiq.edge.sim.example import write_sim_center
from civiq.mqttclient import make_client

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
    """The shared runner (civiq/dev/harness.py); the bench deletes the storage when it stops it."""

    def stop(self) -> None:  # type: ignore[override]
        self.remove()


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
