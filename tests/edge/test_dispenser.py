"""Dispenser button box with gpiozero's MockFactory and a FakeClock: debounce, stuck buttons, LED, buzzer."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from civiq.clock import FakeClock
from civiq.contract import DeviceState
from civiq.edge.devices.dispenser import Dispenser
from tests.conftest import wait_for


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


@pytest.fixture
def pressed() -> list[str]:
    return []


@pytest.fixture
def box(factory: MockFactory, clock: FakeClock, pressed: list[str]) -> Iterator[Dispenser]:
    d = Dispenser("dispenser", {"A": 17, "B": 27}, pressed.append, clock=clock, led_pin=22, buzzer_pin=23,
                  pin_factory=factory, blink_s=0.02, beep_s=0.02)
    yield d
    d.close()


def press(factory: MockFactory, clock: FakeClock, pin: int, hold: float = 0.15) -> None:
    factory.pin(pin).drive_low()
    clock.advance(hold)
    factory.pin(pin).drive_high()


def test_one_press_one_ticket(box: Dispenser, factory: MockFactory, clock: FakeClock, pressed: list[str]) -> None:
    press(factory, clock, 17)
    assert pressed == ["A"]
    clock.advance(1)
    press(factory, clock, 27)
    assert pressed == ["A", "B"]
    assert box.poll().state is DeviceState.ok


def test_ten_bounces_in_50ms_issue_one_ticket(
    box: Dispenser, factory: MockFactory, clock: FakeClock, pressed: list[str]
) -> None:
    pin = factory.pin(17)
    before = len(pin.states)
    for _ in range(10):  # contact bounce: 10 edges, one every 5 ms
        pin.drive_low()
        clock.advance(0.0025)
        pin.drive_high()
        clock.advance(0.0025)
    # the mock really delivered every edge (MockFactory would have made 10+ callbacks on its own)
    assert len(pin.states) - before == 20
    assert pressed == ["A"]
    assert box.ignored == 9

    clock.advance(0.5)  # a real second press later counts
    press(factory, clock, 17)
    assert pressed == ["A", "A"]


def test_release_bounce_after_a_long_press_is_not_a_ticket(
    box: Dispenser, factory: MockFactory, clock: FakeClock, pressed: list[str]
) -> None:
    pin = factory.pin(17)
    pin.drive_low()
    clock.advance(2.0)  # a slow elderly press
    pin.drive_high()
    clock.advance(0.003)
    pin.drive_low()  # the contact chatters as it opens
    clock.advance(0.003)
    pin.drive_high()
    assert pressed == ["A"]


def test_buttons_debounce_independently(
    box: Dispenser, factory: MockFactory, clock: FakeClock, pressed: list[str]
) -> None:
    factory.pin(17).drive_low()
    factory.pin(27).drive_low()  # two citizens, same instant
    assert pressed == ["A", "B"]
    factory.pin(17).drive_high()
    factory.pin(27).drive_high()


def test_stuck_button_is_degraded_and_issues_one_ticket(
    box: Dispenser, factory: MockFactory, clock: FakeClock, pressed: list[str]
) -> None:
    factory.pin(27).drive_low()
    for _ in range(40):
        clock.advance(1)
        box.poll()
    assert pressed == ["B"]
    h = box.health()
    assert (h.state, h.detail) == (DeviceState.degraded, "button B stuck")
    factory.pin(27).drive_high()
    assert box.poll().state is DeviceState.ok
    assert pressed == ["B"]


def test_bad_callback_is_logged_and_the_box_keeps_working(
    factory: MockFactory, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def on_press(service: str) -> None:
        calls.append(service)
        raise RuntimeError("database is locked")

    d = Dispenser("dispenser", {"A": 17}, on_press, clock=clock, pin_factory=factory)
    try:
        with caplog.at_level(logging.ERROR):
            press(factory, clock, 17)
            clock.advance(1)
            press(factory, clock, 17)
        assert calls == ["A", "A"]
        assert d.callback_errors == 2
        assert "database is locked" in caplog.text
    finally:
        d.close()


def test_status_led_on_then_blinks_on_fault(box: Dispenser, factory: MockFactory) -> None:
    led = factory.pin(22)
    assert led.state  # steady on: all is well
    before = len(led.states)
    box.signal_fault(True)
    wait_for(lambda: len(led.states) - before >= 6, timeout=3, what="the LED to blink")
    box.signal_fault(True)  # signalled again while blinking: keeps blinking, no restart
    box.signal_fault(False)  # LED.on() stops and joins the blink thread before returning
    settled = len(led.states)
    assert led.state
    with pytest.raises(AssertionError):  # 5 blink periods pass without a single toggle
        wait_for(lambda: len(led.states) > settled, timeout=0.1, what="(no) toggling")
    assert led.state


def test_beep_is_a_short_pulse(box: Dispenser, factory: MockFactory) -> None:
    buzzer = factory.pin(23)
    before = len(buzzer.states)
    box.beep()
    wait_for(lambda: len(buzzer.states) - before >= 2 and not buzzer.state, timeout=2, what="one beep")
    new = [s.state for s in buzzer.states[before:]]
    assert new == [True, False]


def test_close_releases_pins(factory: MockFactory, clock: FakeClock) -> None:
    d = Dispenser("dispenser", {"A": 17}, lambda s: None, clock=clock, led_pin=22, pin_factory=factory)
    d.close()
    d.close()  # idempotent
    again = Dispenser("dispenser", {"A": 17}, lambda s: None, clock=clock, led_pin=22, pin_factory=factory)
    again.close()


@pytest.mark.parametrize(
    ("buttons", "kw", "message"),
    [
        ({}, {}, "no buttons"),
        ({"a": 17}, {}, "service prefix"),
        ({"A": 17, "B": 17}, {}, "pin 17 is used by both button A and button B"),
        ({"A": 17}, {"led_pin": 17}, "used by both button A and status LED"),
        ({"A": "NOPE"}, {}, "cannot use button A"),
    ],
)
def test_bad_config_is_a_clear_error(
    factory: MockFactory, clock: FakeClock, buttons: dict, kw: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Dispenser("dispenser", buttons, lambda s: None, clock=clock, pin_factory=factory, **kw)
    # nothing stays claimed after a failed start
    ok = Dispenser("dispenser", {"A": 17}, lambda s: None, clock=clock, pin_factory=factory)
    ok.close()
