"""ESC/POS encoder bytes, status decoding, and the emulator's parser fed directly (no pty)."""

from __future__ import annotations

import unicodedata

import pytest
from PIL import Image

from civiq.edge.devices.printer import TicketPrint, decode_status, escpos, render
from civiq.edge.devices.printer.render import Line
from civiq.edge.sim.printer import EscPosEmulator

TICKET = TicketPrint(
    center_name="Trung tâm Phục vụ hành chính công phường Bến Nghé",
    label="A001",
    service_name_vi="Đất đai",
    service_name_en="Land",
    issued_local="08:15 05/01/2026",
    ahead=3,
    eta_text="~15 phút / min",
    qr_url="https://dichvucong.example/t/hcm-bennghe/A001",
)


# --- encoder: byte-exact against the ESC/POS command reference ---------------------------------------------


def test_simple_commands_match_the_reference() -> None:
    assert escpos.INIT == b"\x1b\x40"
    assert escpos.align("left") == b"\x1b\x61\x00"
    assert escpos.align("center") == b"\x1b\x61\x01"
    assert escpos.align("right") == b"\x1b\x61\x02"
    assert escpos.text_size(1, 1) == b"\x1d\x21\x00"
    assert escpos.text_size(2, 2) == b"\x1d\x21\x11"
    assert escpos.text_size(8, 8) == b"\x1d\x21\x77"
    assert escpos.text_size(3, 1) == b"\x1d\x21\x20"
    assert escpos.bold(True) == b"\x1b\x45\x01"
    assert escpos.bold(False) == b"\x1b\x45\x00"
    assert escpos.select_codepage("cp1258") == b"\x1b\x74\x34"  # WPC1258 = 52
    assert escpos.feed(3) == b"\x1b\x64\x03"
    assert escpos.cut() == b"\x1d\x56\x01"
    assert escpos.cut(full=True) == b"\x1d\x56\x00"
    assert escpos.cut(feed_dots=48) == b"\x1d\x56\x42\x30"
    assert escpos.cut(full=True, feed_dots=3) == b"\x1d\x56\x41\x03"
    assert [escpos.status_request(n) for n in (1, 2, 4)] == [b"\x10\x04\x01", b"\x10\x04\x02", b"\x10\x04\x04"]


def test_qr_code_sequence() -> None:
    data = "https://x.vn/A1"
    expected = (
        b"\x1d\x28\x6b\x04\x00\x31\x41\x32\x00"  # model 2
        b"\x1d\x28\x6b\x03\x00\x31\x43\x06"  # module size 6
        b"\x1d\x28\x6b\x03\x00\x31\x45\x31"  # error level M
        + b"\x1d\x28\x6b" + bytes([len(data) + 3, 0]) + b"\x31\x50\x30" + data.encode()  # store
        + b"\x1d\x28\x6b\x03\x00\x31\x51\x30"  # print
    )
    assert escpos.qr(data) == expected
    big = "x" * 300
    assert escpos.qr(big)[25:30] == b"\x1d\x28\x6b" + (303).to_bytes(2, "little")


def test_raster_bits_follow_the_picture() -> None:
    img = Image.new("1", (10, 2), 1)  # white; 10 dots wide -> 2 bytes per row
    img.putpixel((0, 0), 0)  # top-left dot black
    img.putpixel((9, 1), 0)  # bottom-right dot black
    assert escpos.raster(img) == b"\x1d\x76\x30\x00\x02\x00\x02\x00" + bytes([0x80, 0x00, 0x00, 0x40])


@pytest.mark.parametrize(
    "call",
    [
        lambda: escpos.align("middle"),
        lambda: escpos.text_size(9, 1),
        lambda: escpos.select_codepage("tcvn3"),
        lambda: escpos.qr(""),
        lambda: escpos.qr("x" * 8000),
        lambda: escpos.qr("x", error="Z"),
        lambda: escpos.feed(300),
        lambda: escpos.status_request(7),
        lambda: escpos.raster(Image.new("1", (0, 0))),
    ],
)
def test_bad_arguments_say_what_is_wrong(call) -> None:  # noqa: ANN001
    with pytest.raises(ValueError):
        call()


def test_cp1258_splits_tone_marks_and_decodes_back() -> None:
    for text in ["Đất đai", "Hộ tịch", "Người ướt ở Huế", "Chưa ước tính được", "Quầy số 1"]:
        raw = escpos.encode_text(text, "cp1258")
        assert b"?" not in raw, text


        assert unicodedata.normalize("NFC", raw.decode("cp1258")) == text
    assert escpos.encode_text("Đất", "cp1258") == b"\xd0\xe2\xec" + b"t"
    assert escpos.encode_text("Đất đai") == b"??t ?ai"  # no code page: ASCII with honest '?'


# --- status -----------------------------------------------------------------------------------------------


def test_status_idle_baseline() -> None:
    st = decode_status(0x12, 0x12, 0x12)
    assert (st.online, st.cover_open, st.paper_near_end, st.paper_out) == (True, False, False, False)
    assert st.problem() == ""


@pytest.mark.parametrize(
    ("b1", "b2", "b4", "field"),
    [
        (0x1A, 0x12, 0x12, "offline"),
        (0x1A, 0x16, 0x12, "cover_open"),
        (0x12, 0x12, 0x1E, "paper_near_end"),
        (0x1A, 0x32, 0x7E, "paper_out"),
        (0x12, 0x12, 0x72, "paper_out"),  # the roll sensor alone says out
    ],
)
def test_status_each_flag(b1: int, b2: int, b4: int, field: str) -> None:
    st = decode_status(b1, b2, b4)
    flags = {
        "offline": not st.online,
        "cover_open": st.cover_open,
        "paper_near_end": st.paper_near_end,
        "paper_out": st.paper_out,
    }
    assert flags[field]
    if field == "paper_near_end":
        assert st.online and not st.paper_out and st.problem() == ""
    if field == "cover_open":
        assert not st.paper_out and st.problem() == "printer cover is open"
    if field == "paper_out":
        assert st.problem() == "printer is out of paper"


@pytest.mark.parametrize("bad", [0x00, 0xFF, 0x41, 0x13])
def test_garbage_is_not_a_status(bad: int) -> None:
    with pytest.raises(ValueError, match="status byte"):
        decode_status(bad, 0x12, 0x12)


# --- emulator parser, fed by hand ----------------------------------------------------------------------------


def feed_in_chunks(emu: EscPosEmulator, data: bytes, size: int) -> bytes:
    reply = b""
    for i in range(0, len(data), size):
        reply += emu.feed(data[i : i + size])
    return reply


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 100_000])
def test_emulator_rebuilds_the_ticket_from_split_bytes(chunk: int) -> None:
    emu = EscPosEmulator()
    feed_in_chunks(emu, render.ticket_job(TICKET, width_dots=384), chunk)
    [t] = emu.tickets
    assert "A001" in t.text
    assert t.qr == [TICKET.qr_url]
    assert t.images and all(img.size[0] == 384 for img in t.images)
    assert t.cut == "partial"
    assert not emu._buf  # nothing left half-parsed


def test_emulator_raster_image_is_the_rendered_picture() -> None:
    lines = [Line("Đất đai", 1.5, bold=True)]
    original = render.render_lines(lines, 576)
    emu = EscPosEmulator()
    emu.feed(escpos.INIT + escpos.raster(original) + escpos.cut())
    [img] = emu.tickets[0].images
    assert img.size == original.size
    assert img.tobytes() == original.tobytes()
    assert img.histogram()[0] > 100  # dark dots were printed


def test_emulator_decodes_cp1258_text() -> None:
    emu = EscPosEmulator()
    emu.feed(render.ticket_job(TICKET, codepage="cp1258", width_dots=576))
    [t] = emu.tickets
    assert "Đất đai" in t.text
    assert "Land" in t.text
    assert any("Trung tâm Phục vụ" in line for line in t.text)
    assert t.images == []  # nothing rasterised when the printer speaks CP1258
    assert t.qr == [TICKET.qr_url]


def test_emulator_answers_status_mid_stream_and_from_flags() -> None:
    emu = EscPosEmulator()
    assert emu.feed(b"\x10\x04\x01\x10\x04") == b"\x12"  # second query still incomplete
    assert emu.feed(b"\x02") == b"\x12"
    emu.paper_near_end = True
    assert emu.feed(b"\x10\x04\x04") == b"\x1e"
    emu.paper_out = True
    assert emu.feed(b"\x10\x04\x01\x10\x04\x02\x10\x04\x04") == b"\x1a\x32\x7e"
    assert decode_status(0x1A, 0x32, 0x7E).paper_out


def test_emulator_skips_unknown_and_garbage_safely() -> None:
    emu = EscPosEmulator()
    junk = (
        b"\x1b\x7f"  # unknown ESC
        b"\x1d\xee"  # unknown GS
        b"\x1c\x26"  # FS & (kanji on)
        b"\x1dk\x04123\x00"  # barcode
        b"\x1d(L\x02\x00\x30\x30"  # graphics function, skipped by length
        b"\x1b*\x00\x02\x00\xff\xff"  # column bit image
        b"\x00\x07\x18"
    )
    emu.feed(escpos.INIT + junk + b"hello\n" + escpos.cut())
    assert emu.tickets[0].text == ["hello"]
    assert emu.skipped >= 3
    emu.feed(bytes(range(256)) * 4)  # random noise must not raise
    emu.feed(escpos.INIT + b"after\n" + escpos.cut(full=True))
    assert emu.tickets[-1].text[-1] == "after"
    assert emu.tickets[-1].cut == "full"


def test_render_rejects_bad_tickets() -> None:
    with pytest.raises(ValueError, match="width"):
        render.ticket_job(TICKET, width_dots=500)
    with pytest.raises(ValueError, match="ASCII"):
        render.ticket_job(TicketPrint(**{**TICKET.__dict__, "label": "Đ01"}))
    with pytest.raises(ValueError, match="code page"):
        render.ticket_job(TICKET, codepage="tcvn3")
