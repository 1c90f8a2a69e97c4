"""MAX7219 over gpiozero's MockFactory: the emulator decodes the bits clocked on the mock SPI pins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero import Device as GpioDevice
from gpiozero.pins.mock import MockFactory

from civiq.contract import DeviceState
from civiq.edge.devices.display.base import DisplayError
from civiq.edge.devices.display.max7219 import open_max7219
from civiq.edge.sim.max7219 import Max7219Emulator


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.reset()


def test_show_ticket_is_decoded_by_the_chip(factory: MockFactory) -> None:
    chip = Max7219Emulator(pin_factory=factory)
    assert chip.shutdown and chip.text == ""  # power-on state: dark
    d3 = open_max7219("d3", 0, 0, 8, factory)
    assert GpioDevice.pin_factory is None  # the gpiozero workaround leaves no global behind
    d3.show("A012")
    assert chip.text == "A012"
    assert chip.raw == "    A012"  # right-aligned on the 8-digit module
    assert not chip.shutdown and chip.scan_limit == 7 and chip.decode_mode == 0 and not chip.display_test
    assert chip.intensity == 8
    assert d3.last_shown == "A012"
    d3.show("b.12")
    assert chip.text == "B.12"
    d3.show("")
    assert chip.text == ""
    d3.close()


def test_each_word_is_one_latch(factory: MockFactory) -> None:
    chip = Max7219Emulator(pin_factory=factory)
    d3 = open_max7219("d3", 0, 0, 4, factory)
    d3.show("12")
    # 5 configuration words, then digit registers 4..1 (leftmost first): blank, blank, '1', '2'
    assert chip.words[:5] == [0x0F00, 0x0B03, 0x0900, 0x0A08, 0x0C01]
    assert chip.words[5:] == [0x0400, 0x0300, 0x0230, 0x016D]
    assert chip.raw == "      12"  # the 4-digit scan limit leaves the upper 4 digits dark
    d3.close()


def test_code_b_decode_mode_and_display_test(factory: MockFactory) -> None:
    chip = Max7219Emulator(pin_factory=factory)
    GpioDevice.pin_factory = factory  # gpiozero 2.0.1's software SPI bus needs the global factory
    try:
        spi = factory.spi(port=0, device=0)
    finally:
        GpioDevice.pin_factory = None
    for word in ([0x0C, 0x01], [0x0B, 0x03], [0x09, 0x0F], [0x04, 0x0E], [0x03, 0x0A], [0x02, 0x81],
                 [0x01, 0x0F]):
        spi.transfer(word)
    assert chip.raw == "    P-1. "  # code B: 0x0E 'P', 0x0A '-', 0x81 '1' with DP, 0x0F blank
    spi.transfer([0x0F, 0x01])
    assert chip.text == "8." * 8
    spi.transfer([0x0F, 0x00])
    spi.transfer([0x0C, 0x00])
    assert chip.text == ""  # shutdown: dark
    spi.close()


def test_bad_text_is_refused_in_words(factory: MockFactory) -> None:
    chip = Max7219Emulator(pin_factory=factory)
    d3 = open_max7219("d3", 0, 0, 4, factory)
    with pytest.raises(DisplayError, match="'M' cannot be drawn on 7 segments"):
        d3.show("M1")
    with pytest.raises(DisplayError, match="needs 5 digits but the board has only 4"):
        d3.show("A0123")
    d3.show("A0.12")  # the dot rides on the '0': still 4 digits
    assert chip.text == "A0.12"
    d3.close()


def test_dout_presence_check(factory: MockFactory) -> None:
    chip = Max7219Emulator(pin_factory=factory)
    d3 = open_max7219("d3", 0, 0, 8, factory, check_dout=True)
    assert d3.poll().state == DeviceState.ok
    assert chip.words[-1] == 0x0000  # only no-ops were latched: the display is untouched
    chip.connected = False
    h = d3.poll()
    assert h.state == DeviceState.offline and "does not echo on DOUT" in h.detail
    chip.connected = True
    assert d3.poll().state == DeviceState.ok
    d3.close()


def test_emulator_must_exist_before_the_port(factory: MockFactory) -> None:
    d3 = open_max7219("d3", 0, 0, 8, factory)
    with pytest.raises(RuntimeError, match="before the SPI port"):
        Max7219Emulator(pin_factory=factory)
    d3.close()
