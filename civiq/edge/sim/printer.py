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

from civiq.edge.sim.emulator import PtyEmulator

log = logging.getLogger(__name__)

_MONO = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
_MONO_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
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
    #: everything in paper order, to draw the page: ("text", line, (w, h) magnification, alignment, bold),
    #: ("image", picture), ("qr", data)
    parts: list[tuple] = field(default_factory=list)
    qr: list[str] = field(default_factory=list)  # data of every QR code printed
    cut: str = ""  # "full" or "partial"
    wire_bytes: int = 0  # bytes of the job, from its ESC @ to this cut (stored images sent before excluded)
    wire_s: float = 0.0  # their time on the wire at the emulated baud rate: bytes / (baud / 10)
    paper_dots: int = 0  # paper length printed and fed, in dots (8 dots = 1 mm)
    mechanism_s: float = 0.0  # paper_dots at the emulated print speed
    started_at: float = 0.0  # time.monotonic() when the job's first byte (its ESC @) went on the wire
    wire_done_at: float = 0.0  # ... when its last byte (the cut) was in the printer: started_at + wire_s
    done_at: float = 0.0  # ... when the cut paper is out, in the citizen's hand (wire + mechanism)
    stored: list[bytes] = field(default_factory=list)  # keys of stored images printed on this ticket

    def all_text(self) -> str:
        return "\n".join(self.text)

    def page(self, width_dots: int | None = None) -> Image.Image | None:
        """The ticket as the citizen sees it: pictures, the printer's own text (drawn in a font close to font
        A: 12 x 24 dots a character, times the magnification) and the QR codes, stacked in paper order."""
        from PIL import ImageDraw, ImageFont

        blocks: list[Image.Image] = []
        width = width_dots or max([i.size[0] for i in self.images] or [576])
        for part in self.parts:
            if part[0] == "image":
                blocks.append(part[1])
            elif part[0] == "qr":
                import qrcode

                qr = qrcode.QRCode(border=2, box_size=6)
                qr.add_data(part[1])
                code = qr.make_image().get_image().convert("1")
                block = Image.new("1", (width, code.size[1]), 1)
                block.paste(code, ((width - code.size[0]) // 2, 0))
                blocks.append(block)
            else:
                _, line, (mw, mh), align, bold = part
                font = ImageFont.truetype(_MONO_BOLD if bold else _MONO, 20 * mh)
                h = 30 * mh
                block = Image.new("1", (width, h), 1)
                w = font.getlength(line) * mw
                x = {1: (width - w) / 2, 2: width - w}.get(align, 0)
                if mw == 1:
                    ImageDraw.Draw(block).text((x, 3), line, font=font, fill=0)
                else:  # a wide font: draw at height, stretch horizontally
                    raw = Image.new("1", (max(1, int(font.getlength(line))), h), 1)
                    ImageDraw.Draw(raw).text((0, 3), line, font=font, fill=0)
                    block.paste(raw.resize((max(1, int(w)), h)), (max(0, int(x)), 0))
                blocks.append(block)
        if not blocks:
            return None
        page = Image.new("1", (width, sum(b.size[1] for b in blocks)), 1)
        y = 0
        for b in blocks:
            page.paste(b, (0, y))
            y += b.size[1]
        return page

    @property
    def time_to_paper(self) -> float:
        """Seconds from the job's first byte on the wire to the cut paper out (paced emulators)."""
        return self.done_at - self.started_at


class _Incomplete(Exception):
    """The buffer ends in the middle of a command: wait for more bytes."""


class EscPosEmulator(PtyEmulator):
    """``baudrate`` paces the wire (bytes move at baud/10 per second, both ways; None: as fast as the pty);
    ``speed_mm_s`` is the print mechanism (a typical 80 mm printer: 150-250 mm/s); ``width_dots`` the paper.
    Stored graphics (``GS ( L`` NV: kept over :meth:`start`; download: lost at power-on) are decoded for real."""

    name = "escpos"

    def __init__(self, baudrate: int | None = None, *, speed_mm_s: float = 200.0, width_dots: int = 576,
                 byte_seconds: float | None = None) -> None:
        super().__init__()
        self.baudrate = baudrate
        if byte_seconds is not None:  # a USB or network link: its own speed, not a baud rate
            self.byte_seconds = byte_seconds
        self.speed_mm_s = speed_mm_s
        self.width_dots = width_dots
        self.nv_graphics: dict[bytes, Image.Image] = {}  # survive power-off
        self.download_graphics: dict[bytes, Image.Image] = {}  # RAM: lost at power-on
        self.graphics_defined = 0  # images stored so far (both kinds)
        self.unknown_keys = 0  # prints of a key the printer does not hold (nothing comes out)
        self._paper_at = 0.0
        self._ticket_bytes = 0
        self._ticket_start: float | None = None
        self._chunk_start = 0.0  # time.monotonic() when the chunk being parsed started to arrive
        self._pos = 0  # parse position in the buffer (for the arrival time of a byte)
        self._last_cut: PrintedTicket | None = None
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
            self.download_graphics.clear()  # power-on: RAM graphics are gone, NV graphics stay
        super().start()
        return self

    def power_cycle(self) -> None:
        """Switched off and on (or swapped for a fresh printer of the same model): RAM graphics are lost."""
        with self.lock:
            self.download_graphics.clear()
            self._buf.clear()
            self._reset_parser()
            self._current = PrintedTicket()

    def wire_time(self, n_bytes: int) -> float:
        """Seconds ``n_bytes`` take on this emulator's link (0 when unpaced)."""
        return n_bytes * (self.byte_seconds or 0.0)

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
        # Paced (see PtyEmulator._pace): the chunk has just finished arriving; its first byte started
        # len/(baud/10) s ago. Bytes still buffered from an earlier chunk are treated as arriving with it.
        self._chunk_start = time.monotonic() - self.wire_time(len(data)) - self.wire_time(len(self._buf))
        self._buf += data
        reply = bytearray()
        pos = 0
        buf = self._buf
        while pos < len(buf):
            self._pos = pos
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
            self._ticket_bytes += used
            if self._last_cut is not None:  # the cut's own bytes are in: the ticket's wire share is known
                t, self._last_cut = self._last_cut, None
                t.wire_bytes, self._ticket_bytes = self._ticket_bytes, 0
                t.wire_s = self.wire_time(t.wire_bytes)
                t.wire_done_at = self._chunk_start + self.wire_time(pos)
                t.started_at = self._ticket_start if self._ticket_start is not None else t.wire_done_at - t.wire_s
                t.done_at = max(t.done_at, t.wire_done_at)
                self._ticket_start = None
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
            self._ticket_bytes = 0  # a job starts here: a ticket's wire bytes run from ESC @ to its cut
            self._ticket_start = self._chunk_start + self.wire_time(self._pos)
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
            elif buf[pos + 2] == ord("L") and plen >= 2:
                self._graphics(bytes(buf[pos + 5 : pos + size]))
            return size
        if c == ord("8"):  # GS 8 L p1..p4 ...: graphics with a 4-byte length
            self._need(buf, pos + 7)
            plen = int.from_bytes(buf[pos + 3 : pos + 7], "little")
            size = 7 + plen
            self._need(buf, pos + size)
            if buf[pos + 2] == ord("L") and plen >= 2:
                self._graphics(bytes(buf[pos + 7 : pos + size]))
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
            self._current.parts.append(("qr", self._current.qr[-1]))
            self._advance_paper(8 * 41)  # a version-6 symbol at module size 8 (a URL of ~60 characters)

    def _graphics(self, body: bytes) -> None:
        """GS ( L / GS 8 L: m=48, fn 65/82 delete all, 67/83 define, 69/85 print a stored image."""
        if body[0] not in (48, 0):
            self.skipped += 1
            return
        fn = body[1]
        store = self.nv_graphics if fn in (65, 66, 67, 69) else self.download_graphics
        if fn in (65, 82) and body[2:5] == b"CLR":
            store.clear()
        elif fn in (66, 84) and len(body) >= 4:  # delete the image under one key
            store.pop(body[2:4], None)
        elif fn in (67, 83) and len(body) >= 12 and body[2] == 48:
            key = body[3:5]
            width, height = int.from_bytes(body[6:8], "little"), int.from_bytes(body[8:10], "little")
            width_bytes = (width + 7) // 8
            data = body[11 : 11 + width_bytes * height]
            if len(data) != width_bytes * height:
                self.skipped += 1
                return
            img = Image.frombytes("1", (width_bytes * 8, height), bytes(255 - v for v in data))
            store[key] = img.crop((0, 0, width, height))
            self.graphics_defined += 1
        elif fn in (69, 85) and len(body) >= 6:
            key = body[2:4]
            img = store.get(key)
            if img is None:  # a real printer prints nothing for an unknown key
                self.skipped += 1
                self.unknown_keys += 1
                return
            self._current.stored.append(key)
            self._place(img)
        else:
            self.skipped += 1

    def _place(self, img: Image.Image) -> None:
        """A stored image narrower than the paper lands where ESC a puts it: keep the whole paper width."""
        if self._line:
            self._end_line()
        if img.size[0] < self.width_dots:
            paper = Image.new("1", (self.width_dots, img.size[1]), 1)
            x = {0: 0, 1: (self.width_dots - img.size[0]) // 2, 2: self.width_dots - img.size[0]}.get(
                self.alignment, 0)
            paper.paste(img, (x, 0))
            img = paper
        self._current.images.append(img)
        self._current.parts.append(("image", img))
        self._advance_paper(img.size[1])

    def _advance_paper(self, dots: int) -> None:
        self._current.paper_dots += dots
        mm = dots / 8
        start = max(self._paper_at, time.monotonic())
        self._paper_at = start + mm / self.speed_mm_s

    def _advance_paper_for(self, ticket: PrintedTicket, dots: int) -> None:
        current, self._current = self._current, ticket
        try:
            self._advance_paper(dots)
        finally:
            self._current = current

    def _image(self, data: bytes, width_bytes: int, rows: int) -> None:
        if self._line:
            self._end_line()
        # Printer bit 1 = dot printed; Pillow "1" bit 1 = white: invert to get a picture of the paper.
        img = Image.frombytes("1", (width_bytes * 8, rows), bytes(255 - v for v in data))
        self._current.images.append(img)
        self._current.parts.append(("image", img))
        self._advance_paper(rows)

    def _end_line(self) -> None:
        raw = bytes(self._line)
        self._line.clear()
        codec = self.codepage if not self.codepage.startswith("unknown") else "cp437"
        text = unicodedata.normalize("NFC", raw.decode(codec, errors="replace"))
        self._current.text.append(text)
        self._current.parts.append(("text", text, self.size, self.alignment, self.bold))
        self._advance_paper(30 * self.size[1])  # font A is 24 dots tall, 30 with the line spacing

    def _cut(self, how: str) -> None:
        if self._line:
            self._end_line()
        ticket, self._current = self._current, PrintedTicket()
        ticket.cut = how
        self._advance_paper_for(ticket, 48 + 96)  # feed to the cutter
        self._last_cut = ticket
        ticket.mechanism_s = ticket.paper_dots / 8 / self.speed_mm_s
        ticket.done_at = self._paper_at
        if self.paper_out or self.cover_open or self.offline:
            self.spoiled.append(ticket)
        else:
            self.tickets.append(ticket)
        with self._changed:  # re-entrant: feed() normally runs under self.lock already
            self._changed.notify_all()
