"""ESC/POS thermal printer: protocol (escpos), ticket layout (render), device (driver), pty emulator."""

from .driver import PrinterError, ThermalPrinter
from .emulator import EscPosEmulator, PrintedTicket
from .escpos import PrinterStatus, decode_status
from .render import TicketPrint, lines_job, render_lines, ticket_job

__all__ = [
    "EscPosEmulator",
    "PrintedTicket",
    "PrinterError",
    "PrinterStatus",
    "ThermalPrinter",
    "TicketPrint",
    "decode_status",
    "lines_job",
    "render_lines",
    "ticket_job",
]
