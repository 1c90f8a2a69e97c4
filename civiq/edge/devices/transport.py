"""How bytes travel to serial devices: a pyserial port or URL (``/dev/ttyUSB0``, ``socket://host:port``).

The device encoders never see pyserial; they get a :class:`SerialTransport`. It reopens the port after an
error (a printer unplugged and plugged back), tolerates ports without modem lines (ptys raise ``OSError`` 25
on DTR/RTS, see MEASURED.md) and serialises access so a status poll never interleaves with a print job.
"""

from __future__ import annotations

import threading
import time

try:
    import serial
except ModuleNotFoundError:  # no pyserial (e.g. a gateway checking a center config): needed only to open a port
    serial = None  # type: ignore[assignment]

from civiq.errors import EdgeError


class TransportError(EdgeError, OSError):
    """The device is not reachable (port missing, unplugged, closed)."""


class ByteTransport:
    """What a device driver sees of its link: ``write``, ``read`` within a deadline, ``exchange``.

    Subclasses move the bytes (:class:`SerialTransport` here, ``UsbLpTransport`` and ``TcpTransport`` beside
    it); they hold ``lock`` (an RLock) and ``timeout`` and implement ``write``, ``reset_input``, ``close`` and
    :meth:`_read_some`."""

    timeout: float
    lock: threading.RLock

    def _read_some(self, n: int, wait: float) -> bytes | None:
        """Up to ``n`` bytes that arrive within ``wait`` seconds (``b""``: none yet; None: the link cannot
        be read, stop)."""
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def reset_input(self) -> None:
        raise NotImplementedError

    def read(self, n: int, timeout: float | None = None) -> bytes:
        """Read up to ``n`` bytes, waiting at most ``timeout`` seconds in all."""
        with self.lock:
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            buf = b""
            while len(buf) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                chunk = self._read_some(n - len(buf), left)
                if chunk is None:
                    break
                buf += chunk
            return buf

    def exchange(self, data: bytes, reply_len: int, timeout: float | None = None) -> bytes:
        """Write a request and read its reply, atomically with respect to other users of the link."""
        with self.lock:
            self.reset_input()
            self.write(data)
            return self.read(reply_len, timeout)


class SerialTransport(ByteTransport):
    def __init__(self, port: str, baudrate: int = 9600, timeout: float = 0.5) -> None:
        if serial is None:  # the CLI turns this into "pip install 'civiq[edge]'"
            raise ModuleNotFoundError("No module named 'serial'", name="serial")
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self._ser: serial.SerialBase | None = None
        self.lock = threading.RLock()

    def _open(self) -> serial.SerialBase:
        if self._ser is None or not self._ser.is_open:
            try:
                ser = serial.serial_for_url(self.port, do_not_open=True, baudrate=self.baudrate,
                                            timeout=self.timeout, write_timeout=max(self.timeout, 2.0))
                try:
                    ser.dsrdtr = False
                    ser.rtscts = False
                except (OSError, ValueError):
                    pass
                ser.open()
            except (serial.SerialException, OSError, ValueError) as e:
                raise TransportError(f"cannot open {self.port}: {e}") from None
            self._ser = ser
        return self._ser

    def _fail(self, e: Exception) -> TransportError:
        self.close()
        return TransportError(f"{self.port}: {e}")

    def write(self, data: bytes) -> None:
        with self.lock:
            ser = self._open()
            try:
                # The OS buffers KBs ahead of the wire (a pty wakes a blocked writer only once ~13 KB have
                # drained): a write may wait for all of that at the baud rate before its own bytes fit.
                ser.write_timeout = max(self.timeout, 2.0, (32768 + len(data)) * 10 / self.baudrate + 1.0)
                ser.write(data)
                ser.flush()
            except (serial.SerialException, OSError) as e:
                raise self._fail(e) from None

    def _read_some(self, n: int, wait: float) -> bytes:
        ser = self._open()
        try:
            ser.timeout = min(wait, 0.05)
            return ser.read(n)
        except (serial.SerialException, OSError, TypeError) as e:
            raise self._fail(e) from None

    def reset_input(self) -> None:
        with self.lock:
            ser = self._open()
            try:
                ser.reset_input_buffer()
            except (serial.SerialException, OSError, termios_error()) as e:
                raise self._fail(e) from None

    def close(self) -> None:
        with self.lock:
            if self._ser is not None:
                try:
                    self._ser.close()
                except Exception:  # noqa: BLE001 - closing a dead port
                    pass
                self._ser = None


def termios_error() -> type[Exception]:
    try:
        import termios

        return termios.error
    except ImportError:  # pragma: no cover
        return OSError
