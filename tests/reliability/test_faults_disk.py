"""Disk full on an agent: its state directory on a real 2 MiB tmpfs that a filler file fills up.

Policy (docs/reliability.md, "Disk full"): no ticket is issued without a durable record (a number that is not
saved could be issued twice after a restart), the dispenser's LED blinks, every health message carries a failed
``storage`` device (the gateway raises a device alert), the queue state already saved stays as it is, and
everything resumes by itself once space is freed: next numbers, gap-free seqs, nothing lost.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from civiq.clock import FakeClock
from civiq.contract import DeviceState, Event, EventType, Health, parse_payload
from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from tests.conftest import wait_for
from tests.e2e.centers import write_center
from tests.reliability.faultkit import advance_past_hold_down, start_gateway

PREFIX = "civiq/v1/test-xa/pi-1"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    return filler


STORAGE_ALERT = "test-xa/pi-1/storage/device_failed"


def test_disk_full_refuses_tickets_reports_and_recovers(tiny_disk: Path, tmp_path: Path, broker, recorder,  # noqa: ANN001
                                                        clock: FakeClock) -> None:
    rec = recorder(f"{PREFIX}/#")
    gw = start_gateway(broker, clock, tmp_path)  # a real gateway: the alert on-call would get

    def storage_alerts() -> list[tuple[str, str]]:
        return [(n.state, n.detail) for n in gw.alerts.notifications() if n.key == STORAGE_ALERT]

    cfg = load_config(write_center(tmp_path, broker.port, http_port=free_port()), env={})
    agent = make_agent(cfg, simulate=True, state_dir=tiny_disk / "state")
    agent.start()
    try:
        agent.sim.press_button("A")
        agent.sim.emulator_of("p1").wait_tickets(1, timeout=10)
        wait_for(lambda: agent.link.connected and agent.store.pending_count() == 0, what="A001 delivered")
        filler = fill(tiny_disk)

        presses = 0
        while agent.store_fault is None and presses < 50:  # the WAL may still have room for a few events
            agent.sim.press_button("B")
            presses += 1
        assert agent.store_fault is not None and "disk full" in agent.store_fault, "the disk never filled"
        issued_before = agent.engine.snapshot().services["B"].issued_today
        printed_before = len(agent.sim.printed("p1"))
        refused_before = agent.refused_presses
        for _ in range(3):
            agent.sim.press_button("B")
        assert agent.refused_presses == refused_before + 3
        assert agent.engine.snapshot().services["B"].issued_today == issued_before, "a ticket without a record"
        assert len(agent.sim.printed("p1")) == printed_before
        assert agent.hw.dispenser is not None and agent.hw.dispenser._fault  # noqa: SLF001 - the LED blinks
        agent.sim.press_key("k1", "next")  # a call needs an event too: refused, nothing breaks
        storage = wait_for(lambda: [d for p in rec.on("/health") for d in parse_payload(Health, p).devices
                                    if d.id == "storage"], what="a health with the failed storage")
        assert storage[-1].state == DeviceState.failed and "disk full" in storage[-1].detail
        hosts = [parse_payload(Health, p).host for p in rec.on("/health")]
        assert hosts[-1].disk_used_pct is not None and hosts[-1].disk_used_pct > 90
        alert = wait_for(storage_alerts, what="the gateway's storage alert")
        assert alert[0][0] == "firing" and "disk full" in alert[0][1], alert

        filler.unlink()  # the technician frees space: no restart needed
        agent.sim.press_button("B")
        wait_for(lambda: agent.store_fault is None, what="the agent notices it can write again")
        wait_for(lambda: agent.engine.snapshot().services["B"].issued_today == issued_before + 1)
        label = f"B{issued_before + 1:03d}"
        wait_for(lambda: any(label in t.all_text() for t in agent.sim.printed("p1")), what=f"{label} printed")
        last = agent.store.last_seq()
        seqs = [e.seq for e in agent.store.events()]
        assert seqs == list(range(1, last + 1)), "a gap or a reused seq in the event log"
        assert agent.store.integrity_ok()
        wait_for(lambda: sorted({parse_payload(Event, p).seq for p in rec.on("/event")}) == seqs,
                 what="every event at the broker")
        by_seq = {e.seq: e.data["ticket"] for e in (parse_payload(Event, p) for p in rec.on("/event"))
                  if e.type == EventType.ticket_issued}
        assert len(set(by_seq.values())) == len(by_seq), f"a ticket number issued twice: {by_seq}"
        wait_for(lambda: not any(d.id == "storage" for d in parse_payload(Health, rec.on("/health")[-1]).devices),
                 what="a health without the storage fault")
        assert gw.ingest.wait_idle(5)
        advance_past_hold_down(gw, clock, STORAGE_ALERT)  # the engine's clear_after_s
        wait_for(lambda: [s for s, _ in storage_alerts()] == ["firing", "resolved"], what="the alert resolved")
        assert gw.store.event_count("test-xa") == last, "the gateway is missing events"
    finally:
        agent.stop()
        agent.sim.stop()
        gw.stop()
    db = sqlite3.connect(tiny_disk / "state" / "edge.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    assert not os.path.exists(tiny_disk / "filler")
