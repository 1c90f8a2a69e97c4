"""Counter displays: Modbus-RTU LED boards, framed-ASCII boards (RS-485) and MAX7219 7-segment (SPI).

Every board is a :class:`~civiq.edge.devices.display.base.CounterDisplay`; each protocol module has an
emulator that decodes the real bytes (:mod:`.emulators`, :class:`.max7219.Max7219Emulator`).
"""

from civiq.edge.devices.display.base import CounterDisplay, DisplayError, strip_diacritics

__all__ = ["CounterDisplay", "DisplayError", "strip_diacritics"]
