"""What comes out of the printer and when: a power cut loses RAM graphics (re-stored when the printer is back),
the page a citizen reads (Vietnamese labels from stored images, the number as printer text, the QR), and the
time to paper on a 19200-baud line (wire + mechanism, < 1 s once the images are in the printer)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from civiq.contract import DeviceState
from civiq.edge.devices.printer import ThermalPrinter, TicketPrint
from civiq.edge.devices.printer.stored import GraphicsCatalog, header, render_static, service, statics_for
from civiq.edge.devices.transport import SerialTransport
from civiq.edge.sim.printer import EscPosEmulator
from tests.conftest import wait_for

TICKET = TicketPrint(
    center_name="Trung tâm Phục vụ hành chính công xã Tân Phú",
    label="A015",
    service_name_vi="Chứng thực bản sao",
    service_name_en="Certified copies",
    issued_local="09:41 05/12/2026",
    ahead=3,
    eta_text="~12 phút / min",
    qr_url="https://gw.example/t/eyJ0IjoiQTAxNSJ9.sig",
    priority_label="ƯU TIÊN · Người khuyết tật",
)
STATICS = statics_for(TICKET.center_name, [(TICKET.service_name_vi, TICKET.service_name_en)],
                      [TICKET.priority_label or ""])


def ink(img: Image.Image) -> int:
    return img.convert("L").histogram()[0]


def contains(page: Image.Image, part: Image.Image) -> bool:
    """``part`` (a full-width block) appears as-is somewhere down ``page``."""
    want = part.tobytes()
    w, h = part.size
    return any(page.crop((0, y, w, y + h)).tobytes() == want for y in range(page.size[1] - h + 1))


@pytest.fixture
def emu() -> Iterator[EscPosEmulator]:
    e = EscPosEmulator(460800).start()
    yield e
    e.stop()


def make(port: str, graphics: str, state: Path) -> ThermalPrinter:
    return ThermalPrinter("p1", SerialTransport(port, 460800, timeout=0.3), status_timeout=0.3,
                          graphics=graphics, statics=STATICS, state_path=state)


@pytest.mark.parametrize("graphics", ["download", "nv"])
def test_a_power_cut_loses_ram_graphics_and_the_printer_gets_them_again(emu: EscPosEmulator, tmp_path: Path,
                                                                        graphics: str) -> None:
    printer = make(emu.port, graphics, tmp_path / "g.json")
    assert printer.poll().state is DeviceState.ok
    wait_for(lambda: emu.graphics_defined == len(STATICS), timeout=5, what="images stored")

    emu.muted = True  # power off: silent on the line
    assert printer.poll().state is DeviceState.offline
    emu.power_cycle()  # power on: RAM graphics gone, NV graphics kept
    emu.muted = False
    assert (len(emu.download_graphics), len(emu.nv_graphics)) == ((0, len(STATICS)) if graphics == "nv"
                                                                  else (0, 0))
    wait_for(lambda: printer.poll().state is DeviceState.ok, timeout=5, what="printer back")
    wait_for(lambda: emu.graphics_defined == 2 * len(STATICS), timeout=5, what="images stored again")
    assert printer.stores == 2

    printer.print_ticket(TICKET)
    [t] = emu.wait_tickets(1)
    assert emu.unknown_keys == 0 and len(t.stored) >= 5  # every label printed from the printer's memory
    assert contains(t.page(), on_paper(header(TICKET)))


def test_an_unknown_key_prints_nothing_and_is_counted(emu: EscPosEmulator, tmp_path: Path) -> None:
    """A printer that lost its RAM images without the agent noticing prints the tickets without labels."""
    printer = make(emu.port, "download", tmp_path / "g.json")
    printer.poll()
    wait_for(lambda: emu.graphics_defined == len(STATICS), timeout=5, what="images stored")
    emu.power_cycle()  # between two polls: nothing the driver could see
    printer.print_ticket(TICKET)
    [t] = emu.wait_tickets(1)
    assert emu.unknown_keys >= 5 and t.images == [] and "A015" in t.text


def on_paper(s, width: int = 576) -> Image.Image:  # noqa: ANN001
    img = render_static(s, width)
    paper = Image.new("1", (width, img.size[1]), 1)
    paper.paste(img, (0 if s.align == "left" else (width - img.size[0]) // 2, 0))
    return paper


def test_the_page_shows_the_vietnamese_labels_the_number_and_the_qr(emu: EscPosEmulator, tmp_path: Path) -> None:
    printer = make(emu.port, "nv", tmp_path / "g.json")
    printer.print_ticket(TICKET)
    [t] = emu.wait_tickets(1)
    page = t.page()
    assert page is not None and page.size[0] == 576
    # the Vietnamese blocks as rendered from the config's words, in paper order
    assert contains(page, on_paper(header(TICKET)))
    assert contains(page, on_paper(service(TICKET.service_name_vi, TICKET.service_name_en)))
    kinds = [p[0] for p in t.parts]
    assert kinds.index("image") < kinds.index("text") < kinds.index("qr")  # header, then the number, then QR
    # the number in the printer's font, big: a tall band of ink between the header and the service name
    number = next(p for p in t.parts if p[0] == "text" and p[1] == "A015")
    assert number[2][1] >= 4  # magnified at least 4 x in height
    assert ink(page) > sum(ink(i) for i in t.images)  # text and QR drawn on top of the pictures
    inverted = ImageOps.invert(page.convert("L"))
    assert inverted.getbbox() is not None


def test_time_to_paper_at_19200_baud_is_under_a_second(tmp_path: Path) -> None:
    """The agent restarts with the NV images already in the printer: a ticket is only its own bytes."""
    cat = GraphicsCatalog("nv", 576)
    for s in STATICS:
        cat.add(s)
    state = tmp_path / "g.json"
    state.write_text(json.dumps({"p1": cat.digest()}))
    emu = EscPosEmulator(19200)
    emu.feed(cat.store_job())  # stored at installation (NV: kept across power-offs)
    emu.tickets.clear()
    emu.start()
    try:
        printer = ThermalPrinter("p1", SerialTransport(emu.port, 19200, timeout=0.5), status_timeout=0.5,
                                 graphics="nv", statics=STATICS, state_path=state)
        t0 = time.monotonic()
        printer.print_ticket(TICKET)
        [t] = emu.wait_tickets(1, timeout=5)
        assert printer.stores == 0 and emu.unknown_keys == 0
        assert t.wire_bytes <= 2048
        # the wire's physics: the job took its bytes / (baud / 10) on the line, and the clock agrees
        assert t.wire_s == pytest.approx(t.wire_bytes / 1920)
        # never faster than the line allows; later only by the machine's load (a timing, not a contract)
        assert t.wire_done_at - t.started_at >= 0.97 * t.wire_s - 0.005
        assert t.started_at >= t0 - 0.01 and t.wire_done_at - t0 >= 0.9 * t.wire_s
        assert t.done_at >= t.wire_done_at
        assert t.time_to_paper < 1.0, f"{t.time_to_paper:.2f} s to paper ({t.wire_bytes} bytes)"
    finally:
        emu.stop()


def test_a_new_service_mid_day_sends_only_its_own_image(emu: EscPosEmulator, tmp_path: Path) -> None:
    state = tmp_path / "g.json"
    printer = make(emu.port, "nv", state)
    printer.poll()
    wait_for(lambda: emu.graphics_defined == len(STATICS), timeout=5, what="images stored")
    first = len(emu.received)

    # the agent restarts with one more service in the config: the printer keeps its NV images
    more = [*STATICS, service("Hộ tịch", "Civil status")]
    again = ThermalPrinter("p1", SerialTransport(emu.port, 460800, timeout=0.3), status_timeout=0.3,
                           graphics="nv", statics=more, state_path=state)
    again.poll()
    again.print_ticket(TicketPrint(**{**TICKET.__dict__, "service_name_vi": "Hộ tịch",
                                      "service_name_en": "Civil status"}))
    [t] = emu.wait_tickets(1)
    assert again.stores == 1 and emu.graphics_defined == len(STATICS) + 1
    assert len(emu.received) - first < first / 3  # the one new image, not the whole set again
    assert contains(t.page(), on_paper(service("Hộ tịch", "Civil status")))
    assert emu.unknown_keys == 0 and len(emu.nv_graphics) == len(more)
