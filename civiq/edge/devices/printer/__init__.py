"""ESC/POS thermal printer: protocol (escpos), ticket layout (render), device (driver).
Its pty emulator is :mod:`civiq.edge.sim.printer`."""

from .driver import PrinterError, ThermalPrinter
from .escpos import PrinterStatus, decode_status
from .render import TicketPrint, lines_job, render_lines, ticket_job

__all__ = [
    "PrinterError",
    "PrinterStatus",
    "ThermalPrinter",
    "TicketPrint",
    "decode_status",
    "lines_job",
    "render_lines",
    "ticket_job",
]
