"""Fuzz every parser of serial bytes, on both sides of the wire.

* The emulators' protocol parsers (what a real board would receive from a confused driver or a noisy bus):
  ESC/POS, Modbus RTU, the ASCII frame bus with call pads, Nextion. They never raise, and still understand a
  valid request after any garbage.
* The drivers' reply parsers, through a real pty and :class:`SerialTransport`: a device that answers random
  bytes. ``poll()`` never raises and reports a health that follows from the reply; ``show()`` raises only
  the driver's own error type, in words.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from civiq.contract import DeviceHealth, DeviceState
from civiq.edge.devices.display.asciiframe import AsciiFrameDisplay, FrameParser, encode_frame
from civiq.edge.devices.display.base import DisplayError
from civiq.edge.devices.display.modbus import ModbusLedDisplay, write_registers_request
from civiq.edge.devices.keypad import SerialCallPad
from civiq.edge.devices.printer import escpos
from civiq.edge.devices.printer.driver import PrinterError, ThermalPrinter
from civiq.edge.devices.printer.render import TicketPrint, ticket_job
from civiq.edge.devices.qrboard.nextion import NextionQrBoard
from civiq.edge.devices.transport import SerialTransport
from civiq.edge.sim.display import AsciiBusEmulator, ModbusBusEmulator
from civiq.edge.sim.emulator import PtyEmulator
from civiq.edge.sim.printer import EscPosEmulator
from civiq.edge.sim.qrboard import NextionEmulator
from tests.reliability.faultkit import fuzz, soak

# bounded here; `make soak` (CIVIQ_SOAK=1) runs many more examples, with the time that takes
pytestmark = [pytest.mark.slow, pytest.mark.timeout(soak(120, 1800))]

noise = st.binary(max_size=200) | st.lists(st.sampled_from(
    [b"\x10\x04", b"\x1b", b"\x1d", b"\x1dv0", b"\x1d(k", b"\x02", b"\x03", b"\xff\xff\xff", b"\x01\x10",
     b"\x00", b"\xff" * 3, b"01K", b"\x1b@", b"\x1dV"]), max_size=20).map(b"".join)


# ------------------------------------------------------------------------------------------ status decoder
@fuzz(300, 20000)
@given(a=st.integers(-5, 300), b=st.integers(-5, 300), c=st.integers(-5, 300))
def test_printer_status_decoder(a: int, b: int, c: int) -> None:
    try:
        st_ = escpos.decode_status(a, b, c)
    except ValueError as e:
        assert "status byte" in str(e)
        assert not all(0 <= x <= 255 and escpos.is_status_byte(x) for x in (a, b, c))
        return
    assert st_.paper_out == bool(c & 0x60 or b & 0x20)
    assert st_.problem() == "" or st_.paper_out or st_.cover_open or not st_.online


# ------------------------------------------------------------------------------------------ emulator parsers
def _ticket_job() -> bytes:
    return ticket_job(TicketPrint(center_name="Xã Thử", label="A001", service_name_vi="Đất đai", service_name_en="Land",
                                  issued_local="08:00 05/01/2026", ahead=0, eta_text="~1 phút", qr_url="https://x.vn/t"),
                      codepage=None, width_dots=384)


JOB = _ticket_job()


@fuzz(150, 5000)
@given(junk=noise, chunks=st.lists(st.integers(1, 64), max_size=8))
def test_escpos_emulator_parser(junk: bytes, chunks: list[int]) -> None:
    emu = EscPosEmulator()
    data, pos = junk, 0
    for n in chunks + [len(data)]:
        emu.feed(data[pos:pos + n])
        pos += n
    emu.feed(b"\x10\x04\x01")  # a status query is always answered, whatever came before
    # the valid job after the garbage: the emulator resynchronises on ESC @ (initialise) and prints it
    before = len(emu.tickets)
    emu.feed(b"\x00" * 600 + JOB)
    assert isinstance(emu.skipped, int)
    assert len(emu.tickets) >= before


@fuzz(150, 5000)
@given(junk=noise)
def test_modbus_bus_emulator_parser(junk: bytes) -> None:
    emu = ModbusBusEmulator()
    board = emu.add_board(1, 4)
    emu.feed(junk)
    request = write_registers_request(1, 0, [ord(c) for c in "A012"])
    for _ in range(3):  # a master retries; the bus emulator drops its buffer after a silent gap
        reply = emu.feed(request)
        if reply:
            break
    assert isinstance(board.text, str)


@fuzz(200, 5000)
@given(junk=noise, split=st.integers(0, 30))
def test_ascii_frame_parser_and_bus(junk: bytes, split: int) -> None:
    p = FrameParser()
    frame = encode_frame(3, "T", b"A012    ")
    items = p.feed(junk) + p.feed(frame[:split]) + p.feed(frame[split:])
    assert items, "a valid frame after garbage was not parsed"
    last = items[-1]
    assert getattr(last, "command", None) == "T" and last.address == 3
    bus = AsciiBusEmulator()
    bus.add_board(3, 8)
    pad = bus.add_pad(11)
    bus.feed(junk)
    bus.feed(frame)
    assert isinstance(pad.lcd, str)


@fuzz(200, 5000)
@given(junk=noise)
def test_nextion_emulator_parser(junk: bytes) -> None:
    emu = NextionEmulator()
    emu.power_on()
    emu.feed(junk)
    emu.feed(b"\xff\xff\xff")  # terminates whatever the garbage started
    reply = emu.feed(b't0.txt="A001"\xff\xff\xff')
    assert reply.endswith(b"\xff\xff\xff") or reply == b""


# ------------------------------------------------------------------------------------------ driver parsers
class NoisyDevice(PtyEmulator):
    """A device on a real pty that answers each request with the next scripted reply."""

    name = "noisy"

    def __init__(self) -> None:
        super().__init__()
        self.replies: collections.deque[bytes] = collections.deque()
        self.requests = 0

    def script(self, replies: list[bytes]) -> None:
        with self.lock:
            self.replies = collections.deque(replies)

    def feed(self, data: bytes) -> bytes:
        self.requests += 1
        return self.replies.popleft() if self.replies else b""


@pytest.fixture(scope="module")
def noisy() -> Iterator[NoisyDevice]:
    emu = NoisyDevice().start()
    yield emu
    emu.stop()


TIMEOUT = 0.03
reply = st.binary(max_size=12) | st.sampled_from([b"\x12", b"\x1a", b"\x16", b"\x7e", b"\x01\xff\xff\xff",
                                                  b"\x66\x00\xff\xff\xff", b"\x02", b"\x03"])


@fuzz(60, 2000)
@given(replies=st.lists(st.binary(min_size=1, max_size=4) | st.sampled_from([b"\x12", b"\x1a", b"\x16", b"\x7e"]),
                        min_size=3, max_size=3))
def test_printer_driver_against_a_noisy_printer(noisy: NoisyDevice, replies: list[bytes]) -> None:
    noisy.script(replies)
    # every reply comes (a generous timeout costs nothing then), so the health must follow from the bytes
    p = ThermalPrinter("p1", SerialTransport(noisy.port, 19200, 1.0), status_timeout=1.0)
    try:
        h = p.poll()
    finally:
        p.close()
    assert isinstance(h, DeviceHealth)
    firsts = [r[0] for r in replies]
    if all(escpos.is_status_byte(f) for f in firsts):
        assert (h.state, h.detail) == ThermalPrinter._health_of(escpos.decode_status(*firsts))
    else:
        assert h.state == DeviceState.failed and "garbled status" in h.detail


@pytest.mark.parametrize("answered", [0, 1, 2])
def test_printer_that_stops_answering_mid_status(noisy: NoisyDevice, answered: int) -> None:
    noisy.script([b"\x12"] * answered)
    p = ThermalPrinter("p1", SerialTransport(noisy.port, 19200, TIMEOUT), status_timeout=0.2)
    try:
        h = p.poll()
    finally:
        p.close()
    assert h.state == DeviceState.offline and "does not answer" in h.detail


def _display_case(driver, noisy: NoisyDevice, replies: list[bytes], text: str) -> None:  # noqa: ANN001
    noisy.script(replies)
    try:
        try:
            driver.show(text)
        except DisplayError as e:
            assert str(e) and driver.health().state != DeviceState.ok
        h = driver.poll()
        assert isinstance(h, DeviceHealth) and (h.state == DeviceState.ok or h.detail)
    finally:
        driver.transport.close()


@fuzz(30, 2000)
@given(replies=st.lists(reply, max_size=4), text=st.sampled_from(["A012", "", "NGHI", "Ư1"]))
def test_modbus_display_against_a_noisy_bus(noisy: NoisyDevice, replies: list[bytes], text: str) -> None:
    d = ModbusLedDisplay("d1", SerialTransport(noisy.port, 9600, TIMEOUT), 1, 4, timeout=TIMEOUT)
    _display_case(d, noisy, replies, text)


@fuzz(30, 2000)
@given(replies=st.lists(reply | st.sampled_from([encode_frame(3, "A"), encode_frame(3, "S", b"0"),
                                                 encode_frame(4, "A"), encode_frame(3, "N", b"9")]), max_size=4),
       text=st.sampled_from(["A012", "", "QUẦY 1"]))
def test_ascii_display_against_a_noisy_bus(noisy: NoisyDevice, replies: list[bytes], text: str) -> None:
    d = AsciiFrameDisplay("d1", SerialTransport(noisy.port, 9600, TIMEOUT), 3, 8, timeout=TIMEOUT)
    _display_case(d, noisy, replies, text)


@fuzz(30, 2000)
@given(replies=st.lists(reply | st.sampled_from([encode_frame(11, "K", b"1"), encode_frame(11, "K", b"0"),
                                                 encode_frame(11, "K", b"\xff"), encode_frame(12, "K", b"1"),
                                                 encode_frame(11, "K", b"12")]), max_size=3))
def test_call_pad_against_a_noisy_bus(noisy: NoisyDevice, replies: list[bytes]) -> None:
    keys: list[str] = []
    pad = SerialCallPad("k1", SerialTransport(noisy.port, 9600, TIMEOUT), 11, keys.append, timeout=TIMEOUT,
                        offline_after=1)
    noisy.script(replies)
    try:
        for _ in range(len(replies) + 1):
            action = pad.poll_once()
            assert action is None or action in keys
        h = pad.poll()
        assert h.state == DeviceState.ok or h.detail
    finally:
        pad.transport.close()
    assert all(k.split(":")[0] in ("next", "recall", "no_show", "transfer", "done", "complete", "open", "close",
                                   "break", "hold", "call_held", "call") for k in keys), keys


@fuzz(25, 2000)
@given(replies=st.lists(reply, max_size=8))
def test_nextion_driver_against_a_noisy_board(noisy: NoisyDevice, replies: list[bytes]) -> None:
    q = NextionQrBoard("q1", SerialTransport(noisy.port, 9600, TIMEOUT), timeout=TIMEOUT)
    noisy.script(replies)
    try:
        try:
            q.show("https://dichvucong.gov.vn/p/1", "Đất đai / Land", ["A: 3 (5')"])
        except DisplayError as e:
            assert str(e) and q.health().state != DeviceState.ok
        h = q.poll()
        assert isinstance(h, DeviceHealth)
    finally:
        q.transport.close()


def test_noisy_device_fixture_answers(noisy: NoisyDevice) -> None:
    """The harness itself: a scripted status reply reaches the real driver (so the fuzz above means something)."""
    noisy.script([b"\x12", b"\x12", b"\x12"])
    p = ThermalPrinter("p1", SerialTransport(noisy.port, 19200, 0.5), status_timeout=0.5)
    try:
        assert p.poll().state == DeviceState.ok
    finally:
        p.close()
    with pytest.raises(PrinterError):
        noisy.script([b"\x12", b"\x32", b"\x7e"])  # paper out
        p2 = ThermalPrinter("p2", SerialTransport(noisy.port, 19200, 0.5), status_timeout=0.5)
        try:
            p2.print_ticket(TicketPrint(center_name="X", label="A001", service_name_vi="Đất đai",
                                        service_name_en="Land", issued_local="08:00", ahead=0, eta_text="",
                                        qr_url="https://x.vn"))
        finally:
            p2.close()
    assert threading.active_count() > 0
