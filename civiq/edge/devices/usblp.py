"""A USB printer through the kernel's ``usblp`` driver: the character device ``/dev/usb/lp0``.

Same interface as :class:`~civiq.edge.devices.transport.SerialTransport` (``write``, ``read``, ``exchange``,
``reset_input``, ``close``, ``lock``, ``port``), so :class:`ThermalPrinter` drives it unchanged.

What the usblp driver allows (docs/technician.md, "USB printers"):

- Writes go to the printer's bulk-out endpoint. The file is opened non-blocking and every write waits with
  ``poll()`` for at most ``timeout`` seconds, so a jammed printer is reported instead of hanging the agent.
- Reads (the ``DLE EOT`` status replies) work only when the printer's USB interface is *bidirectional*
  (usblp protocol 2; most ESC/POS printers are). A unidirectional printer never answers: the transport
  then offers :meth:`port_status`, the ``LPGETSTATUS`` ioctl (the IEEE-1284 status lines: paper out,
  selected, error), which the printer driver uses instead. Cover open and paper near end cannot be seen
  that way.
- Unplugging the printer makes the open file fail (``ENODEV``) and the device file disappear; the next
  operation re-opens it, so a printer plugged back is found again.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
import threading
import time

from .transport import ByteTransport, TransportError

LPGETSTATUS = 0x060B  # <linux/lp.h>: _IO(0x06, 0x0b)
LP_PERRORP = 0x08  # 1 = no error
LP_PSELECD = 0x10  # 1 = selected (online)
LP_POUTPA = 0x20  # 1 = paper out


class UsbLpTransport(ByteTransport):
    """Bytes to and from a ``usblp`` device file (or a stand-in: a pty with the same open/read/write)."""

    kind = "usb"
    write_chunk = 4096  # bytes per write() call; the USB link is far faster than the print head

    def __init__(self, port: str, timeout: float = 0.5, write_timeout: float = 5.0) -> None:
        self.port = port
        self.timeout = timeout
        self.write_timeout = write_timeout
        self._fd: int | None = None
        self.lock = threading.RLock()

    def _open(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            except FileNotFoundError:
                raise TransportError(f"cannot open {self.port}: no such device (USB printer unplugged or "
                                     "switched off?)") from None
            except PermissionError:
                raise TransportError(f"cannot open {self.port}: permission denied (is the civiq user in group "
                                     "lp? udev rule firmware-config/udev/99-civiq.rules)") from None
            except OSError as e:
                raise TransportError(f"cannot open {self.port}: {e.strerror or e}") from None
        return self._fd

    def _fail(self, e: OSError | str) -> TransportError:
        self.close()
        if isinstance(e, OSError) and e.errno in (errno.ENODEV, errno.EIO, errno.ENXIO):
            return TransportError(f"{self.port}: the USB printer went away ({e.strerror})")
        return TransportError(f"{self.port}: {e.strerror if isinstance(e, OSError) else e}")

    def write(self, data: bytes) -> None:
        with self.lock:
            fd = self._open()
            view = memoryview(data)
            deadline = time.monotonic() + self.write_timeout
            try:
                while view:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise self._fail(f"write timed out after {self.write_timeout:g} s with "
                                         f"{len(view)} bytes left (printer busy or jammed)")
                    _, w, _ = select.select([], [fd], [], min(left, 0.2))
                    if not w:
                        continue
                    try:
                        n = os.write(fd, view[: self.write_chunk])
                    except BlockingIOError:
                        continue
                    view = view[n:]
            except OSError as e:
                if isinstance(e, TransportError):
                    raise
                raise self._fail(e) from None

    def _read_some(self, n: int, wait: float) -> bytes | None:
        fd = self._open()
        try:
            r, _, _ = select.select([fd], [], [], min(wait, 0.05))
            if not r:
                return b""
            try:
                chunk = os.read(fd, n)
            except BlockingIOError:
                return b""
        except OSError as e:
            if e.errno == errno.EINVAL:  # a unidirectional printer: usblp refuses reads
                return None
            raise self._fail(e) from None
        if not chunk:
            time.sleep(0.005)  # usblp returns 0 while its bulk-in URB is pending
        return chunk

    def reset_input(self) -> None:
        """Drop stale bytes (a late status reply) without waiting."""
        with self.lock:
            fd = self._open()
            try:
                while select.select([fd], [], [], 0)[0]:
                    if not os.read(fd, 4096):
                        break
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise self._fail(e) from None

    def port_status(self) -> int | None:
        """The usblp ``LPGETSTATUS`` byte (``LP_*`` bits), or None where the file is not a usblp device."""
        with self.lock:
            fd = self._open()
            try:
                out = fcntl.ioctl(fd, LPGETSTATUS, struct.pack("i", 0))
            except OSError as e:
                if e.errno in (errno.ENOTTY, errno.EINVAL, errno.ENOSYS):
                    return None
                raise self._fail(e) from None
            return struct.unpack("i", out)[0] & 0xFF

    def close(self) -> None:
        with self.lock:
            if self._fd is not None:
                try:
                    os.close(self._fd)
                except OSError:
                    pass
                self._fd = None


def lp_status_words(bits: int) -> tuple[bool, bool]:
    """(online, paper_out) from an ``LPGETSTATUS`` byte."""
    return bool(bits & LP_PSELECD) and bool(bits & LP_PERRORP), bool(bits & LP_POUTPA)
