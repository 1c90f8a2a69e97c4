"""The device watch (civiq/edge/device_watch.py) without a broker: emulated devices at the wire, the real
queue engine; what is checked is the device events logged and the health reports sent."""

from __future__ import annotations

from pathlib import Path

from civiq.contract import DeviceState
from civiq.edge.queue.store import StoreFull
from tests.conftest import wait_for
from tests.edge.agent_parts import agent_parts


def test_a_printer_fault_is_one_event_and_one_report_then_its_recovery(tmp_path: Path) -> None:
    with agent_parts(tmp_path) as p:
        printer = p.hw.printers["p1"]
        assert p.watch.check(printer).state is DeviceState.ok
        assert p.of("device.fault") == [] and p.published == []  # fine from the start: nothing to say

        p.sim.set_printer("p1", paper_out=True)
        printer.poll()
        h = p.watch.check(printer)
        assert h.state is DeviceState.failed and "paper" in h.detail.lower()
        assert p.of("device.fault") == [{"device": "p1", "kind": "printer", "state": "failed", "detail": h.detail}]
        assert len(p.published) == 1
        report = {d.id: d for d in p.published[0].devices}
        assert report["p1"].state is DeviceState.failed

        p.watch.check(printer)  # no change: no second event, no second report
        assert len(p.of("device.fault")) == 1 and len(p.published) == 1

        p.sim.set_printer("p1", paper_out=False)
        printer.poll()
        assert p.watch.check(printer).state is DeviceState.ok
        assert [e["device"] for e in p.of("device.recovered")] == ["p1"]
        assert len(p.published) == 2


def test_poll_all_finds_an_unplugged_display_on_its_own_worker(tmp_path: Path) -> None:
    with agent_parts(tmp_path) as p:
        p.sim.unplug("d1")
        known = p.watch.poll_all()  # returns at once: the polls run on the devices' workers
        assert {h.id for h in known} == set(p.hw.devices)
        wait_for(lambda: any(e["device"] == "d1" for e in p.of("device.fault")), timeout=5,
                 what="the unplugged display reported")
        assert {d.id: d.state for d in p.watch.health().devices}["d1"] in (DeviceState.failed,
                                                                           DeviceState.offline)


def test_a_full_disk_is_a_failed_storage_device_until_an_event_is_saved(tmp_path: Path) -> None:
    with agent_parts(tmp_path) as p:
        told: list[str | None] = []
        p.watch.on_store.append(told.append)
        assert "storage" not in {d.id for d in p.watch.health().devices}

        p.watch.store_full(StoreFull("database or disk is full"))
        p.watch.store_full(StoreFull("database or disk is full"))  # again: reported once
        storage = {d.id: d for d in p.watch.health().devices}["storage"]
        assert storage.state is DeviceState.failed and "disk full" in storage.detail
        assert len(p.published) == 1 and "storage" in {d.id for d in p.published[0].devices}

        p.watch.store_recovered()
        assert "storage" not in {d.id for d in p.watch.health().devices}
        assert told[-1] is None and all(t and "disk full" in t for t in told[:-1])
        assert len(p.published) == 2


def test_a_report_that_cannot_be_sent_only_logs(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    with agent_parts(tmp_path) as p:
        def broken(health: object) -> None:
            raise OSError("link down")

        p.watch._publish = broken  # noqa: SLF001 - the link's send failing
        p.watch.publish()
        assert "health not published" in caplog.text
        p.watch.health()  # still answers
