"""The ticket desk: a dispenser press (or a kiosk tap, a reception key, the API) -> a ticket -> the printer.

One of the edge agent's collaborators (:mod:`civiq.edge.agent` wires them). It issues the ticket on the queue
engine, prints it on the dispenser's printer (its worker: a slow printer never blocks the button), lights the
dispenser's fault LED while the printer or the disk is down, and cycles the QR boards (each service's portal
link and how many wait for it). It knows nothing of MQTT.

    desk = TicketDesk(cfg, engine, hw, watch, clock=clock)
    ticket = desk.press("A")          # None when no ticket can be given: no paper, full disk, unknown service
    desk.ticket_print(ticket).eta_text   # '~4 phút / min'

No paper, no ticket: a number nobody holds would be called and time out as a no-show; the press is counted
in ``refused_presses``.
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from civiq import __version__
from civiq.clock import Clock
from civiq.edge.config import CenterConfig
from civiq.edge.device_watch import DOWN, DeviceWatch
from civiq.edge.queue.engine import QueueEngine, QueueError
from civiq.edge.queue.store import StoreFull
from civiq.tickettoken import token_with_key

log = logging.getLogger(__name__)


def eta_text(eta_s: float | None) -> str:
    """The ticket's wait estimate, both languages (the ticket's line reads "Dự kiến / Wait: ...").

    >>> eta_text(None)
    'Chưa ước tính được / unknown'
    >>> eta_text(20), eta_text(600)
    ('~1 phút / min', '~10 phút / min')
    """
    if eta_s is None:
        return "Chưa ước tính được / unknown"
    return f"~{max(1, round(eta_s / 60))} phút / min"


class TicketDesk:
    """Tickets for ``cfg``'s services from ``engine``, printed on ``hw``'s dispenser printer; ``watch`` gets
    the printer's health after each ticket and the disk-full fault."""

    def __init__(self, cfg: CenterConfig, engine: QueueEngine, hw: Any, watch: DeviceWatch, *,
                 clock: Clock) -> None:
        self.cfg = cfg
        self.engine = engine
        self.hw = hw
        self.watch = watch
        self.clock = clock
        self.tz = ZoneInfo(cfg.center.timezone)
        self.services = {s.prefix: s for s in cfg.services}
        self._ticket_key = cfg.center.ticket_key()
        self.refused_presses = 0  # presses that gave no ticket (printer down, disk full)
        watch.on_checked.append(self._on_checked)
        watch.on_store.append(lambda fault: self.refresh_fault_led())

    # -------------------------------------------------------------------------------- tickets
    def printer(self) -> Any | None:
        """The dispenser's printer (``dispenser.printer``, or the only/first printer), or None."""
        if self.cfg.dispenser is None or not self.cfg.dispenser.printer:
            return next(iter(self.hw.printers.values()), None)
        return self.hw.printers.get(self.cfg.dispenser.printer)

    def printer_status(self) -> tuple[bool, str]:
        """Whether a ticket can be given now, and why not (the kiosk asks before it offers its buttons)."""
        if self.watch.store_fault:
            return False, self.watch.store_fault
        printer = self.printer()
        if printer is None:
            return True, ""
        h = printer.health()
        return h.state not in DOWN, h.detail

    def press(self, service: str, priority: str | None = None, by: str = "dispenser") -> Any | None:
        """A citizen pressed a service button: issue a ticket and print it (unless the printer is down).
        ``priority``: a priority class id (a priority button, a reception key, the kiosk); ``by``: the source.
        Returns the ticket issued, or None when none was (printer out, disk full, unknown service/class)."""
        printer = self.printer()
        if printer is not None and printer.health().state in DOWN:
            self.refused_presses += 1
            if self.hw.dispenser is not None:
                self.hw.dispenser.signal_fault(True)
            log.warning("button %s pressed but printer %s is %s: no ticket issued", service, printer.id,
                        printer.health().detail)
            return None
        try:
            ticket = self.engine.issue(service, priority=priority, by=by if priority else None)
        except StoreFull as e:
            self.refused_presses += 1  # no number without a durable record: it could be issued twice
            self.watch.store_full(e)
            return None
        except QueueError as e:
            log.error("cannot issue a %s ticket: %s", service, e)
            return None
        if self.hw.dispenser is not None:
            self.hw.dispenser.beep()
        if printer is not None:
            self.watch.submit(printer, lambda: self._print(printer, ticket))
        return ticket

    def ticket_print(self, ticket: Any):  # noqa: ANN201 - TicketPrint
        """What the printer prints for ``ticket``: the center, the number, the service, the wait, the QR link
        (the ticket's own page when the center has public ticket links, else the service's portal page)."""
        from civiq.edge.devices.printer import TicketPrint

        svc = self.services[ticket.service]
        issued = ticket.issued_at.astimezone(self.tz).strftime("%H:%M %d/%m/%Y")
        url = svc.portal_url or ""
        if self._ticket_key and self.cfg.center.public_url:
            token = token_with_key(self._ticket_key, self.cfg.center.id, ticket.day, ticket.label)
            url = f"{self.cfg.center.public_url.rstrip('/')}/t/{token}"
        return TicketPrint(center_name=self.cfg.center.name, label=ticket.label, service_name_vi=svc.name_vi,
                           service_name_en=svc.name_en, issued_local=issued, ahead=ticket.ahead,
                           eta_text=eta_text(ticket.eta_s), qr_url=url,
                           priority_label=self.cfg.priority.label(getattr(ticket, "priority", None)))

    def _print(self, printer: Any, ticket: Any) -> None:
        from civiq.edge.devices.printer import PrinterError

        try:
            printer.print_ticket(self.ticket_print(ticket))
        except PrinterError as e:
            log.error("ticket %s not printed: %s", ticket.label, e)
        except Exception:  # noqa: BLE001
            log.exception("ticket %s not printed", ticket.label)

    def test_print(self, printer_id: str | None = None) -> None:
        """A test page on one printer (or every printer): the center, the printer, the version, the time.
        An unknown printer is a KeyError."""
        printers = [self.hw.printers[printer_id]] if printer_id else list(self.hw.printers.values())
        for p in printers:
            lines = [self.cfg.center.name, "In thử / Test print", f"{p.id} · civiq {__version__}",
                     self.clock.now().astimezone(self.tz).strftime("%H:%M:%S %d/%m/%Y")]
            p.test_print(lines)

    # -------------------------------------------------------------------------------- the fault LED
    def refresh_fault_led(self) -> None:
        """The dispenser's LED blinks while no ticket can be given (printer down or disk full)."""
        if self.hw.dispenser is None:
            return
        printer = self.printer()
        down = printer is not None and printer.health().state in DOWN
        self.hw.dispenser.signal_fault(down or self.watch.store_fault is not None)

    def _on_checked(self, dev: Any, h: Any) -> None:
        if self.hw.dispenser is not None and dev is self.printer():
            self.hw.dispenser.signal_fault(h.state in DOWN or self.watch.store_fault is not None)

    # -------------------------------------------------------------------------------- QR boards
    def show_qr(self, index: int) -> None:
        """The ``index``-th service (cycling) on every QR board: its portal link, and how many wait for each
        service with their estimate in minutes."""
        if not self.hw.qrboards or not self.services:
            return
        svcs = list(self.services.values())
        svc = svcs[index % len(svcs)]
        snap = self.engine.snapshot()
        lines = []
        for s in svcs:
            q = snap.services.get(s.prefix)
            if q is None:
                continue
            eta = "?" if q.eta_s is None else f"{round(q.eta_s / 60)}'"
            lines.append(f"{s.prefix} {s.name_vi}: {q.waiting} ({eta})")
        title = f"{svc.name_vi} / {svc.name_en}"
        for board in self.hw.qrboards.values():
            def job(board: Any = board) -> None:
                try:
                    board.show(svc.portal_url or "", title, lines)
                except Exception as e:  # noqa: BLE001 - reported through the board's health
                    log.warning("QR board %s: %s", board.id, e)

            self.watch.submit(board, job, key=f"qr-{board.id}")
