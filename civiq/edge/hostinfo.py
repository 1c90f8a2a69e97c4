"""Host health of the Pi: CPU temperature, load, memory, disk, clock quality, uptime.

Reads /proc and /sys directly (no psutil: it is not in our field dependency list and these are five files).
Every reading is optional: on a machine without a thermal zone the value is simply ``None``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

from civiq.clock import plausible
from civiq.contract import ClockQuality, HostHealth


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def cpu_temp_c() -> float | None:
    raw = _read("/sys/class/thermal/thermal_zone0/temp")
    try:
        return round(int(raw) / 1000, 1) if raw else None
    except ValueError:
        return None


def mem_used_pct() -> float | None:
    raw = _read("/proc/meminfo")
    if not raw:
        return None
    info = {}
    for line in raw.splitlines():
        k, _, v = line.partition(":")
        try:
            info[k] = int(v.split()[0])
        except (ValueError, IndexError):
            continue
    total, avail = info.get("MemTotal"), info.get("MemAvailable")
    if not total or avail is None:
        return None
    return round(100 * (total - avail) / total, 1)


def uptime_s() -> float | None:
    raw = _read("/proc/uptime")
    try:
        return float(raw.split()[0]) if raw else None
    except (ValueError, IndexError):
        return None


def ntp_synchronized() -> bool | None:
    """``timedatectl``'s NTPSynchronized, or None where it cannot be asked (no systemd)."""
    exe = shutil.which("timedatectl")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "show", "-p", "NTPSynchronized", "--value"], capture_output=True,
                             text=True, timeout=2)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() == "yes"


def _run(args: list[str]) -> str | None:
    exe = shutil.which(args[0])
    if not exe:
        return None
    try:
        out = subprocess.run([exe, *args[1:]], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0}


def clock_offset_s() -> float | None:
    """The system clock's offset from NTP time in seconds, from chrony or systemd-timesyncd; None if neither
    can tell (no time daemon, no sync yet)."""
    text = _run(["chronyc", "-c", "tracking"])
    if text:
        fields = text.strip().split(",")
        try:
            return float(fields[4])  # "System time": seconds the clock is off
        except (IndexError, ValueError):
            pass
    text = _run(["timedatectl", "timesync-status"])
    if text:
        for line in text.splitlines():
            key, _, value = line.strip().partition(":")
            if key == "Offset":
                v = value.strip()
                for unit in sorted(_UNITS, key=len, reverse=True):
                    if v.endswith(unit):
                        try:
                            return float(v[: -len(unit)]) * _UNITS[unit]
                        except ValueError:
                            return None
    return None


def clock_quality(now: datetime, synced: bool | None) -> ClockQuality:
    if not plausible(now):
        return ClockQuality.suspect
    return ClockQuality.synced if synced else ClockQuality.unsynced


def host_health(state_dir: str | Path, now: datetime, clock_offset_s: float | None = None,
                synced: bool | None = None) -> HostHealth:
    try:
        du = shutil.disk_usage(state_dir)
        disk_pct, free_mb = round(100 * du.used / du.total, 1), round(du.free / 2**20, 1)
    except OSError:
        disk_pct = free_mb = None
    try:
        load1 = round(os.getloadavg()[0], 2)
    except OSError:
        load1 = None
    return HostHealth(cpu_temp_c=cpu_temp_c(), load1=load1, mem_used_pct=mem_used_pct(), disk_used_pct=disk_pct,
                      disk_free_mb=free_mb, clock_offset_s=clock_offset_s, clock=clock_quality(now, synced),
                      uptime_s=uptime_s())
