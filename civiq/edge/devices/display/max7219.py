"""MAX7219 7-segment counter displays on SPI, through gpiozero's pin factory.

The driver writes 16-bit register words (register in the high byte, data in the low byte), one word per chip
select pulse: the MAX7219 latches the last 16 bits it received when LOAD/CS rises.

====== ==================================  ======================================================
reg    name                                 what the driver writes
====== ==================================  ======================================================
0x01-8 digit 0..7 (digit 0 is rightmost)   segment bits ``DP A B C D E F G`` (bit 7 .. bit 0)
0x09   decode mode                          0x00: no code-B decoding (we draw letters ourselves)
0x0A   intensity                            0..15
0x0B   scan limit                           digits - 1
0x0C   shutdown                             1 = normal operation
0x0F   display test                         0 = off
====== ==================================  ======================================================

The whole configuration is re-sent with every ``show`` (six words): a chip that browned out and came back in
shutdown mode recovers on the next ticket instead of staying dark.

Health: SPI is write-only, so by default a MAX7219 cannot say it is there. If DOUT is wired back to MISO,
pass ``check_dout=True``: :meth:`Max7219Display.poll` clocks a no-op word with a known pattern through the
chip and expects it back 16 clocks later on DOUT (``offline`` when it does not come back).

Tests and the simulator use :class:`civiq.edge.sim.max7219.Max7219Emulator`, a gpiozero ``MockSPIDevice``
that decodes the register writes (including the chip's own code-B font) into what a person would see. gpiozero 2.0.1 quirk: its
software SPI bus builds a ``Device`` without passing the pin factory on, so ``Device.pin_factory`` must be set
while the SPI interface is opened; :func:`open_max7219` does that for the duration of the call.

    >>> from gpiozero.pins.mock import MockFactory
    >>> from civiq.edge.sim.max7219 import Max7219Emulator
    >>> factory = MockFactory()
    >>> chip = Max7219Emulator(pin_factory=factory)       # before the SPI port is opened
    >>> d3 = open_max7219("d3", 0, 0, 8, factory)
    >>> d3.show("A012")
    >>> chip.text
    'A012'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from civiq.contract import DeviceState
from civiq.edge.devices.display.base import CounterDisplay, DisplayError

REG_NOOP, REG_DECODE, REG_INTENSITY, REG_SCAN_LIMIT, REG_SHUTDOWN, REG_TEST = 0x00, 0x09, 0x0A, 0x0B, 0x0C, 0x0F
DOUT_PATTERN = 0xA5  # the data byte of the no-op word clocked through for the DOUT presence check

# segment bits: DP=0x80 A=0x40 B=0x20 C=0x10 D=0x08 E=0x04 F=0x02 G=0x01
FONT: dict[str, int] = {
    " ": 0x00, "-": 0x01, "_": 0x08,
    "0": 0x7E, "1": 0x30, "2": 0x6D, "3": 0x79, "4": 0x33, "5": 0x5B, "6": 0x5F, "7": 0x70, "8": 0x7F, "9": 0x7B,
    "A": 0x77, "B": 0x1F, "C": 0x4E, "D": 0x3D, "E": 0x4F, "F": 0x47, "G": 0x5E, "H": 0x37, "I": 0x06,
    "J": 0x3C, "L": 0x0E, "N": 0x15, "O": 0x1D, "P": 0x67, "R": 0x05, "S": 0x5B, "T": 0x0F, "U": 0x3E,
    "Y": 0x3B,
}
# what a person reads from a segment pattern (5 and S look the same: the digit wins)
GLYPHS: dict[int, str] = {}
for _ch, _bits in FONT.items():
    GLYPHS.setdefault(_bits, _ch)
# the chip's own code-B font (decode mode): low nibble -> character
CODE_B = "0123456789-EHLP "

SPI_PINS = {0: {"clock": 11, "mosi": 10, "miso": 9, "select": {0: 8, 1: 7}}}


def segments(text: str) -> list[int]:
    """Text -> segment bytes, left to right; a '.' lights the decimal point of the character before it.

    >>> [hex(b) for b in segments("A0.1")]
    ['0x77', '0xfe', '0x30']
    """
    out: list[int] = []
    for ch in text:
        if ch == "." and out and not out[-1] & 0x80:
            out[-1] |= 0x80
            continue
        if ch == ".":
            out.append(0x80)
            continue
        bits = FONT.get(ch.upper())
        if bits is None:
            raise ValueError(f"{ch!r} cannot be drawn on 7 segments")
        out.append(bits)
    return out


class Max7219Display(CounterDisplay):
    """One MAX7219 driving up to 8 digits. ``spi_device`` is what ``pin_factory.spi(port=, device=)`` returns."""

    model = "max7219"

    def __init__(self, device_id: str, spi_device: Any, digits: int = 8, *, intensity: int = 8,
                 check_dout: bool = False, where: str = "") -> None:
        if not isinstance(digits, int) or not 1 <= digits <= 8:
            raise ValueError(f"display {device_id}: a MAX7219 drives 1..8 digits, not {digits!r}")
        if not 0 <= intensity <= 15:
            raise ValueError(f"display {device_id}: intensity must be 0..15, not {intensity!r}")
        super().__init__(device_id, digits, align="right")
        self.spi = spi_device
        self.intensity = intensity
        self.check_dout = check_dout
        self.where = where or "SPI"

    def describe(self) -> str:
        return f"display {self.id} (MAX7219 on {self.where})"

    def fit(self, text: str) -> str:
        if not isinstance(text, str):
            raise DisplayError(f"{self.describe()}: text must be a string, not {type(text).__name__}")
        try:
            cells = segments(text)
        except ValueError as e:
            raise DisplayError(f"{self.describe()}: {e}") from None
        if len(cells) > self.width:
            raise DisplayError(f"{self.describe()}: text {text!r} needs {len(cells)} digits but the board has "
                               f"only {self.width}")
        return " " * (self.width - len(cells)) + text

    def _send(self, words: list[tuple[int, int]]) -> None:
        try:
            for register, data in words:
                self.spi.transfer([register, data])
        except Exception as e:  # noqa: BLE001 - any SPI/gpio failure is a display failure
            raise DisplayError(f"{self.describe()}: SPI write failed ({e})", DeviceState.failed) from None

    def _write(self, text: str) -> tuple[DeviceState, str] | None:
        cells = segments(text)
        words = [(REG_TEST, 0), (REG_SCAN_LIMIT, self.width - 1), (REG_DECODE, 0),
                 (REG_INTENSITY, self.intensity), (REG_SHUTDOWN, 1)]
        # cells[0] is the leftmost digit = digit register `width`; the rightmost is digit register 1
        words += [(self.width - i, bits) for i, bits in enumerate(cells)]
        self._send(words)
        return None

    def _probe(self) -> tuple[DeviceState, str]:
        if not self.check_dout:
            h = self.health()
            return h.state, h.detail
        try:
            back = list(self.spi.transfer([REG_NOOP, DOUT_PATTERN, REG_NOOP, 0x00]))
        except Exception as e:  # noqa: BLE001
            return DeviceState.failed, f"{self.describe()}: SPI transfer failed ({e})"
        if back[2:4] != [REG_NOOP, DOUT_PATTERN]:
            return DeviceState.offline, (f"{self.describe()} does not echo on DOUT (got "
                                         f"{bytes(back[2:4]).hex(' ')}): not connected or not powered?")
        return DeviceState.ok, ""

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.spi.close()


@contextlib.contextmanager
def _default_factory(pin_factory: Any) -> Iterator[None]:
    """gpiozero 2.0.1's SPISoftwareBus ignores the pin factory it is given for its base ``Device``."""
    from gpiozero import Device as GpioDevice

    if pin_factory is None or GpioDevice.pin_factory is not None:
        yield
        return
    GpioDevice.pin_factory = pin_factory
    try:
        yield
    finally:
        GpioDevice.pin_factory = None


def open_max7219(device_id: str, spi_port: int, spi_device: int, digits: int = 8, pin_factory: Any = None,
                 **kwargs: Any) -> Max7219Display:
    """Open SPI ``spi_port``.``spi_device`` with ``pin_factory`` (lgpio on a Pi, MockFactory in tests)."""
    from gpiozero import Device as GpioDevice  # here, not at import: a config check needs only FONT

    where = f"SPI {spi_port}.{spi_device}"
    try:
        with _default_factory(pin_factory):
            factory = pin_factory or GpioDevice.pin_factory
            if factory is None:
                GpioDevice.ensure_pin_factory()
                factory = GpioDevice.pin_factory
            spi = factory.spi(port=spi_port, device=spi_device)
        spi.clock_mode = 0
        spi.lsb_first = False
    except Exception as e:  # noqa: BLE001 - gpiozero raises many kinds; say it in words
        raise DisplayError(f"display {device_id}: cannot open {where} ({e})", DeviceState.offline) from None
    return Max7219Display(device_id, spi, digits, where=where, **kwargs)
