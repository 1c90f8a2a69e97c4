"""The new keys for priority tickets and clerk operations: call pad frames through the pty emulator, GPIO
issue keys and the dispenser's priority buttons on MockFactory pins."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from civiq.clock import FakeClock
from civiq.edge.devices.dispenser import Dispenser
from civiq.edge.devices.display.asciiframe import FrameParser, encode_frame
from civiq.edge.devices.keypad import GpioKeypad, SerialCallPad, issue_action
from civiq.edge.devices.transport import SerialTransport
from civiq.edge.sim.keypad import CallPadEmulator
from tests.conftest import wait_for


class Keys:
    def __init__(self) -> None:
        self.actions: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, action: str) -> None:
        with self.lock:
            self.actions.append(action)

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.actions)


@pytest.fixture
def emu() -> Iterator[CallPadEmulator]:
    e = CallPadEmulator(address=11).start()
    yield e
    e.stop()


def test_call_pad_typed_ticket_hold_call_back_and_issue_keys(emu: CallPadEmulator) -> None:
    transport = SerialTransport(emu.port, 9600, timeout=0.2)
    keys = Keys()
    pad = SerialCallPad("k2", transport, 11, keys, poll_interval=0.02, timeout=0.5,
                        extra_codes={"1": issue_action("A", "elderly"), "2": issue_action("B", None)})
    try:
        pad.start()
        emu.type("b012")
        emu.press("call")  # X: the master reads the typed number with an 'E' frame
        wait_for(lambda: keys.snapshot(), timeout=5, what="call key")
        emu.press("hold")
        emu.press("call_held")  # nothing typed: the oldest held ticket
        wait_for(lambda: len(keys.snapshot()) == 3, timeout=5, what="hold and call back")
        emu.type("A7")
        emu.press("U")
        emu.press("1")
        emu.press("2")
        wait_for(lambda: len(keys.snapshot()) == 6, timeout=5, what="six keys")
        assert keys.snapshot() == ["call:B012", "hold", "call_held", "call_held:A7", "issue:A:elderly", "issue:B:"]
        assert emu.reported == ["X", "H", "U", "U", "1", "2"]
        assert emu.pad.entry == ""  # read and cleared by the pad
        # the reply to an entry read is a real frame: STX 11 E "B012  " ETX HH
        emu.pad.type("C3")
        reply = emu.pad.handle(FrameParser().feed(encode_frame(11, "E"))[0])
        assert reply == encode_frame(11, "E", b"C3    ") and len(reply) == 13
    finally:
        pad.stop()
        transport.close()
    with pytest.raises(ValueError, match="taken"):
        SerialCallPad("k3", SerialTransport(emu.port, 9600), 12, keys, extra_codes={"H": "issue:A:"})


def test_gpio_issue_key_and_hold_keys(clock: FakeClock) -> None:
    factory = MockFactory()
    try:
        keys = Keys()
        GpioKeypad("k1", {"next": 5, "hold": 6, "call_held": 13, issue_action("A", "pregnant"): 20}, keys,
                   clock=clock, pin_factory=factory)
        for pin in (20, 6, 13):
            factory.pin(pin).drive_low()
            factory.pin(pin).drive_high()
        assert keys.snapshot() == ["issue:A:pregnant", "hold", "call_held"]
        with pytest.raises(ValueError, match="unknown action"):
            GpioKeypad("k9", {"next": 21, "vip": 26}, keys, clock=clock, pin_factory=factory)
    finally:
        factory.reset()


def test_dispenser_priority_button_arms_the_next_service_press(clock: FakeClock) -> None:
    factory = MockFactory()
    got: list[tuple[str, str | None]] = []

    def on_press(service: str, priority: str | None = None) -> None:
        got.append((service, priority))

    d = Dispenser("dispenser", {"A": 17, "B": 27}, on_press, clock=clock, buzzer_pin=23, pin_factory=factory,
                  priority_buttons={"elderly": 24, "disabled": 25}, priority_window_s=10)

    def press(pin: int) -> None:
        factory.pin(pin).drive_low()
        clock.advance(0.1)
        factory.pin(pin).drive_high()
        clock.advance(1)

    try:
        press(24)  # Ưu tiên · Người cao tuổi
        assert got == []  # arming issues nothing
        press(27)
        press(27)  # the next citizen, without the priority button: a normal ticket
        press(25)
        clock.advance(12)  # the window passed: back to normal
        press(17)
        press(24)
        press(25)  # the last priority button pressed wins
        press(17)
        assert got == [("B", "elderly"), ("B", None), ("A", None), ("A", "disabled")]
    finally:
        d.close()
        factory.reset()
    with pytest.raises(ValueError, match="pin 17 is used by both"):
        Dispenser("x", {"A": 17}, on_press, clock=clock, pin_factory=MockFactory(), priority_buttons={"merit": 17})
