"""Staff keypads: GPIO buttons on MockFactory pins and an RS-485 call pad on a pty."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from civiq.clock import FakeClock
from civiq.contract import DeviceState
from civiq.edge.devices.display.asciiframe import AsciiFrameDisplay
from civiq.edge.devices.display.base import DisplayError
from civiq.edge.devices.keypad import GpioKeypad, SerialCallPad
from civiq.edge.devices.transport import SerialTransport
from civiq.edge.sim.display import AsciiBusEmulator
from civiq.edge.sim.keypad import CallPadEmulator
from tests.conftest import wait_for


class Keys:
    """A thread-safe on_key that records the actions."""

    def __init__(self) -> None:
        self.actions: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, action: str) -> None:
        with self.lock:
            self.actions.append(action)

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.actions)


# -------------------------------------------------------------------------------------------- GPIO
@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


def test_gpio_bounces_make_one_action(factory: MockFactory, clock: FakeClock) -> None:
    keys = Keys()
    pad = GpioKeypad("k1", {"next": 5, "recall": 6}, keys, clock=clock, debounce_s=0.2, pin_factory=factory)
    pin = factory.pin(5)
    assert pin.state == 1  # pulled up: released
    for _ in range(10):  # ten bounces of one press, all at the same instant
        pin.drive_low()
        pin.drive_high()
    assert keys.snapshot() == ["next"]
    clock.advance(0.1)
    pin.drive_low()
    pin.drive_high()
    assert keys.snapshot() == ["next"]  # still inside the debounce window
    clock.advance(0.15)
    pin.drive_low()
    pin.drive_high()
    factory.pin(6).drive_low()
    assert keys.snapshot() == ["next", "next", "recall"]
    pad.close()


def test_gpio_config_errors_are_words(factory: MockFactory, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="unknown action.*nxt"):
        GpioKeypad("k1", {"nxt": 5}, print, clock=clock, pin_factory=factory)
    with pytest.raises(ValueError, match="pin GPIO5 is used by both next and done"):
        GpioKeypad("k1", {"next": 5, "done": "GPIO5"}, print, clock=clock, pin_factory=factory)
    with pytest.raises(ValueError, match="cannot use pin 99"):
        GpioKeypad("k1", {"next": 99}, print, clock=clock, pin_factory=factory)


def test_gpio_failing_handler_does_not_break_the_keypad(factory: MockFactory, clock: FakeClock) -> None:
    seen: list[str] = []

    def handler(action: str) -> None:
        seen.append(action)
        raise RuntimeError("queue engine hiccup")

    pad = GpioKeypad("k1", {"done": 26}, handler, clock=clock, pin_factory=factory)
    factory.pin(26).drive_low()
    factory.pin(26).drive_high()
    clock.advance(1)
    factory.pin(26).drive_low()
    assert seen == ["done", "done"]
    pad.close()


# ------------------------------------------------------------------------------------------ serial
@pytest.fixture
def emu() -> Iterator[CallPadEmulator]:
    e = CallPadEmulator(address=11).start()
    yield e
    e.stop()


@pytest.fixture
def transport(emu: CallPadEmulator) -> Iterator[SerialTransport]:
    t = SerialTransport(emu.port, 9600, timeout=0.2)
    yield t
    t.close()


def test_serial_press_calls_on_key_once(emu: CallPadEmulator, transport: SerialTransport) -> None:
    keys = Keys()
    pad = SerialCallPad("k2", transport, 11, keys, poll_interval=0.02, timeout=0.5).start()
    try:
        wait_for(lambda: emu.polls >= 2, timeout=5, what="pad polled")
        emu.press("next")
        wait_for(lambda: keys.snapshot(), timeout=5, what="key delivered")
        polls = emu.polls
        wait_for(lambda: emu.polls >= polls + 5, timeout=5, what="more polls")
        assert keys.snapshot() == ["next"]  # reported once, not at every poll
        emu.press("no_show")
        emu.press("Z")  # a code the protocol does not know: ignored
        emu.press("done")
        wait_for(lambda: len(keys.snapshot()) == 3, timeout=5, what="three keys")
        assert keys.snapshot() == ["next", "no_show", "done"]
        assert pad.unknown_keys == 1
        assert pad.health().state == DeviceState.ok
    finally:
        pad.stop()


def test_serial_pad_offline_and_back(emu: CallPadEmulator, transport: SerialTransport) -> None:
    keys = Keys()
    pad = SerialCallPad("k2", transport, 11, keys, poll_interval=0.02, timeout=0.05, offline_after=3).start()
    try:
        wait_for(lambda: emu.polls >= 1, timeout=5, what="pad polled")
        emu.muted = True
        wait_for(lambda: pad.health().state == DeviceState.offline, timeout=5, what="pad offline")
        assert pad.health().detail == f"call pad k2 (address 11 on {emu.port}) does not answer"
        emu.muted = False
        emu.press("recall")
        wait_for(lambda: pad.health().state == DeviceState.ok, timeout=5, what="pad back")
        wait_for(lambda: keys.snapshot() == ["recall"], timeout=5, what="key after recovery")
    finally:
        pad.stop()


def test_lcd_writes_share_the_bus_with_polling(emu: CallPadEmulator, transport: SerialTransport) -> None:
    """LCD writes from the agent's thread and key polls from the pad's thread never interleave."""
    keys = Keys()
    pad = SerialCallPad("k2", transport, 11, keys, poll_interval=0.001, timeout=0.5).start()
    try:
        for i in range(30):
            pad.show(f"A{i:03d}")
            if i % 10 == 0:
                emu.press("next")
        assert emu.lcd == "A029"
        wait_for(lambda: len(keys.snapshot()) == 3, timeout=5, what="three keys")
        assert emu.frames_bad == 0 and emu.parser.garbage == 0
        with pytest.raises(DisplayError, match="at most 8"):
            pad.show("too long text")
    finally:
        pad.stop()


def test_poll_without_thread_polls_once(emu: CallPadEmulator, transport: SerialTransport) -> None:
    keys = Keys()
    pad = SerialCallPad("k2", transport, 11, keys, timeout=0.5)
    emu.press("open")
    assert pad.poll().state == DeviceState.ok
    assert keys.snapshot() == ["open"]
    emu.muted = True
    pad.offline_after = 1
    h = pad.poll()
    assert h.state == DeviceState.offline


def test_call_pad_and_display_share_one_port() -> None:
    """An ASCII display (address 2) and a call pad (address 11) on one RS-485 port, used from two threads."""
    bus = AsciiBusEmulator().start()
    board, pad_hw = bus.add_board(2), bus.add_pad(11)
    transport = SerialTransport(bus.port, 9600, timeout=0.2)
    keys = Keys()
    pad = SerialCallPad("k2", transport, 11, keys, poll_interval=0.001, timeout=0.5).start()
    display = AsciiFrameDisplay("d2", transport, address=2, timeout=0.5)
    try:
        for i in range(25):
            display.show(f"B{i:03d}")
            if i % 5 == 0:
                pad_hw.press("transfer")
        pad.show("Q2 B024")
        assert board.text == "B024" and pad_hw.lcd == "Q2 B024"
        assert display.health().state == DeviceState.ok
        wait_for(lambda: len(keys.snapshot()) == 5, timeout=5, what="five keys")
        assert keys.snapshot() == ["transfer"] * 5
        assert bus.frames_bad == 0 and pad_hw.frames_bad == 0 and bus.parser.garbage == 0
    finally:
        pad.stop()
        transport.close()
        bus.stop()
