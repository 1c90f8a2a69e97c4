"""Modbus-RTU LED boards over a real pty: the emulator decodes the frames the driver sends."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civiq.contract import DeviceState
from civiq.edge.devices.display.base import DisplayError
from civiq.edge.devices.display.modbus import (
    ModbusLedDisplay,
    crc16_modbus,
    read_registers_request,
    write_registers_request,
)
from civiq.edge.devices.transport import SerialTransport
from civiq.edge.sim.display import ModbusBusEmulator
from tests.conftest import wait_for


@pytest.fixture
def bus() -> Iterator[ModbusBusEmulator]:
    emu = ModbusBusEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture
def transport(bus: ModbusBusEmulator) -> Iterator[SerialTransport]:
    t = SerialTransport(bus.port, 9600, timeout=0.2)
    yield t
    t.close()


def test_crc_matches_the_textbook_frame() -> None:
    # "01 03 00 00 00 01 84 0A" is the read-one-register example in every Modbus guide
    assert read_registers_request(1, 0, 1) == bytes.fromhex("010300000001840a")
    frame = write_registers_request(7, 0, [0x41, 0x30, 0x31, 0x32])
    assert crc16_modbus(frame[:-2]).to_bytes(2, "little") == frame[-2:]
    assert frame[:7] == bytes([7, 0x10, 0, 0, 0, 4, 8])


def test_two_boards_on_one_bus_show_their_own_ticket(bus: ModbusBusEmulator, transport: SerialTransport) -> None:
    b1, b2 = bus.add_board(1), bus.add_board(2)
    d1 = ModbusLedDisplay("d1", transport, address=1, digits=4, timeout=0.5)
    d2 = ModbusLedDisplay("d2", transport, address=2, digits=4, timeout=0.5)
    d1.show("A012")
    d2.show("B7")
    assert b1.text == "A012"
    assert b2.raw == "  B7"  # numeric boards right-align
    assert (d1.last_shown, d2.last_shown) == ("A012", "B7")
    assert d1.poll().state == DeviceState.ok
    assert d2.health().state == DeviceState.ok


def test_text_that_does_not_fit_is_refused_in_words(bus: ModbusBusEmulator, transport: SerialTransport) -> None:
    b1 = bus.add_board(1)
    d1 = ModbusLedDisplay("d1", transport, address=1, digits=4, timeout=0.5)
    with pytest.raises(DisplayError, match="5 characters but the board has only 4"):
        d1.show("A0123")
    with pytest.raises(DisplayError, match="ASCII"):
        d1.show("A€1")
    assert b1.writes == 0
    d1.show("Đ1")  # diacritics are stripped, not refused
    assert b1.text == "D1"


def test_muted_board_goes_offline_and_recovers(bus: ModbusBusEmulator, transport: SerialTransport) -> None:
    b1, b2 = bus.add_board(1), bus.add_board(2)
    d1 = ModbusLedDisplay("d1", transport, address=1, timeout=0.3)
    d2 = ModbusLedDisplay("d2", transport, address=2, timeout=0.3)
    b1.muted = True
    with pytest.raises(DisplayError) as e:
        d1.show("A013")
    assert e.value.state == DeviceState.offline
    assert str(e.value) == f"display d1 (Modbus address 1 on {bus.port}) does not answer"
    assert d1.health().state == DeviceState.offline
    assert d1.poll().state == DeviceState.offline
    d2.show("B001")  # the other board on the bus is not affected
    assert b2.text == "B001"
    b1.muted = False
    assert d1.poll().state == DeviceState.ok
    d1.show("A013")
    assert b1.text == "A013"
    assert d1.health().state == DeviceState.ok


def test_shorted_bus_takes_every_board_offline(bus: ModbusBusEmulator, transport: SerialTransport) -> None:
    bus.add_board(1)
    d1 = ModbusLedDisplay("d1", transport, address=1, timeout=0.3)
    bus.muted = True
    assert d1.poll().state == DeviceState.offline
    bus.muted = False
    assert d1.poll().state == DeviceState.ok


def test_crc_error_is_degraded_and_retried(bus: ModbusBusEmulator, transport: SerialTransport) -> None:
    b1 = bus.add_board(1)
    d1 = ModbusLedDisplay("d1", transport, address=1, timeout=0.5)
    b1.corrupt_replies = 1  # one noisy reply: the retry gets through, health says the line is noisy
    d1.show("A020")
    assert b1.text == "A020"
    h = d1.health()
    assert h.state == DeviceState.degraded and "CRC" in h.detail
    b1.corrupt_replies = 100  # every reply noisy: the show cannot be confirmed
    with pytest.raises(DisplayError, match="CRC") as e:
        d1.show("A021")
    assert e.value.state == DeviceState.degraded
    b1.corrupt_replies = 0
    assert d1.poll().state == DeviceState.ok


def test_exception_reply_is_a_refusal_not_a_timeout(bus: ModbusBusEmulator, transport: SerialTransport) -> None:
    b1 = bus.add_board(1, digits=4)
    # a driver configured for 6 digits writes registers the 4-digit board does not have
    d1 = ModbusLedDisplay("d1", transport, address=1, digits=6, timeout=0.5)
    with pytest.raises(DisplayError, match=r"illegal data address \(exception code 2\)") as e:
        d1.show("A012")
    assert e.value.state == DeviceState.failed
    assert b1.writes == 0
    b1.exception_code = 4
    d4 = ModbusLedDisplay("d4", transport, address=1, digits=4, timeout=0.5)
    h = d4.poll()
    assert h.state == DeviceState.failed and "server device failure" in h.detail


def test_status_register_faults(bus: ModbusBusEmulator, transport: SerialTransport) -> None:
    b1 = bus.add_board(1)
    d1 = ModbusLedDisplay("d1", transport, address=1, timeout=0.5)
    b1.status = 0x0001
    assert d1.poll().state == DeviceState.degraded
    b1.status = 0x0002
    assert "over temperature" in d1.poll().detail
    d1.set_brightness(3)
    assert b1.brightness == 3


def test_garbage_on_the_bus_is_survived(bus: ModbusBusEmulator, transport: SerialTransport) -> None:
    b1 = bus.add_board(1)
    d1 = ModbusLedDisplay("d1", transport, address=1, timeout=0.5)
    transport.write(b"\x01\x10\x00\x00\xff\xff" + os.urandom(40))  # junk, a fake header, a bad CRC
    wait_for(lambda: len(bus.received) >= 46, timeout=2, what="junk received")
    d1.show("A099")  # the driver's retry / the emulator's gap rule resynchronise
    assert b1.text == "A099"
    # a frame split across two writes still parses
    frame = write_registers_request(1, 0, [ord(c) for c in "B001"])
    with transport.lock:
        transport.reset_input()
        transport.write(frame[:5])
        transport.write(frame[5:])
        assert transport.read(8, 1.0)[:2] == b"\x01\x10"
    assert b1.text == "B001"


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_emulator_parser_survives_any_noise(chunks: list[bytes]) -> None:
    emu = ModbusBusEmulator()  # not started: drive its parser directly
    board = emu.add_board(1)
    for chunk in chunks:
        emu.feed(chunk)
    emu._buf.clear()  # what a silent gap does on the wire
    reply = emu.feed(write_registers_request(1, 0, [ord(c) for c in "C007"]))
    assert reply[:2] == b"\x01\x10" and board.text == "C007"
