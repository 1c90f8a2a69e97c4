"""Stand-ins for printers that are not on a serial line: a network printer (raw TCP, port 9100) and a USB
printer (the ``/dev/usb/lp0`` device file). Both decode the bytes with the one ESC/POS parser,
:class:`~civiq.edge.sim.printer.EscPosEmulator`, and keep what came out of the printer.

    net = NetworkPrinterEmulator(link_bps=10_000_000).start()     # tcp://127.0.0.1:<free port>
    printer = ThermalPrinter("p1", TcpTransport(net.url))
    printer.print_ticket(ticket); net.wait_tickets(1)[0].qr
    net.unplug()      # power cut: the port refuses connections, open ones are reset
    net.start()       # back, on the same port

    usb = UsbPrinterStandIn(tmp_path / "lp0").start()            # a pty behind a device-file path
    printer = ThermalPrinter("p2", UsbLpTransport(str(usb.path)))
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

from civiq.edge.sim.printer import EscPosEmulator, PrintedTicket

#: USB 2.0 full speed (12 Mbit/s) carries ~1 MB/s of bulk data to a printer: the USB stand-in's pace.
USB_BYTE_SECONDS = 1 / 1_000_000

_FLAGS = ("paper_near_end", "paper_out", "cover_open", "offline")


class NetworkPrinterEmulator:
    """A thermal printer's network card: one client at a time on raw TCP, ``DLE EOT`` answered on the socket.

    ``link_bps`` is the link's speed in bits per second (a 10 Mbit/s printer card by default): bytes are
    handed to the parser no faster than ``8 / link_bps`` s each, so timings seen by tests are physical."""

    name = "escpos-tcp"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, link_bps: int = 10_000_000,
                 emu: EscPosEmulator | None = None) -> None:
        self.host = host
        self.tcp_port = port
        self.link_bps = link_bps
        self.emu = emu if emu is not None else EscPosEmulator()
        self.muted = False
        self.plugged = False
        self.connections = 0
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- what a test or the simulator reads and sets (the printer's state lives in the parser) ---------
    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.tcp_port}"

    port = url  # same attribute name as the pty emulators

    @property
    def tickets(self) -> list[PrintedTicket]:
        return self.emu.tickets

    @tickets.setter
    def tickets(self, value: list[PrintedTicket]) -> None:
        self.emu.tickets = value

    @property
    def received(self) -> bytearray:
        return self.emu.received

    def wait_tickets(self, n: int, timeout: float = 5.0) -> list[PrintedTicket]:
        return self.emu.wait_tickets(n, timeout)

    def __getattr__(self, name: str) -> object:  # paper_out, cover_open, status_queries, spoiled...
        if name in _FLAGS or name in ("status_queries", "spoiled", "skipped"):
            return getattr(self.emu, name)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: object) -> None:
        if name in _FLAGS:
            setattr(self.emu, name, value)
        else:
            super().__setattr__(name, value)

    # --- power -----------------------------------------------------------------------------------------
    def start(self) -> NetworkPrinterEmulator:
        """Power on (again, on the same port): a restarted printer has lost any half-received job."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.tcp_port))
        s.listen(1)
        s.settimeout(0.05)
        self.tcp_port = s.getsockname()[1]
        self.emu.power_cycle()  # half-received job and RAM (download) graphics are gone; NV graphics stay
        self._listener = s
        self._stop.clear()
        self.plugged = True
        self._thread = threading.Thread(target=self._serve, name=f"emu-{self.name}", daemon=True)
        self._thread.start()
        return self

    def unplug(self) -> None:
        """Power cut / cable pulled: the port refuses connections and the open one is reset."""
        self._stop.set()
        for s in (self._listener, self._client):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(2)
        self._listener = self._client = None
        self.plugged = False

    stop = unplug

    def drop_connection(self) -> None:
        """The printer closes the connection (its idle timeout) but stays on."""
        c = self._client
        if c is not None:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # --- the wire ----------------------------------------------------------------------------------------
    def _serve(self) -> None:
        listener = self._listener
        while not self._stop.is_set() and listener is not None:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._client = conn
            self.connections += 1
            try:
                self._talk(conn)
            finally:
                try:
                    conn.close()
                except OSError:
                    pass
                self._client = None

    def _talk(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        free_at = time.monotonic()  # when the link has carried every byte received so far
        while not self._stop.is_set():
            try:
                data = conn.recv(1024)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            free_at = max(free_at, time.monotonic()) + len(data) * 8 / self.link_bps
            wait = free_at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            with self.emu.lock:
                self.emu.received += data
                if self.muted:
                    continue
                reply = self.emu.feed(data)
            if reply:
                try:
                    conn.sendall(reply)
                except OSError:
                    return


class UsbPrinterStandIn:
    """A USB printer's device file: an :class:`EscPosEmulator` pty reached through ``path`` (as
    ``/dev/usb/lp0`` is), paced at USB full speed (~1 MB/s). Unplugging removes the path and breaks the open
    file, as the usblp driver does."""

    def __init__(self, path: str | Path, emu: EscPosEmulator | None = None) -> None:
        self.path = Path(path)
        self.emu = emu if emu is not None else EscPosEmulator(byte_seconds=USB_BYTE_SECONDS)

    @property
    def port(self) -> str:
        return str(self.path)

    def start(self) -> UsbPrinterStandIn:
        self.emu.start()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".new")
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(self.emu.port, tmp)
        os.replace(tmp, self.path)
        return self

    def unplug(self) -> None:
        if self.path.is_symlink():
            self.path.unlink()
        self.emu.unplug()

    stop = unplug

    def wait_tickets(self, n: int, timeout: float = 5.0) -> list[PrintedTicket]:
        return self.emu.wait_tickets(n, timeout)
