"""How bytes travel to serial devices: a pyserial port or URL (``/dev/ttyUSB0``, ``socket://host:port``).

The device encoders never see pyserial; they get a :class:`SerialTransport`. It reopens the port after an
error (a printer unplugged and plugged back), tolerates ports without modem lines (ptys raise ``OSError`` 25
on DTR/RTS, see MEASURED.md) and serialises access so a status poll never interleaves with a print job.
"""

from __future__ import annotations

import threading
import time

import serial


class TransportError(OSError):
    """The device is not reachable (port missing, unplugged, closed)."""


class SerialTransport:
    def __init__(self, port: str, baudrate: int = 9600, timeout: float = 0.5) -> None:
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

    def read(self, n: int, timeout: float | None = None) -> bytes:
        """Read up to ``n`` bytes, waiting at most ``timeout`` seconds in all."""
        with self.lock:
            ser = self._open()
            deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
            buf = b""
            try:
                while len(buf) < n:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    ser.timeout = min(left, 0.05)
                    chunk = ser.read(n - len(buf))
                    if chunk:
                        buf += chunk
            except (serial.SerialException, OSError, TypeError) as e:
                raise self._fail(e) from None
            return buf

    def reset_input(self) -> None:
        with self.lock:
            ser = self._open()
            try:
                ser.reset_input_buffer()
            except (serial.SerialException, OSError, termios_error()) as e:
                raise self._fail(e) from None

    def exchange(self, data: bytes, reply_len: int, timeout: float | None = None) -> bytes:
        """Write a request and read its reply, atomically with respect to other users of the port."""
        with self.lock:
            self.reset_input()
            self.write(data)
            return self.read(reply_len, timeout)

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
