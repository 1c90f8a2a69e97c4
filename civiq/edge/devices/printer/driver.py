"""The thermal printer as a device: asks its status, prints tickets, reports health in plain words.

The job bytes come from :mod:`.render`; this module only decides *whether* to print and sends them through
a transport (:class:`SerialTransport`, ``UsbLpTransport``, ``TcpTransport``). Status is always checked first, under the port lock, so a ticket is never sent
to a printer that said it cannot print (nothing half-printed), and a status poll never lands mid-job.

    printer = ThermalPrinter("p1", SerialTransport("/dev/civiq-printer", 19200), codepage="cp1258")
    printer.print_ticket(ticket)      # raises PrinterError("printer is out of paper") and prints nothing
    printer.poll()                    # DeviceHealth(state=degraded, detail="paper near end")
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from civiq.contract import DeviceHealth, DeviceState
from civiq.errors import EdgeError

from ..base import Device
from ..transport import SerialTransport, TransportError
from . import escpos, render
from .escpos import PrinterStatus
from .render import TicketPrint
from .stored import GraphicsCatalog, Static, stored_ticket_job

log = logging.getLogger(__name__)


class PrinterError(EdgeError, RuntimeError):
    """The printer cannot print now; the message says why in words a technician understands."""

    def __init__(self, reason: str, state: DeviceState = DeviceState.failed) -> None:
        super().__init__(reason)
        self.reason = reason
        self.state = state


class ThermalPrinter(Device):
    kind = "printer"
    model = "escpos"

    def __init__(
        self,
        device_id: str,
        transport: SerialTransport,
        *,
        codepage: str | None = None,
        width_dots: int = 576,
        status_timeout: float = 0.5,
        graphics: str = "raster",
        statics: list[Static] | None = None,
        state_path: Path | str | None = None,
        store_on_poll: bool = True,
    ) -> None:
        super().__init__(device_id)
        if codepage in ("none", ""):
            codepage = None
        if codepage not in (None, "cp1258"):
            raise ValueError(f"printer {device_id}: codepage must be none or cp1258, not {codepage!r}")
        self.transport = transport
        self.codepage = codepage
        self.width_dots = render.check_width(width_dots)
        self.status_timeout = status_timeout
        self.printed = 0
        if graphics not in escpos.GRAPHICS_MODES:
            raise ValueError(f"printer {device_id}: graphics must be one of {escpos.GRAPHICS_MODES}, not {graphics!r}")
        # A CP1258 printer prints Vietnamese as text already (small): it never needs stored images.
        self.graphics = "raster" if codepage == "cp1258" else graphics
        self.catalog = GraphicsCatalog(self.graphics, self.width_dots) if self.graphics != "raster" else None
        for s in statics or []:
            if self.catalog is not None:
                self.catalog.add(s)
        self.state_path = Path(state_path) if state_path else None
        # The agent stores the images at start (its first poll); a one-off `doctor` run must not write flash.
        self.store_on_poll = store_on_poll
        self.stores = 0  # how many times the static images were (re)sent
        # What the printer holds, as the catalog's digest. NV graphics survive a restart of the agent, so
        # the digest is remembered in the state dir; download graphics (RAM) are re-sent on every start.
        self.stored_digest: str | None = self._load_digest() if self.graphics == "nv" else None
        # ... and image by image (key -> picture hash), so a new service or phrase sends only its own image.
        # None: not known (first start, or the printer was away): everything is stored again.
        self.held_images: dict[str, str] | None = self._load_held() if self.stored_digest else None

    # --- status ------------------------------------------------------------------------------------------

    def _not_answering(self, why: str = "") -> PrinterError:
        reason = f"printer does not answer on {self.transport.port}"
        why = why.removeprefix(f"{self.transport.port}: ")
        return PrinterError(f"{reason} ({why})" if why else reason, DeviceState.offline)

    def status(self) -> PrinterStatus:
        """Ask DLE EOT 1, 2 and 4. Raises :class:`PrinterError` (state offline) when the printer is silent."""
        replies: list[int] = []
        with self.transport.lock:
            for n in escpos.STATUS_QUERIES:
                try:
                    reply = self.transport.exchange(escpos.status_request(n), 1, self.status_timeout)
                except TransportError as e:
                    raise self._not_answering(str(e)) from None
                if not reply:
                    fallback = self._port_status()
                    if fallback is not None:  # a unidirectional USB printer: the usblp status lines
                        return fallback
                    raise self._not_answering()
                replies.append(reply[0])
        try:
            return escpos.decode_status(*replies)
        except ValueError as e:
            raise PrinterError(f"printer on {self.transport.port} sent a garbled status: {e}") from None

    def _port_status(self) -> PrinterStatus | None:
        """Status from the port itself where the printer cannot answer DLE EOT (usblp ``LPGETSTATUS``)."""
        port_status = getattr(self.transport, "port_status", None)
        if port_status is None:
            return None
        try:
            bits = port_status()
        except TransportError as e:
            raise self._not_answering(str(e)) from None
        if bits is None:
            return None
        from ..usblp import lp_status_words

        online, paper_out = lp_status_words(bits)
        return PrinterStatus(online=online, cover_open=False, paper_near_end=False, paper_out=paper_out)

    @staticmethod
    def _health_of(st: PrinterStatus) -> tuple[DeviceState, str]:
        problem = st.problem()
        if problem:
            return DeviceState.failed, problem
        if st.paper_near_end:
            return DeviceState.degraded, "paper near end"
        return DeviceState.ok, ""

    def _load_digest(self) -> str | None:
        if self.state_path is None:
            return None
        try:
            return json.loads(self.state_path.read_text()).get(self.id)
        except (OSError, ValueError, AttributeError):
            return None

    def _load_held(self) -> dict[str, str] | None:
        try:
            held = json.loads(self.state_path.read_text()).get("held_images", {}).get(self.id)  # type: ignore[union-attr]
        except (OSError, ValueError, AttributeError):
            return None
        return held if isinstance(held, dict) else None

    def _save_digest(self) -> None:
        if self.state_path is None:
            return
        try:
            data = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
            if not isinstance(data, dict):
                data = {}
        except (OSError, ValueError):
            data = {}
        data[self.id] = self.stored_digest
        held = data.get("held_images") if isinstance(data.get("held_images"), dict) else {}
        held[self.id] = self.held_images
        data["held_images"] = held
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(self.state_path)
        except OSError as e:
            log.warning("printer %s: cannot remember the stored graphics in %s: %s", self.id, self.state_path, e)

    def set_health(self, state: DeviceState, detail: str = "") -> None:
        # A printer that stopped answering may come back as another printer (swapped) or power-cycled
        # (download graphics lost): store the images again before its next ticket.
        if state is DeviceState.offline and self.stored_digest is not None:
            log.info("printer %s: not answering; its stored images will be sent again when it is back", self.id)
            self.stored_digest = None
            self.held_images = None
        super().set_health(state, detail)

    def poll(self) -> DeviceHealth:
        """Query the printer and update the health. Never raises."""
        try:
            with self.transport.lock:
                self.set_health(*self._health_of(self.status()))
                if self.store_on_poll and self.health().state is not DeviceState.failed:
                    self._store_if_needed()  # at start and after a comeback, not on the first citizen's ticket
        except TransportError as e:
            err = self._not_answering(str(e))
            self.set_health(err.state, err.reason)
        except PrinterError as e:
            self.set_health(e.state, e.reason)
        except Exception as e:  # noqa: BLE001 - poll must never take the agent down
            log.exception("printer %s: status poll failed", self.id)
            self.set_health(DeviceState.failed, f"status check failed: {e}")
        return self.health()

    # --- printing ----------------------------------------------------------------------------------------

    def _write(self, job: bytes) -> None:
        # A raster ticket is ~24 KB: ~12 s at 19200 baud. Write it in pieces that each fit the
        # transport's write timeout (~1 s of line time), not in one write that would time out.
        step = getattr(self.transport, "write_chunk", 0) or max(256, self.transport.baudrate // 10)
        for i in range(0, len(job), step):
            self.transport.write(job[i : i + step])

    def _store_if_needed(self) -> None:
        """Send the static images when the printer does not hold the current set (raises TransportError)."""
        catalog = self.catalog
        if catalog is None or not len(catalog) or catalog.digest() == self.stored_digest:
            return
        job = catalog.update_job(self.held_images) if self.held_images is not None else b""
        if job:
            log.info("printer %s: storing %d new or changed images (%s graphics, %d bytes)", self.id,
                     job.count(b"\x1d(L") + job.count(b"\x1d8L"), catalog.mode, len(job))
        else:
            log.info("printer %s: storing %d images (%s graphics)", self.id, len(catalog), catalog.mode)
            job = catalog.store_job()
        self._write(job)
        # The printer answers DLE EOT when it reaches it, after the images: wait for that (the line time of
        # the job), so the next status poll or ticket does not take a busy printer for a dead one.
        drain = len(job) * 10 / getattr(self.transport, "baudrate", 115200) + 2 * self.status_timeout
        answered = self.transport.exchange(escpos.status_request(1), 1, drain)
        if not answered and getattr(self.transport, "port_status", None) is None:  # usblp: no DLE EOT, fine
            raise TransportError(f"{self.transport.port}: no answer after storing the images")
        self.stored_digest = catalog.digest()
        self.held_images = catalog.image_digests()
        self.stores += 1
        if catalog.mode == "nv":
            self._save_digest()

    def _send(self, job: bytes, catalog: GraphicsCatalog | None = None) -> None:
        """Check the status, then (re)store the static images if the printer lacks them, then send the job;
        all under the port lock."""
        with self.transport.lock:
            try:
                st = self.status()
            except PrinterError as e:
                self.set_health(e.state, e.reason)
                raise
            state, detail = self._health_of(st)
            self.set_health(state, detail)
            if state is DeviceState.failed:
                raise PrinterError(detail)
            try:
                if catalog is not None:
                    self._store_if_needed()
                self._write(job)
            except TransportError as e:
                err = self._not_answering(str(e))
                self.set_health(err.state, err.reason)
                raise err from None
            self.printed += 1

    def print_ticket(self, t: TicketPrint) -> None:
        """Print one ticket. Raises :class:`PrinterError` (nothing printed) when the printer cannot print,
        ``ValueError`` for a ticket that cannot be laid out."""
        if self.catalog is not None:
            self._send(stored_ticket_job(t, self.catalog), self.catalog)
        else:
            self._send(render.ticket_job(t, codepage=self.codepage, width_dots=self.width_dots))

    def ticket_bytes(self, t: TicketPrint) -> int:
        """Bytes one ticket takes on the wire (the stored images excluded: they are sent once)."""
        if self.catalog is not None:
            return len(stored_ticket_job(t, self.catalog))
        return len(render.ticket_job(t, codepage=self.codepage, width_dots=self.width_dots))

    def test_print(self, lines: list[str]) -> None:
        """Print the given lines and cut (the technician's test print)."""
        self._send(render.lines_job(lines, codepage=self.codepage, width_dots=self.width_dots))

    def close(self) -> None:
        self.transport.close()
