"""Stored ticket graphics (GS ( L NV / download) and the emulator's physics (baud/10 bytes per second)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from civiq.contract import DeviceState
from civiq.edge.devices.printer import ThermalPrinter, TicketPrint, escpos, render
from civiq.edge.devices.printer.stored import (
    GraphicsCatalog,
    header,
    priority,
    render_static,
    service,
    statics_for,
    stored_ticket_job,
)
from civiq.edge.devices.transport import SerialTransport
from civiq.edge.sim.printer import EscPosEmulator
from tests.conftest import wait_for

TICKET = TicketPrint(
    center_name="Trung tâm Phục vụ hành chính công phường Bến Nghé",
    label="B014",
    service_name_vi="Đăng ký kinh doanh hộ cá thể",
    service_name_en="Household business registration",
    issued_local="08:15 05/01/2026",
    ahead=4,
    eta_text="~15 phút / min",
    qr_url="https://dichvucong.example/t/eyJjIjoiaGNtLWJlbm5naGUiLCJ0IjoiQjAxNCJ9.abcdefgh",
    priority_label="ƯU TIÊN · Người cao tuổi",
)
STATICS = statics_for(TICKET.center_name, [(TICKET.service_name_vi, TICKET.service_name_en), ("Hộ tịch", "Civil")],
                      [TICKET.priority_label])


def on_paper(s, emu_width: int = 576) -> Image.Image:  # noqa: ANN001
    """What a stored image looks like on the paper: the rendered static, placed as ESC a puts it."""
    img = render_static(s, emu_width)
    paper = Image.new("1", (emu_width, img.size[1]), 1)
    paper.paste(img, (0 if s.align == "left" else (emu_width - img.size[0]) // 2, 0))
    return paper


@pytest.fixture
def emu() -> Iterator[EscPosEmulator]:
    e = EscPosEmulator(115200).start()  # a real line speed: the first ticket's images take ~1.5 s
    yield e
    e.stop()


def make(port: str, **kw) -> ThermalPrinter:  # noqa: ANN003
    kw.setdefault("graphics", "nv")
    return ThermalPrinter("p1", SerialTransport(port, 115200, timeout=0.3), status_timeout=0.3, **kw)


def test_after_the_first_ticket_each_ticket_is_under_2_kb_and_reads_the_same(emu: EscPosEmulator,
                                                                            tmp_path: Path) -> None:
    printer = make(emu.port, statics=STATICS, state_path=tmp_path / "g.json")
    assert printer.poll().state is DeviceState.ok  # stores the images before any citizen comes
    assert printer.stores == 1
    wait_for(lambda: emu.graphics_defined == len(STATICS), timeout=10, what="images stored")
    for n in range(1, 4):
        printer.print_ticket(TICKET)
        t = emu.wait_tickets(n)[-1]
        assert t.wire_bytes <= 2048, f"ticket {n} took {t.wire_bytes} bytes"
    assert emu.graphics_defined == len(STATICS) and printer.stores == 1  # stored once
    # what the citizen reads: the number and values as text, every Vietnamese block as the rendered image
    assert t.text == ["B014", "  4", "  ~15", "  08:15 05/01/2026"]
    assert t.qr == [TICKET.qr_url]
    pictures = [img.tobytes() for img in t.images]
    for s in (header(TICKET), priority(TICKET.priority_label), service(TICKET.service_name_vi,
                                                                       TICKET.service_name_en)):
        assert on_paper(s).tobytes() in pictures
    assert all(img.size[0] == 576 for img in t.images)
    assert t.images[1].histogram()[0] > t.images[1].size[0] * t.images[1].size[1] / 2  # the inverted bar
    assert t.cut == "partial"


def test_config_change_stores_again_and_the_state_dir_remembers(emu: EscPosEmulator, tmp_path: Path) -> None:
    state = tmp_path / "printer-graphics.json"
    make(emu.port, statics=STATICS, state_path=state).poll()
    wait_for(lambda: emu.graphics_defined == len(STATICS), timeout=10, what="images stored")

    again = make(emu.port, statics=STATICS, state_path=state)  # the agent restarts, same config
    again.poll()
    again.print_ticket(TICKET)
    emu.wait_tickets(1)
    assert again.stores == 0 and emu.graphics_defined == len(STATICS)  # NV graphics kept: nothing re-sent

    renamed = statics_for("Trung tâm Hành chính công quận 1", [("Hộ tịch", "Civil")], [])
    changed = make(emu.port, statics=renamed, state_path=state)
    changed.poll()
    assert changed.stores == 1
    # only what changed goes on the wire: the new center name; the images no longer used are deleted
    wait_for(lambda: len(emu.nv_graphics) == len(renamed), timeout=10, what="stored again")
    assert emu.graphics_defined == len(STATICS) + 1
    changed.print_ticket(TicketPrint(**{**TICKET.__dict__, "center_name": "Trung tâm Hành chính công quận 1",
                                        "service_name_vi": "Hộ tịch", "service_name_en": "Civil",
                                        "priority_label": None}))
    [_, t] = emu.wait_tickets(2)
    assert on_paper(renamed[0]).tobytes() == t.images[0].tobytes()


def test_download_graphics_are_sent_again_on_every_start(emu: EscPosEmulator, tmp_path: Path) -> None:
    make(emu.port, graphics="download", statics=STATICS, state_path=tmp_path / "g.json").poll()
    wait_for(lambda: emu.graphics_defined == len(STATICS), timeout=10, what="images stored")
    make(emu.port, graphics="download", statics=STATICS, state_path=tmp_path / "g.json").poll()
    wait_for(lambda: emu.graphics_defined == 2 * len(STATICS), timeout=10, what="images stored twice")
    assert emu.nv_graphics == {} and len(emu.download_graphics) == len(STATICS)


def test_a_replaced_printer_gets_the_images_again(tmp_path: Path) -> None:
    old = EscPosEmulator(115200).start()
    link = tmp_path / "civiq-printer"
    link.symlink_to(old.port)
    printer = make(str(link), statics=STATICS, state_path=tmp_path / "g.json")
    printer.poll()
    wait_for(lambda: old.graphics_defined == len(STATICS), timeout=10, what="images stored")
    old.unplug()
    assert printer.poll().state is DeviceState.offline
    fresh = EscPosEmulator(115200).start()  # another printer: its memory holds none of our images
    try:
        os.unlink(link)
        link.symlink_to(fresh.port)
        wait_for(lambda: printer.poll().state is DeviceState.ok, timeout=10, what="printer back")
        printer.print_ticket(TICKET)
        [t] = fresh.wait_tickets(1)
        assert on_paper(header(TICKET)).tobytes() == t.images[0].tobytes()
        assert fresh.skipped == 0  # no print of an unknown key
    finally:
        fresh.stop()


def test_a_ticket_with_a_new_label_extends_the_stored_set(emu: EscPosEmulator) -> None:
    printer = make(emu.port)  # no statics known up front (a bare driver): learnt from the first ticket
    printer.print_ticket(TICKET)
    printer.print_ticket(TicketPrint(**{**TICKET.__dict__, "eta_text": "Chưa ước tính được / unknown"}))
    [a, b] = emu.wait_tickets(2)
    assert printer.stores == 2 and b.wire_bytes < 2048 and a.wire_bytes < 2048
    assert len(emu.nv_graphics) == len(printer.catalog) == 9  # the first ticket's 7 + "Wait:" + the phrase
    assert on_paper(render_static_label("Chưa ước tính được / unknown")).tobytes() in [i.tobytes() for i in b.images]


def render_static_label(text: str):  # noqa: ANN201
    from civiq.edge.devices.printer.stored import label

    return label(text)


def test_wire_time_at_19200_is_under_a_second_for_an_80mm_vietnamese_ticket() -> None:
    cat = GraphicsCatalog("nv", 576)
    job = stored_ticket_job(TICKET, cat)
    emu = EscPosEmulator(19200)
    emu.feed(cat.store_job())
    emu.feed(job)
    t = emu.tickets[-1]
    assert t.wire_bytes == len(job) <= 2048
    assert t.wire_s == pytest.approx(len(job) / 1920) and t.wire_s < 1.0
    assert t.mechanism_s > 0.3  # ~10 cm of paper at 200 mm/s
    raster = len(render.ticket_job(TICKET, width_dots=576))
    assert raster > 10 * len(job)  # the old way, for scale


def test_emulator_moves_bytes_at_baud_over_ten() -> None:
    """Physics: 300 bytes at 9600 baud take 300 / 960 = 0.31 s on the wire."""
    emu = EscPosEmulator(9600).start()
    try:
        tr = SerialTransport(emu.port, 9600, timeout=0.3)
        t0 = time.monotonic()
        tr.write(b"x" * 300)
        wait_for(lambda: len(emu.received) >= 300, timeout=3, interval=0.002, what="300 bytes received")
        took = time.monotonic() - t0
        assert 0.8 * 300 / 960 <= took <= 1.5 * 300 / 960, took
        tr.close()
    finally:
        emu.stop()


def test_emulator_stored_graphics_commands() -> None:
    img = Image.new("1", (20, 3), 1)
    img.putpixel((0, 0), 0)
    img.putpixel((19, 2), 0)
    emu = EscPosEmulator(width_dots=384)
    emu.feed(escpos.INIT + escpos.define_graphic("nv", b"AB", img) + escpos.align("right")
             + escpos.print_graphic("nv", b"AB") + escpos.print_graphic("nv", b"ZZ") + escpos.cut())
    [t] = emu.tickets
    [got] = t.images
    assert got.size == (384, 3) and got.getpixel((364, 0)) == 0 and got.getpixel((383, 2)) == 0
    assert emu.skipped == 1  # the unknown key prints nothing
    assert escpos.print_graphic("nv", b"AB") == b"\x1d(L\x06\x00\x30\x45AB\x01\x01"
    assert escpos.delete_all_graphics("download") == b"\x1d(L\x05\x00\x30\x52CLR"
    emu.feed(escpos.delete_all_graphics("nv"))
    assert emu.nv_graphics == {}
    emu.power_cycle()
    with pytest.raises(ValueError, match="key"):
        escpos.print_graphic("nv", b"\x00A")


def test_a_status_only_poll_never_writes_the_printers_flash(emu: EscPosEmulator) -> None:
    """`civiq edge doctor` polls the printer; only the running agent stores images."""
    printer = make(emu.port, statics=STATICS, store_on_poll=False)
    assert printer.poll().state is DeviceState.ok
    assert printer.stores == 0 and emu.graphics_defined == 0
    assert len(emu.received) % 3 == 0 and all(emu.received[i] == 0x10 for i in range(0, len(emu.received), 3))
