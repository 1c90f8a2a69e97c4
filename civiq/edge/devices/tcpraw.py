"""A network printer on raw TCP port 9100 ("JetDirect" / "RAW" printing).

Same interface as :class:`~civiq.edge.devices.transport.SerialTransport`; the ESC/POS status request
``DLE EOT n`` is answered on the same socket, so the printer driver checks paper and cover exactly as on a
serial line.

- One connection is kept open and re-made on demand: after any error (printer switched off, cable pulled,
  printer closing an idle connection) the socket is dropped and the next operation connects again. A
  connection closed by the printer is noticed before a job (``reset_input`` sees the end of stream) and
  re-made once, so an idle timeout on the printer side never costs a ticket.
- Every step has a timeout: connect (``connect_timeout``), each write (``write_timeout``), each read.
  A printer that is gone is reported within about ``connect_timeout`` seconds, never hangs the agent.
- Most network thermal printers take one client at a time: a second agent (or ``civiq edge doctor`` while
  the agent runs) waits or is refused.
"""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlparse

from .transport import ByteTransport, TransportError

DEFAULT_PORT = 9100


def parse_tcp_url(url: str) -> tuple[str, int]:
    """``tcp://host[:port]`` -> (host, port); port 9100 when absent. Raises ``ValueError`` in plain words."""
    u = urlparse(url.strip())
    if u.scheme != "tcp":
        raise ValueError(f"'{url}' is not a network printer address: write it tcp://<printer IP>:9100")
    if u.path not in ("", "/") or u.query or u.fragment or u.username:
        raise ValueError(f"'{url}' has extra parts: write only tcp://<printer IP>:9100")
    try:
        port = u.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"'{url}': the TCP port must be a number 1-65535 (network printers use 9100)") from None
    if not u.hostname:
        raise ValueError(f"'{url}' has no printer address: write tcp://192.168.1.50:9100")
    return u.hostname, port


class TcpTransport(ByteTransport):
    kind = "tcp"
    write_chunk = 8192

    def __init__(self, url: str, timeout: float = 0.5, connect_timeout: float = 2.0,
                 write_timeout: float = 5.0) -> None:
        self.port = url  # what the driver names in its messages
        self.host, self.tcp_port = parse_tcp_url(url)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self._sock: socket.socket | None = None
        self.lock = threading.RLock()
        self.connects = 0  # connections made (tests: a reconnect is visible)

    def _open(self) -> socket.socket:
        if self._sock is None:
            try:
                s = socket.create_connection((self.host, self.tcp_port), timeout=self.connect_timeout)
            except TimeoutError:
                raise TransportError(f"cannot connect to {self.host}:{self.tcp_port}: no answer within "
                                     f"{self.connect_timeout:g} s (printer off, wrong IP or another network?)"
                                     ) from None
            except ConnectionRefusedError:
                raise TransportError(f"cannot connect to {self.host}:{self.tcp_port}: connection refused "
                                     "(printer starting up, or raw port 9100 printing disabled)") from None
            except OSError as e:
                raise TransportError(f"cannot connect to {self.host}:{self.tcp_port}: {e.strerror or e}") from None
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            self._sock = s
            self.connects += 1
        return self._sock

    def _fail(self, what: str) -> TransportError:
        self.close()
        return TransportError(f"{self.port}: {what}")

    def write(self, data: bytes) -> None:
        with self.lock:
            s = self._open()
            try:
                s.settimeout(self.write_timeout)
                s.sendall(data)
            except TimeoutError:
                raise self._fail(f"write timed out after {self.write_timeout:g} s (printer busy or jammed)") from None
            except OSError as e:
                raise self._fail(f"connection lost while sending ({e.strerror or e})") from None

    def _read_some(self, n: int, wait: float) -> bytes:
        s = self._open()
        try:
            s.settimeout(wait)
            chunk = s.recv(n)
        except TimeoutError:
            return b""
        except OSError as e:
            raise self._fail(f"connection lost ({e.strerror or e})") from None
        if not chunk:
            raise self._fail("the printer closed the connection")
        return chunk

    def _drain(self) -> bool:
        """Drop pending bytes; False when the printer has closed the connection."""
        assert self._sock is not None
        s = self._sock
        try:
            s.setblocking(False)
            while True:
                try:
                    chunk = s.recv(4096)
                except BlockingIOError:
                    return True
                if not chunk:
                    return False
        except OSError:
            return False
        finally:
            if self._sock is not None:
                s.settimeout(self.timeout)

    def reset_input(self) -> None:
        """Drop stale bytes; a connection the printer closed meanwhile is re-made here (once)."""
        with self.lock:
            self._open()
            if not self._drain():
                self.close()
                self._open()

    def close(self) -> None:
        with self.lock:
            if self._sock is not None:
                try:
                    self._sock.close()
                except OSError:
                    pass
                self._sock = None
