"""systemd's notify protocol (READY=1, WATCHDOG=1, STOPPING=1, STATUS=...) over $NOTIFY_SOCKET.

Twelve lines of datagram socket code instead of a dependency (python-systemd needs libsystemd headers to
build, and sdnotify is unmaintained). Does nothing when not run by systemd.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self.sock: socket.socket | None = None
        if self.address:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            if self.address.startswith("@"):
                self.address = "\0" + self.address[1:]

    @property
    def enabled(self) -> bool:
        return self.sock is not None

    def notify(self, state: str) -> bool:
        if not self.sock:
            return False
        try:
            self.sock.sendto(state.encode(), self.address)
            return True
        except OSError:
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before systemd's start (or stop) timeout (systemd >= 236)."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}")


def watchdog_interval_s() -> float | None:
    """Half of systemd's WatchdogSec (from $WATCHDOG_USEC), the interval to ping at; None when unset."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None
