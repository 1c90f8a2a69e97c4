"""Base for device emulators: a pty (or TCP socket) whose far end decodes the real protocol bytes.

An emulator keeps what a person would see (printed tickets, digits on a display) so tests and the simulator
run exactly the driver code that runs on a Pi. It can be *unplugged* (the port disappears) and *muted*
(the port stays but nothing answers: a shorted RS-485 bus).

    emu = MyEmulator().start()
    driver = MyDriver(SerialTransport(emu.port))
    ...
    emu.unplug()
"""

from __future__ import annotations

import os
import select
import threading
import time
import tty


class PtyEmulator:
    """Subclasses implement :meth:`feed`: take received bytes, return the reply bytes (may be ``b""``)."""

    name = "emulator"
    #: seconds per byte on the link (serial: 10 bits a byte, so 10/baud); None: as fast as the pty
    byte_seconds: float | None = None

    @property
    def baudrate(self) -> int | None:
        return round(10 / self.byte_seconds) if self.byte_seconds else None

    @baudrate.setter
    def baudrate(self, baud: int | None) -> None:
        if baud is not None and baud <= 0:
            raise ValueError(f"baud rate must be positive, not {baud}")
        self.byte_seconds = 10 / baud if baud else None

    def _pace(self, n: int) -> None:
        """Let ``n`` bytes take their physical time on the wire (the UART shifts them out one by one)."""
        if not self.byte_seconds or n <= 0:
            return
        now = time.monotonic()
        self._wire_free = max(self._wire_free, now) + n * self.byte_seconds
        if self._wire_free > now:
            time.sleep(self._wire_free - now)

    def _chunk(self) -> int:
        """Bytes read per step: ~20 ms of line time when paced, so the far side feels the back-pressure."""
        if not self.byte_seconds:
            return 4096
        return max(1, min(4096, int(0.02 / self.byte_seconds)))

    def __init__(self) -> None:
        self.master: int | None = None
        self.slave: int | None = None
        self.port = ""
        self.muted = False
        self.plugged = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lock = threading.RLock()
        self.received = bytearray()  # every byte ever received, for tests
        self._wire_free = 0.0  # when the (paced) wire is free again, time.monotonic()

    def start(self) -> PtyEmulator:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.plugged = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"emu-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self.master is not None
        master = self.master
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([master], [], [], 0.05)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                data = os.read(master, self._chunk())
            except OSError:
                continue  # no reader on the slave side yet (EIO): keep waiting
            if not data:
                continue
            self._pace(len(data))
            with self.lock:
                self.received += data
                if self.muted:
                    continue
                reply = self.feed(data)
            if reply:
                self._pace(len(reply))
                try:
                    os.write(master, reply)
                except OSError:
                    pass

    def feed(self, data: bytes) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def unplug(self) -> None:
        """The cable is pulled: the device file disappears and open ports fail."""
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = None
        self.plugged = False

    def stop(self) -> None:
        self.unplug()
