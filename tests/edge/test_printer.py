"""ThermalPrinter driver against EscPosEmulator over a real pty: printing, status faults, unplug and replug."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from civiq.contract import DeviceState
from civiq.edge.devices.printer import PrinterError, ThermalPrinter, TicketPrint
from civiq.edge.devices.transport import SerialTransport
from civiq.edge.sim.printer import EscPosEmulator
from tests.conftest import wait_for

TICKET = TicketPrint(
    center_name="Trung tâm Phục vụ hành chính công phường Bến Nghé",
    label="B014",
    service_name_vi="Đất đai",
    service_name_en="Land",
    issued_local="08:15 05/01/2026",
    ahead=4,
    eta_text="~15 phút / min",
    qr_url="https://dichvucong.example/t/hcm-bennghe/B014",
)


@pytest.fixture
def emu() -> Iterator[EscPosEmulator]:
    e = EscPosEmulator(115200).start()  # a real line speed (bytes take baud/10 per second)
    yield e
    e.stop()


@pytest.fixture
def link(tmp_path: Path, emu: EscPosEmulator) -> Path:
    """A stable device name pointing at the emulator's pty, as udev's /dev/civiq-printer would."""
    path = tmp_path / "civiq-printer"
    path.symlink_to(emu.port)
    return path


def make_printer(port: Path | str, **kw) -> ThermalPrinter:  # noqa: ANN003
    return ThermalPrinter("p1", SerialTransport(str(port), 19200, timeout=0.3), status_timeout=0.3, **kw)


def only_status_queries(data: bytes) -> bool:
    return len(data) % 3 == 0 and all(data[i : i + 2] == b"\x10\x04" for i in range(0, len(data), 3))


def test_prints_a_ticket_the_citizen_can_read(emu: EscPosEmulator, link: Path) -> None:
    printer = make_printer(link)
    printer.print_ticket(TICKET)
    [t] = emu.wait_tickets(1)
    assert "B014" in t.text  # the number, as big native text
    assert t.qr == [TICKET.qr_url]
    assert len(t.images) >= 2 and {img.size[0] for img in t.images} == {576}
    assert all(img.histogram()[0] > 50 for img in t.images)  # every raster block has ink on it
    assert t.cut
    assert printer.poll().state is DeviceState.ok
    assert printer.health().detail == ""


def test_cp1258_printer_gets_vietnamese_as_text(emu: EscPosEmulator) -> None:
    printer = make_printer(emu.port, codepage="cp1258", width_dots=384)
    printer.print_ticket(TICKET)
    [t] = emu.wait_tickets(1)
    assert "Đất đai" in t.text
    assert "Trước bạn / Ahead: 4" in t.text
    assert t.images == []
    assert t.qr == [TICKET.qr_url]


def test_test_print_lines(emu: EscPosEmulator) -> None:
    printer = make_printer(emu.port, width_dots=384)
    printer.test_print(["Xin chào", "Máy in số 1"])
    [t] = emu.wait_tickets(1)
    [img] = t.images
    assert img.size[0] == 384 and img.size[1] > 30


def test_paper_out_refuses_and_prints_nothing(emu: EscPosEmulator, link: Path) -> None:
    printer = make_printer(link)
    emu.paper_out = True
    with pytest.raises(PrinterError, match="out of paper"):
        printer.print_ticket(TICKET)
    assert only_status_queries(bytes(emu.received)), "ticket bytes were sent to a printer without paper"
    assert emu.tickets == [] and emu.spoiled == []
    h = printer.poll()
    assert (h.state, h.detail) == (DeviceState.failed, "printer is out of paper")

    emu.paper_out = False  # the technician loads a roll
    printer.print_ticket(TICKET)
    emu.wait_tickets(1)
    assert printer.health().state is DeviceState.ok


def test_cover_open_fails(emu: EscPosEmulator) -> None:
    printer = make_printer(emu.port)
    emu.cover_open = True
    with pytest.raises(PrinterError, match="cover is open"):
        printer.print_ticket(TICKET)
    assert printer.poll().state is DeviceState.failed
    emu.cover_open = False
    assert printer.poll().state is DeviceState.ok


def test_paper_near_end_still_prints_but_degraded(emu: EscPosEmulator) -> None:
    printer = make_printer(emu.port)
    emu.paper_near_end = True
    printer.print_ticket(TICKET)
    emu.wait_tickets(1)
    h = printer.health()
    assert (h.state, h.detail) == (DeviceState.degraded, "paper near end")
    assert printer.poll().state is DeviceState.degraded


def test_offline_flag_is_a_failure_not_silence(emu: EscPosEmulator) -> None:
    printer = make_printer(emu.port)
    emu.offline = True
    h = printer.poll()
    assert (h.state, h.detail) == (DeviceState.failed, "printer reports it is offline")


def test_unplugged_then_plugged_back(emu: EscPosEmulator, link: Path) -> None:
    printer = make_printer(link)
    printer.print_ticket(TICKET)
    emu.wait_tickets(1)

    emu.unplug()
    h = printer.poll()
    assert h.state is DeviceState.offline
    assert h.detail.startswith(f"printer does not answer on {link}")
    with pytest.raises(PrinterError, match="does not answer") as err:
        printer.print_ticket(TICKET)
    assert str(link) in str(err.value)

    # plugged back in: a new pty, and udev points the stable name at it
    again = EscPosEmulator().start()
    try:
        os.unlink(link)
        link.symlink_to(again.port)
        wait_for(lambda: printer.poll().state is DeviceState.ok, timeout=5, what="printer back online")
        printer.print_ticket(TICKET)
        [t] = again.wait_tickets(1)
        assert "B014" in t.text
    finally:
        again.stop()


def test_silent_printer_is_offline_quickly(emu: EscPosEmulator) -> None:
    printer = make_printer(emu.port)
    emu.muted = True  # the port is there but nothing answers (wrong baud rate, dead board)
    h = printer.poll()
    assert (h.state, h.detail) == (DeviceState.offline, f"printer does not answer on {emu.port}")
    with pytest.raises(PrinterError):
        printer.print_ticket(TICKET)
    assert emu.tickets == []


def test_missing_port_from_the_start_never_raises_from_poll(tmp_path: Path) -> None:
    printer = make_printer(tmp_path / "no-such-printer")
    h = printer.poll()
    assert h.state is DeviceState.offline
    assert "does not answer" in h.detail and "no-such-printer" in h.detail


def test_bad_profile_is_rejected_in_words() -> None:
    with pytest.raises(ValueError, match="codepage"):
        make_printer("/dev/null", codepage="tcvn3")
    with pytest.raises(ValueError, match="width"):
        make_printer("/dev/null", width_dots=500)
    assert make_printer("/dev/null", codepage="none").codepage is None
