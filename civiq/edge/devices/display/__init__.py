"""Counter displays: Modbus-RTU LED boards, framed-ASCII boards (RS-485) and MAX7219 7-segment (SPI).

Every board is a :class:`~civiq.edge.devices.display.base.CounterDisplay`; each protocol has an emulator that
decodes the real bytes (in :mod:`civiq.edge.sim`: :mod:`~civiq.edge.sim.display` for the RS-485 buses, :mod:`~civiq.edge.sim.max7219` for SPI).
"""

from civiq.edge.devices.display.asciiframe import AsciiFrameDisplay
from civiq.edge.devices.display.base import CounterDisplay, DisplayError, strip_diacritics
from civiq.edge.devices.display.max7219 import Max7219Display, open_max7219
from civiq.edge.devices.display.modbus import ModbusLedDisplay

__all__ = [
    "AsciiFrameDisplay",
    "CounterDisplay",
    "DisplayError",
    "Max7219Display",
    "ModbusLedDisplay",
    "open_max7219",
    "strip_diacritics",
]
