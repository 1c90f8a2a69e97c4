"""Rating pads: GPIO keys on MockFactory pins, and the RS-485 rating pad's real frames on a pty at 9600 baud
(the emulator of civiq/edge/sim/ratingpad.py, bytes paced at baud/10 a second like the wire)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from civiq.clock import FakeClock
from civiq.contract import DeviceState
from civiq.edge.devices.display.asciiframe import ACK, STX, FrameParser, encode_frame
from civiq.edge.devices.ratingpad import GpioRatingPad, SerialRatingPad
from civiq.edge.devices.transport import SerialTransport
from civiq.edge.sim.display import AsciiBusEmulator
from civiq.edge.sim.ratingpad import RatingPadEmulator, RatingPadState
from tests.conftest import wait_for


class Presses:
    def __init__(self) -> None:
        self.seen: list[object] = []
        self.lock = threading.Lock()

    def score(self, s: int) -> None:
        with self.lock:
            self.seen.append(s)

    def reason(self, r: str) -> None:
        with self.lock:
            self.seen.append(r)

    def snapshot(self) -> list[object]:
        with self.lock:
            return list(self.seen)


# -------------------------------------------------------------------------------------------- GPIO
@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


def test_gpio_keys_scores_reasons_debounce_and_lamp(factory: MockFactory, clock: FakeClock) -> None:
    p = Presses()
    pad = GpioRatingPad("r1", "c1", {1: 5, 2: 6, 3: 13, 4: 19, 5: 26}, p.score, clock=clock,
                        reason_keys={"wait": 20}, on_reason=p.reason, led_pin=21, debounce_s=0.2,
                        pin_factory=factory)
    for _ in range(5):  # one press of key 4, bouncing
        factory.pin(19).drive_low()
        factory.pin(19).drive_high()
    clock.advance(0.3)
    factory.pin(20).drive_low()
    factory.pin(20).drive_high()
    factory.pin(5).drive_low()
    assert p.snapshot() == [4, "wait", 1]
    lamp = factory.pin(21)
    assert lamp.state == 0
    pad.indicate("open")
    assert lamp.state == 1 and pad.has_reasons
    n0 = len(lamp.states)
    pad.indicate("reasons")  # blinking while it waits for the reason keys: (on,) off, on ...
    wait_for(lambda: [s for _, s in lamp.states[n0:n0 + 2]] == [False, True], timeout=5,
             what="the lamp blinking")
    pad.indicate("done")
    assert lamp.state == 0
    pad.close()
    with pytest.raises(ValueError, match="rating pad r9: cannot use the pin of score:1"):
        GpioRatingPad("r9", "c1", {1: 99}, p.score, clock=clock, pin_factory=factory)


# ------------------------------------------------------------------------------------------ serial
def test_the_pad_answers_real_frames_byte_by_byte() -> None:
    """The emulator decodes what a master sends and answers as docs/technician.md says."""
    pad = RatingPadState(21)
    parse = FrameParser().feed
    poll = encode_frame(21, "R", b"-")
    # STX "21" R "-" ETX, then the XOR of 32 31 52 2D 03 = 7F as two hex digits "7F"
    assert poll.hex(" ") == "02 32 31 52 2d 03 37 46"
    (frame,) = parse(poll)
    assert pad.handle(frame) == encode_frame(21, "R", b"-0")  # nothing pressed
    pad.press(4)
    pad.press("a")
    reply = pad.handle(frame)
    assert reply[:1] == bytes([STX]) and reply[3:6] == b"R04" and len(reply) == 9
    assert pad.handle(frame) == reply  # the master did not acknowledge: the same press again
    (ack0,) = parse(encode_frame(21, "R", b"0"))
    assert pad.handle(ack0) == encode_frame(21, "R", b"1a")  # "0" taken: the next press
    (ack1,) = parse(encode_frame(21, "R", b"1"))
    assert pad.handle(ack1) == encode_frame(21, "R", b"-0")
    (lamp,) = parse(encode_frame(21, "L", b"1"))
    assert pad.handle(lamp) == bytes([ACK]) + b"21" and pad.lamp == "1"
    (other,) = parse(encode_frame(22, "R", b"-"))
    assert pad.handle(other) == b""  # not its address: silent
    (bad,) = parse(encode_frame(21, "R", b"-")[:-1] + b"0")
    assert pad.handle(bad) == bytes([0x15]) + b"21"  # checksum wrong: NAK
    with pytest.raises(ValueError, match="score keys 1-5"):
        pad.press(6)


@pytest.fixture
def emu() -> Iterator[RatingPadEmulator]:
    e = RatingPadEmulator(address=21, baudrate=9600).start()
    yield e
    e.stop()


@pytest.fixture
def transport(emu: RatingPadEmulator) -> Iterator[SerialTransport]:
    t = SerialTransport(emu.port, 9600, timeout=0.3)
    yield t
    t.close()


def test_the_driver_takes_each_press_once_at_9600_baud(emu: RatingPadEmulator, transport: SerialTransport) -> None:
    p = Presses()
    pad = SerialRatingPad("r2", "c2", transport, 21, p.score, on_reason=p.reason,
                          reason_codes={"a": "wait", "b": "attitude"}, poll_interval=0.01, timeout=0.3).start()
    try:
        wait_for(lambda: emu.polls >= 2, timeout=5, what="pad polled")
        t0, polls0 = time.monotonic(), emu.polls
        emu.press(2)
        emu.press("b")
        emu.press("h")  # a reason key this pad's config does not use: ignored
        emu.press(5)
        wait_for(lambda: len(p.snapshot()) == 3, timeout=5, what="three presses")
        wait_for(lambda: emu.polls >= polls0 + 10, timeout=5, what="more polls")
        elapsed, polls = time.monotonic() - t0, emu.polls - polls0
        assert p.snapshot() == [2, "attitude", 5]  # each once, in order
        assert pad.unknown_keys == 1 and emu.pad.waiting == type(emu.pad.waiting)()
        # the wire's pace: a poll (8 bytes) and its reply (9 bytes) at 960 bytes/s are ~17.7 ms
        assert elapsed >= polls * 17 / 960 * 0.9, f"{polls} polls in {elapsed:.3f} s: faster than 9600 baud"
        pad.indicate("reasons")
        assert emu.lamp == "2"
        assert pad.health().state == DeviceState.ok
    finally:
        pad.stop()


def test_the_pad_goes_offline_and_comes_back_counting_from_zero(emu: RatingPadEmulator,
                                                                transport: SerialTransport) -> None:
    p = Presses()
    pad = SerialRatingPad("r2", "c2", transport, 21, p.score, poll_interval=0.01, timeout=0.05,
                          offline_after=3).start()
    try:
        emu.press(3)
        wait_for(lambda: p.snapshot() == [3], timeout=5, what="first press")
        emu.pad.muted = True
        wait_for(lambda: pad.health().state == DeviceState.offline, timeout=5, what="pad offline")
        assert pad.health().detail == f"rating pad r2 (address 21 on {emu.port}) does not answer"
        emu.pad.power_cycle()  # it was switched off and on: its next press is "0" again, like the first one
        emu.pad.muted = False
        emu.press(4)
        wait_for(lambda: p.snapshot() == [3, 4], timeout=5, what="the press after the power cycle")
        assert pad.health().state == DeviceState.ok
    finally:
        pad.stop()


def test_a_rating_pad_shares_the_bus_with_a_display_and_a_call_pad() -> None:
    from civiq.edge.devices.display.asciiframe import AsciiFrameDisplay

    bus = AsciiBusEmulator().start()
    board = bus.add_board(2)
    bus.pads[21] = rpad = RatingPadState(21, keys=4)  # type: ignore[assignment]
    transport = SerialTransport(bus.port, 9600, timeout=0.3)
    p = Presses()
    pad = SerialRatingPad("r2", "c2", transport, 21, p.score, scale=4, poll_interval=0.001).start()
    display = AsciiFrameDisplay("d2", transport, address=2, timeout=0.5)
    try:
        for i in range(20):
            display.show(f"B{i:03d}")
            if i % 5 == 0:
                rpad.press(1 + i // 5)
        wait_for(lambda: len(p.snapshot()) == 4, timeout=5, what="four presses")
        assert p.snapshot() == [1, 2, 3, 4] and board.text == "B019"
        assert bus.frames_bad == 0 and rpad.frames_bad == 0 and bus.parser.garbage == 0
    finally:
        pad.stop()
        transport.close()
        bus.stop()
