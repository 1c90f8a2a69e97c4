"""Framed-ASCII text boards over a real pty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civiq.contract import DeviceState
from civiq.edge.devices.display.asciiframe import (
    AsciiFrameDisplay,
    BadFrame,
    Frame,
    FrameParser,
    encode_frame,
    encode_text,
)
from civiq.edge.devices.display.base import DisplayError
from civiq.edge.devices.transport import SerialTransport
from civiq.edge.sim.display import AsciiBusEmulator


@pytest.fixture
def bus() -> Iterator[AsciiBusEmulator]:
    emu = AsciiBusEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture
def transport(bus: AsciiBusEmulator) -> Iterator[SerialTransport]:
    t = SerialTransport(bus.port, 9600, timeout=0.2)
    yield t
    t.close()


def test_frame_layout_and_checksum() -> None:
    frame = encode_frame(2, "T", b"A012")
    assert frame[0] == 0x02 and frame[-3] == 0x03
    assert frame[1:4] == b"02T" and frame[4:8] == b"A012"
    x = 0
    for b in frame[1:-2]:  # address .. ETX
        x ^= b
    assert frame[-2:] == f"{x:02X}".encode()
    with pytest.raises(ValueError, match="control"):
        encode_frame(2, "T", b"A\x03B")
    with pytest.raises(ValueError, match="0..99"):
        encode_frame(100, "T")


def test_parser_flags_bad_checksum_and_skips_garbage() -> None:
    p = FrameParser()
    good = encode_frame(5, "P")
    bad = good[:-1] + b"0" if good[-1:] != b"0" else good[:-1] + b"1"
    out = p.feed(b"\xff\x00junk" + bad + good[:3])
    assert out == [BadFrame(5, "checksum error")]
    assert p.feed(good[3:]) == [Frame(5, "P", b"")]
    assert p.garbage == 6


@given(st.binary(max_size=300))
def test_parser_never_raises_on_noise(noise: bytes) -> None:
    p = FrameParser()
    p.feed(noise)
    assert p.feed(encode_frame(7, "T", b"OK")) [-1] == Frame(7, "T", b"OK")


def test_vietnamese_is_stripped_for_7_bit_boards() -> None:
    assert encode_text("Quầy số 3") == b"Quay so 3"
    assert encode_text("Đất") == b"Dat"
    assert encode_text("Tiếng", seven_bit=False) == b"Tieng"  # no Latin-1 form: stripped
    assert encode_text("é", seven_bit=False) == b"\xe9"


def test_two_boards_show_their_text(bus: AsciiBusEmulator, transport: SerialTransport) -> None:
    b1, b2 = bus.add_board(1), bus.add_board(2)
    d1 = AsciiFrameDisplay("d1", transport, address=1, width=8, timeout=0.5)
    d2 = AsciiFrameDisplay("d2", transport, address=2, width=8, timeout=0.5)
    d1.show("A012")
    d2.show("Quầy 2")
    assert b1.text == "A012" and b1.raw == "A012    "
    assert b2.text == "Quay 2"
    assert d2.last_shown == "Quầy 2"
    assert d1.poll().state == DeviceState.ok and b1.pings == 1
    with pytest.raises(DisplayError, match="9 characters but the board has only 8"):
        d1.show("A012 -> 3")


def test_muted_board_is_offline_then_recovers(bus: AsciiBusEmulator, transport: SerialTransport) -> None:
    b1 = bus.add_board(1)
    d1 = AsciiFrameDisplay("d1", transport, address=1, timeout=0.3)
    b1.muted = True
    with pytest.raises(DisplayError, match="does not answer") as e:
        d1.show("A012")
    assert e.value.state == DeviceState.offline
    assert b1.text == ""
    assert d1.poll().state == DeviceState.offline
    b1.muted = False
    assert d1.poll().state == DeviceState.ok
    d1.show("A012")
    assert b1.text == "A012"


def test_nak_is_retried_then_reported(bus: AsciiBusEmulator, transport: SerialTransport) -> None:
    b1 = bus.add_board(1)
    d1 = AsciiFrameDisplay("d1", transport, address=1, timeout=0.5)
    b1.nak_replies = 1
    d1.show("A001")
    assert b1.text == "A001"
    assert d1.health().state == DeviceState.degraded
    b1.nak_replies = 5
    with pytest.raises(DisplayError, match="NAK") as e:
        d1.show("A002")
    assert e.value.state == DeviceState.failed
    assert b1.text == "A001"


def test_bad_checksum_on_the_wire_gets_a_nak(bus: AsciiBusEmulator, transport: SerialTransport) -> None:
    bus.add_board(3)
    frame = bytearray(encode_frame(3, "T", b"X"))
    frame[4] ^= 0x01  # a bit flipped by noise: the checksum no longer matches
    reply = transport.exchange(bytes(frame), 3, timeout=1.0)
    assert reply == b"\x1503"
    assert bus.board(3).text == ""
