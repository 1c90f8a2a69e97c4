"""A thermal printer on a pty: parses the real ESC/POS byte stream and keeps what would come out of it.

Bytes arrive in arbitrary chunks, so the parser is stateful: an incomplete command waits for more bytes.
Unknown commands are skipped, never fatal. ``DLE EOT n`` is answered from settable flags.

    emu = EscPosEmulator().start()
    printer = ThermalPrinter("p1", SerialTransport(emu.port))
    printer.print_ticket(ticket)
    [t] = emu.wait_tickets(1)
    assert "A001" in t.text
    emu.paper_out = True          # the next status query says so
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from dataclasses import dataclass, field

from PIL import Image

from ..emulator import PtyEmulator

log = logging.getLogger(__name__)

_CODEPAGE_NAMES = {0: "cp437", 16: "cp1252", 52: "cp1258"}

# Commands with a fixed number of argument bytes after the command byte.
_ESC_ARGS = {
    ord("@"): 0, ord("2"): 0, ord("<"): 0,
    ord("!"): 1, ord("E"): 1, ord("-"): 1, ord("a"): 1, ord("t"): 1, ord("d"): 1, ord("J"): 1,
    ord("3"): 1, ord("M"): 1, ord("G"): 1, ord("V"): 1, ord("{"): 1, ord("R"): 1, ord(" "): 1,
    ord("e"): 1, ord("K"): 1, ord("U"): 1, ord("L"): 0, ord("S"): 0, ord("T"): 1, ord("r"): 1,
    ord("$"): 2, ord("\\"): 2, ord("c"): 2, ord("p"): 3, ord("W"): 8,
}
_GS_ARGS = {
    ord("!"): 1, ord("H"): 1, ord("f"): 1, ord("h"): 1, ord("w"): 1, ord("B"): 1, ord("b"): 1,
    ord("a"): 1, ord("r"): 1, ord("I"): 1, ord("L"): 2, ord("W"): 2, ord("P"): 2, ord("$"): 2,
    ord("\\"): 2, ord("T"): 1,
}


@dataclass
class PrintedTicket:
    """One piece of paper, from the first byte after the previous cut to this cut."""

    text: list[str] = field(default_factory=list)  # native text lines, decoded, NFC
    images: list[Image.Image] = field(default_factory=list)  # raster images (mode "1", black = printed)
    qr: list[str] = field(default_factory=list)  # data of every QR code printed
    cut: str = ""  # "full" or "partial"

    def all_text(self) -> str:
        return "\n".join(self.text)


class _Incomplete(Exception):
    """The buffer ends in the middle of a command: wait for more bytes."""


class EscPosEmulator(PtyEmulator):
    name = "escpos"

    def __init__(self) -> None:
        super().__init__()
        self.paper_near_end = False
        self.paper_out = False
        self.cover_open = False
        self.offline = False
        self.tickets: list[PrintedTicket] = []
        self.spoiled: list[PrintedTicket] = []  # "printed" while paper out / cover open: nothing came out
        self.status_queries = 0
        self.skipped = 0  # unknown or unsupported commands skipped
        self._changed = threading.Condition(self.lock)
        self._buf = bytearray()
        self._reset_parser()
        self._current = PrintedTicket()

    def start(self) -> EscPosEmulator:
        """Plug in (again): a re-plugged printer has lost any half-received job."""
        with self.lock:
            self._buf.clear()
            self._reset_parser()
            self._current = PrintedTicket()
        super().start()
        return self

    # --- what the test harness sets and reads ----------------------------------------------------------

    def status_byte(self, n: int) -> int | None:
        """The reply to DLE EOT n given the current flags (None: no reply for that n)."""
        b = 0x12
        if n == 1:
            if self.offline or self.cover_open or self.paper_out:
                b |= 0x08
        elif n == 2:
            if self.cover_open:
                b |= 0x04
            if self.paper_out:
                b |= 0x20
        elif n == 4:
            if self.paper_near_end or self.paper_out:
                b |= 0x0C
            if self.paper_out:
                b |= 0x60
        elif n != 3:
            return None
        return b

    def wait_tickets(self, n: int, timeout: float = 5.0) -> list[PrintedTicket]:
        """Block until at least ``n`` tickets were cut; return them. Raises ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.tickets) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.tickets)} of {n} tickets printed after {timeout}s")
                self._changed.wait(left)
            return list(self.tickets)

    # --- parser ------------------------------------------------------------------------------------------

    def _reset_parser(self) -> None:
        self.codepage = "cp437"
        self.size = (1, 1)
        self.bold = False
        self.alignment = 0
        self._line = bytearray()
        self._qr_data: bytes | None = None

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        reply = bytearray()
        pos = 0
        buf = self._buf
        while pos < len(buf):
            try:
                used, out = self._command(buf, pos)
            except _Incomplete:
                break
            except Exception:  # noqa: BLE001 - a parser bug must never kill the emulator thread
                log.exception("escpos emulator: cannot parse byte %#04x, skipping it", buf[pos])
                used, out = 1, b""
                self.skipped += 1
            pos += used
            reply += out
        del self._buf[:pos]
        return bytes(reply)

    @staticmethod
    def _need(buf: bytearray, end: int) -> None:
        if end > len(buf):
            raise _Incomplete

    def _command(self, buf: bytearray, pos: int) -> tuple[int, bytes]:
        """Parse one command at ``pos``: return (bytes consumed, reply)."""
        b = buf[pos]
        if b == 0x10:
            return self._dle(buf, pos)
        if b == 0x1B:
            return self._esc(buf, pos), b""
        if b == 0x1D:
            return self._gs(buf, pos), b""
        if b == 0x1C:  # FS: kanji modes etc.; FS p n m prints a stored logo
            self._need(buf, pos + 2)
            c = buf[pos + 1]
            if c == ord("p"):
                self._need(buf, pos + 4)
                return 4, b""
            self.skipped += 1
            return (3 if c in (ord("!"), ord("-"), ord("C"), ord("S")) else 2), b""
        if b == 0x0A:
            self._end_line()
            return 1, b""
        if b == 0x0C:  # FF in standard mode: print and feed
            if self._line:
                self._end_line()
            return 1, b""
        if b < 0x20:  # CR, HT, CAN and other control bytes: nothing to keep
            return 1, b""
        self._line.append(b)
        return 1, b""

    def _dle(self, buf: bytearray, pos: int) -> tuple[int, bytes]:
        self._need(buf, pos + 2)
        c = buf[pos + 1]
        if c == 0x04:  # DLE EOT n: real-time status
            self._need(buf, pos + 3)
            self.status_queries += 1
            reply = self.status_byte(buf[pos + 2])
            return 3, (bytes([reply]) if reply is not None else b"")
        if c == 0x05:  # DLE ENQ n
            self._need(buf, pos + 3)
            return 3, b""
        if c == 0x14:  # DLE DC4 fn ... (pulse, power off, clear buffer): 5 bytes
            self._need(buf, pos + 5)
            return 5, b""
        self.skipped += 1
        return 2, b""

    def _esc(self, buf: bytearray, pos: int) -> int:
        self._need(buf, pos + 2)
        c = buf[pos + 1]
        if c == ord("*"):  # ESC * m nL nH d...: column bit image
            self._need(buf, pos + 5)
            m, n = buf[pos + 2], buf[pos + 3] | buf[pos + 4] << 8
            size = 5 + n * (3 if m in (32, 33) else 1)
            self._need(buf, pos + size)
            return size
        if c not in _ESC_ARGS:
            self.skipped += 1
            return 2
        size = 2 + _ESC_ARGS[c]
        self._need(buf, pos + size)
        arg = buf[pos + 2] if size > 2 else 0
        if c == ord("@"):
            if self._line:
                self._end_line()
            self._reset_parser()
        elif c == ord("t"):
            self.codepage = _CODEPAGE_NAMES.get(arg, f"unknown-{arg}")
        elif c == ord("E"):
            self.bold = bool(arg & 1)
        elif c == ord("a"):
            self.alignment = arg % 48 if arg >= 48 else arg
        elif c == ord("d") and self._line:
            self._end_line()
        return size

    def _gs(self, buf: bytearray, pos: int) -> int:
        self._need(buf, pos + 2)
        c = buf[pos + 1]
        if c == ord("V"):
            self._need(buf, pos + 3)
            m = buf[pos + 2]
            size = 3 if m in (0, 1, 48, 49) else 4
            self._need(buf, pos + size)
            self._cut("full" if m in (0, 48, 65, 97, 103) else "partial")
            return size
        if c == ord("v"):  # GS v 0 m xL xH yL yH d...
            self._need(buf, pos + 8)
            xb = buf[pos + 4] | buf[pos + 5] << 8
            rows = buf[pos + 6] | buf[pos + 7] << 8
            size = 8 + xb * rows
            self._need(buf, pos + size)
            if xb and rows:
                self._image(bytes(buf[pos + 8 : pos + size]), xb, rows)
            return size
        if c == ord("("):  # GS ( X pL pH ...: length-prefixed function
            self._need(buf, pos + 5)
            plen = buf[pos + 3] | buf[pos + 4] << 8
            size = 5 + plen
            self._need(buf, pos + size)
            if buf[pos + 2] == ord("k") and plen >= 2:
                self._symbol(bytes(buf[pos + 5 : pos + size]))
            return size
        if c == ord("k"):  # barcode: m 0..6 NUL-terminated, m 65..79 with a length byte
            self._need(buf, pos + 3)
            m = buf[pos + 2]
            if m <= 6:
                end = buf.find(b"\x00", pos + 3)
                if end < 0:
                    raise _Incomplete
                return end + 1 - pos
            self._need(buf, pos + 4)
            size = 4 + buf[pos + 3]
            self._need(buf, pos + size)
            return size
        if c == ord("!"):
            self._need(buf, pos + 3)
            n = buf[pos + 2]
            self.size = ((n >> 4) + 1, (n & 0x0F) + 1)
            return 3
        if c in _GS_ARGS:
            size = 2 + _GS_ARGS[c]
            self._need(buf, pos + size)
            return size
        self.skipped += 1
        return 2

    def _symbol(self, body: bytes) -> None:
        cn, fn = body[0], body[1]
        if cn != 49:  # PDF417 and others: nothing to keep
            return
        if fn == 80 and len(body) >= 3:
            self._qr_data = body[3:]
        elif fn == 81 and self._qr_data is not None:
            if self._line:
                self._end_line()
            self._current.qr.append(self._qr_data.decode("utf-8", errors="replace"))

    def _image(self, data: bytes, width_bytes: int, rows: int) -> None:
        if self._line:
            self._end_line()
        # Printer bit 1 = dot printed; Pillow "1" bit 1 = white: invert to get a picture of the paper.
        img = Image.frombytes("1", (width_bytes * 8, rows), bytes(255 - v for v in data))
        self._current.images.append(img)

    def _end_line(self) -> None:
        raw = bytes(self._line)
        self._line.clear()
        codec = self.codepage if not self.codepage.startswith("unknown") else "cp437"
        text = unicodedata.normalize("NFC", raw.decode(codec, errors="replace"))
        self._current.text.append(text)

    def _cut(self, how: str) -> None:
        if self._line:
            self._end_line()
        ticket, self._current = self._current, PrintedTicket()
        ticket.cut = how
        if self.paper_out or self.cover_open or self.offline:
            self.spoiled.append(ticket)
        else:
            self.tickets.append(ticket)
        with self._changed:  # re-entrant: feed() normally runs under self.lock already
            self._changed.notify_all()
