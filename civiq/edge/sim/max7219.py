"""The MAX7219 emulator: a gpiozero ``MockSPIDevice`` on mock pins that decodes the driver's register writes
(:mod:`civiq.edge.devices.display.max7219`), including the chip's own code-B font, into what a person would see.

    >>> from gpiozero.pins.mock import MockFactory
    >>> from civiq.edge.devices.display.max7219 import open_max7219
    >>> factory = MockFactory()
    >>> chip = Max7219Emulator(pin_factory=factory)       # before the SPI port is opened
    >>> open_max7219("d3", 0, 0, 8, factory).show("B7")
    >>> chip.text
    'B7'
"""

from __future__ import annotations

from gpiozero.pins.mock import MockFactory, MockSPIDevice

from civiq.edge.devices.display.max7219 import (
    CODE_B,
    GLYPHS,
    REG_DECODE,
    REG_INTENSITY,
    REG_NOOP,
    REG_SCAN_LIMIT,
    REG_SHUTDOWN,
    REG_TEST,
    SPI_PINS,
)


class Max7219Emulator(MockSPIDevice):
    """A MAX7219 on gpiozero mock pins: decodes register writes into the digits a person would see.

    Create it *before* the driver opens the SPI port (it needs its own mock pin classes on CLK and CS).
    ``connected = False`` makes it deaf and silent (pulled cable).
    """

    def __init__(self, port: int = 0, device: int = 0, *, pin_factory: MockFactory,
                 digits_on_module: int = 8) -> None:
        pins = SPI_PINS[port]
        try:
            super().__init__(pins["clock"], pins["mosi"], pins["miso"], pins["select"][device],
                             pin_factory=pin_factory)
        except AttributeError:
            raise RuntimeError("create the Max7219Emulator before the SPI port is opened") from None
        self.module_digits = digits_on_module
        self.connected = True
        self.registers: dict[int, int] = dict.fromkeys(range(16), 0)  # power-on: shutdown, scan 0, no decode
        self.words: list[int] = []  # every latched word, for tests

    # -- SPI events
    def on_select(self) -> None:
        if self.select_pin.state == self.select_high:
            self.on_start()
        elif self.connected and len(self.rx_buf) >= 16:
            bits = self.rx_buf[-16:]
            word = 0
            for b in bits:
                word = word << 1 | int(b)
            self._latch(word)

    def on_bit(self) -> None:
        if not self.connected:
            self.tx_buf = []
            return
        if self.rx_bit % 16 == 0:  # a word went in: it comes out on DOUT over the next 16 clocks
            word = 0
            for b in self.rx_buf[-16:]:
                word = word << 1 | int(b)
            self.tx_word(word, 16)

    def _latch(self, word: int) -> None:
        self.words.append(word)
        register, data = (word >> 8) & 0x0F, word & 0xFF
        if register != REG_NOOP:
            self.registers[register] = data

    # -- what a person sees
    @property
    def shutdown(self) -> bool:
        return not self.registers[REG_SHUTDOWN] & 1

    @property
    def display_test(self) -> bool:
        return bool(self.registers[REG_TEST] & 1)

    @property
    def intensity(self) -> int:
        return self.registers[REG_INTENSITY] & 0x0F

    @property
    def scan_limit(self) -> int:
        return self.registers[REG_SCAN_LIMIT] & 0x07

    @property
    def decode_mode(self) -> int:
        return self.registers[REG_DECODE]

    def digit(self, index: int) -> str:
        """Digit ``index`` (0 = rightmost) as read by a person: one character, '.' appended for DP."""
        if self.display_test:
            return "8."
        if self.shutdown or index > self.scan_limit:
            return " "
        data = self.registers[index + 1]
        code_b = self.decode_mode >> index & 1
        ch = CODE_B[data & 0x0F] if code_b else GLYPHS.get(data & 0x7F, "?")
        return ch + ("." if data & 0x80 else "")

    @property
    def raw(self) -> str:
        """All digits of the module left to right, blanks included."""
        return "".join(self.digit(i) for i in reversed(range(self.module_digits)))

    @property
    def text(self) -> str:
        return self.raw.strip()
