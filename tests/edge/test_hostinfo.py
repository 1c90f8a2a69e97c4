"""Host health readings: what a Pi reports about itself."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from civiq.contract import ClockQuality
from civiq.edge import hostinfo


def _fake_tool(bin_dir: Path, name: str, output: str) -> None:
    exe = bin_dir / name
    exe.write_text(f"#!/bin/sh\ncat <<'OUT'\n{output}\nOUT\n")
    exe.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}/usr/bin:/bin")
    return d


def test_offset_from_timesyncd(bin_dir: Path) -> None:
    _fake_tool(bin_dir, "timedatectl", "       Server: 10.0.0.1 (ntp.example)\n       Offset: -1.250ms\n        Delay: 4ms")
    assert hostinfo.clock_offset_s() == pytest.approx(-0.00125)


def test_offset_from_chrony_first(bin_dir: Path) -> None:
    _fake_tool(bin_dir, "chronyc", "A29FC87B,162.159.200.123,3,1700000000.1,0.000042,0.00001,-0.000005")
    _fake_tool(bin_dir, "timedatectl", "Offset: +9s")
    assert hostinfo.clock_offset_s() == pytest.approx(0.000042)


def test_no_time_daemon_means_unknown(bin_dir: Path) -> None:
    assert hostinfo.clock_offset_s() is None
    assert hostinfo.ntp_synchronized() is None


def test_host_health_readings(tmp_path: Path) -> None:
    h = hostinfo.host_health(tmp_path, datetime(2026, 1, 5, tzinfo=UTC), clock_offset_s=0.2, synced=True)
    assert h.clock == ClockQuality.synced and h.clock_offset_s == 0.2
    assert 0 < h.disk_used_pct < 100 and h.disk_free_mb > 0
    assert 0 < h.mem_used_pct < 100 and h.uptime_s > 0
    booted_1970 = hostinfo.host_health(tmp_path, datetime(1970, 1, 1, tzinfo=UTC))
    assert booted_1970.clock == ClockQuality.suspect
