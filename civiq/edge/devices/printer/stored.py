"""Tickets from images stored in the printer: the static parts once, then a few hundred bytes per ticket.

A Vietnamese ticket rendered as raster is ~24 KB (12 s at 19200 baud). Everything Vietnamese on a ticket is
*static* for a center — its name, the service names, the fixed labels ("Số thứ tự / Your number"), the priority
class labels — so those are rendered once (Pillow, DejaVu Sans), stored in the printer under two-byte keys
(``GS ( L`` NV graphics, or download graphics in the printer's RAM) and printed by key with 11 bytes each. What
changes per ticket (number, people ahead, wait minutes, time) is ASCII and goes as the printer's own text. The QR
stays the printer's ``GS ( k``.

    cat = GraphicsCatalog("nv", 576)
    job = stored_ticket_job(t, cat)          # adds any static it has not seen to the catalog
    if cat.digest() != printer_has:           # new center name, service, label...
        send(cat.store_job())                 # delete all + define every image (once)
    send(job)                                 # ~300 bytes

Layout, top to bottom: [center name / "Số thứ tự / Your number"] **A001** [priority label, inverted]
[service vi / en] [labels] values [QR] ["Quét mã để theo dõi lượt / ..."].
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from PIL import Image, ImageOps

from . import escpos
from .render import FONT_A_DOTS, Line, TicketPrint, check_width, render_lines

MAX_KEYS = 94 * 10  # key codes '0'..'9' x '!'..'~'

_ETA_MINUTES = re.compile(r"^\s*(~?\s*\d+)\s*phút\s*/\s*min\s*$")


@dataclass(frozen=True)
class Static:
    """A block of lines that is the same on many tickets: stored once, printed by key."""

    lines: tuple[Line, ...]
    inverted: bool = False  # white on black (the priority label)
    align: str = "center"  # where the (ink-cropped) image sits on the paper


def _crop(img: Image.Image, width_dots: int, keep_left: bool) -> Image.Image:
    """Keep the inked columns (whole bytes) so a short label stores as a small image."""
    inv = ImageOps.invert(img.convert("L"))
    box = inv.getbbox()
    if box is None:
        return img
    left = 0 if keep_left else (box[0] // 8) * 8
    right = min(width_dots, ((box[2] + 7) // 8) * 8)
    return img.crop((left, 0, right, img.size[1]))


def render_static(s: Static, width_dots: int) -> Image.Image:
    img = render_lines(list(s.lines), width_dots, margin=8)
    if s.inverted:
        img = ImageOps.invert(img.convert("L")).convert("1")
        return img  # full width bar: prominent on the ticket
    return _crop(img, width_dots, keep_left=s.align == "left")


class GraphicsCatalog:
    """The static images one printer should hold: key -> picture, in a stable order."""

    def __init__(self, mode: str, width_dots: int) -> None:
        if mode not in ("nv", "download"):
            raise ValueError(f"stored graphics mode must be 'nv' or 'download', not {mode!r}")
        self.mode = mode
        self.width_dots = check_width(width_dots)
        self._keys: dict[Static, bytes] = {}
        self._images: dict[bytes, Image.Image] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, s: Static) -> bool:
        return s in self._keys

    def add(self, s: Static) -> bytes:
        """The key of ``s``, rendering and adding it when new."""
        key = self._keys.get(s)
        if key is not None:
            return key
        if len(self._keys) >= MAX_KEYS:
            raise ValueError(f"too many stored images ({MAX_KEYS}): the config has too many distinct labels")
        # The key comes from the content, so adding a service or a phrase leaves the other keys (and what the
        # printer holds under them) as they were: only the new image has to be sent.
        i = int.from_bytes(hashlib.sha256(repr(s).encode()).digest()[:4], "big") % MAX_KEYS
        taken = set(self._images)
        while bytes([48 + i // 94, 33 + i % 94]) in taken:
            i = (i + 1) % MAX_KEYS
        key = bytes([48 + i // 94, 33 + i % 94])
        self._keys[s] = key
        self._images[key] = render_static(s, self.width_dots)
        return key

    def images(self) -> list[tuple[bytes, Image.Image]]:
        return list(self._images.items())

    def digest(self) -> str:
        """Hash of what the printer must hold (mode, width, every key and picture)."""
        h = hashlib.sha256(f"{self.mode}:{self.width_dots}".encode())
        for key, img in self._images.items():
            h.update(key + img.size[0].to_bytes(2, "little") + img.size[1].to_bytes(2, "little") + img.tobytes())
        return h.hexdigest()[:16]

    def image_digests(self) -> dict[str, str]:
        """Per key (as text), a hash of its picture: what a printer holding this catalog holds."""
        out = {}
        for key, img in self._images.items():
            h = hashlib.sha256(img.size[0].to_bytes(2, "little") + img.size[1].to_bytes(2, "little") + img.tobytes())
            out[key.decode("latin-1")] = h.hexdigest()[:16]
        return out

    def update_job(self, held: dict[str, str]) -> bytes:
        """Bring a printer that holds ``held`` (from :meth:`image_digests`) to this catalog: define the new and
        changed images (a define over a key replaces it), delete the ones no longer used. Empty: nothing to do."""
        want = self.image_digests()
        job = bytearray()
        for key in sorted(set(held) - set(want)):
            job += escpos.delete_graphic(self.mode, key.encode("latin-1"))
        for key, img in self._images.items():
            if held.get(key.decode("latin-1")) != want[key.decode("latin-1")]:
                job += escpos.define_graphic(self.mode, key, img)
        return bytes(escpos.INIT + job) if job else b""

    def store_job(self) -> bytes:
        """Forget the old images and store every image of the catalog."""
        job = bytearray(escpos.INIT + escpos.delete_all_graphics(self.mode))
        for key, img in self._images.items():
            job += escpos.define_graphic(self.mode, key, img)
        return bytes(job)

    def print(self, s: Static) -> bytes:
        key = self.add(s)
        return escpos.align(s.align) + escpos.print_graphic(self.mode, key)


# --- the ticket's parts ------------------------------------------------------------------------------------

def header(t: TicketPrint) -> Static:
    return Static((Line(t.center_name, 1.0, bold=True), Line("Số thứ tự / Your number", 0.9)))


def priority(label: str) -> Static:
    return Static((Line(label, 1.2, bold=True),), inverted=True)


def service(vi: str, en: str) -> Static:
    return Static((Line(vi, 1.5, bold=True), Line(en, 1.0)))


def label(text: str) -> Static:
    return Static((Line(text, 0.9, align="left"),), align="left")


FOOTER = Static((Line("Quét mã để theo dõi lượt / Scan to follow your turn", 0.8),))
AHEAD = label("Trước bạn / Ahead:")
WAIT_MIN = label("Dự kiến (phút) / Wait (min):")
WAIT = label("Dự kiến / Wait:")
ISSUED = label("Giờ lấy số / Issued:")


def statics_for(center_name: str, services: list[tuple[str, str]], priority_labels: list[str],
                eta_phrases: tuple[str, ...] = ("Chưa ước tính được / unknown",)) -> list[Static]:
    """Every static image a center's tickets use, known from its config (stored before the first ticket)."""
    dummy = TicketPrint(center_name, "A", "", "", "", 0, "", "x")
    out = [header(dummy), *(service(vi, en) for vi, en in services), *(priority(p) for p in priority_labels),
           AHEAD, WAIT_MIN, WAIT, *(label(e) for e in eta_phrases), ISSUED, FOOTER]
    return list(dict.fromkeys(out))


def _value(text: str, mag: int = 1) -> bytes:
    """A dynamic value as the printer's own font (ASCII), indented under its label."""
    return (escpos.align("left") + escpos.bold(True) + escpos.text_size(mag, mag) + b"  "
            + text.encode("ascii") + escpos.LF + escpos.bold(False) + escpos.text_size(1, 1))


def _dynamic(text: str, cat: GraphicsCatalog) -> bytes:
    """ASCII as text; anything else (rare: a free-text phrase) as a stored image of its own."""
    if text.isascii():
        return _value(text)
    return cat.print(label(text))


def stored_ticket_job(t: TicketPrint, cat: GraphicsCatalog) -> bytes:
    """The ticket as ESC/POS that prints stored images by key (adds missing statics to ``cat``)."""
    width_dots = cat.width_dots
    if not t.label.isascii() or not t.label.strip():
        raise ValueError(f"ticket label must be plain ASCII like 'A001', not {t.label!r}")
    if t.ahead < 0:
        raise ValueError(f"people ahead cannot be negative ({t.ahead})")
    size = max(1, min(6, width_dots // (FONT_A_DOTS * max(1, len(t.label)))))
    job = bytearray(escpos.INIT)
    job += cat.print(header(t))
    job += escpos.align("center") + escpos.bold(True) + escpos.text_size(size, size)
    job += t.label.encode("ascii") + escpos.LF + escpos.text_size(1, 1) + escpos.bold(False)
    if t.priority_label:
        job += cat.print(priority(t.priority_label))
    job += cat.print(service(t.service_name_vi, t.service_name_en))
    job += cat.print(AHEAD) + _value(str(t.ahead), 2)
    m = _ETA_MINUTES.match(t.eta_text)
    if m:
        job += cat.print(WAIT_MIN) + _value(m.group(1).replace(" ", ""), 2)
    elif t.eta_text.isascii():
        job += cat.print(WAIT) + _value(t.eta_text)
    else:
        job += cat.print(WAIT) + cat.print(label(t.eta_text))
    job += cat.print(ISSUED) + _dynamic(t.issued_local, cat)
    job += escpos.align("center") + escpos.qr(t.qr_url, size=8 if width_dots >= 576 else 6) + escpos.feed(1)
    job += cat.print(FOOTER)
    job += escpos.cut(feed_dots=48)
    return bytes(job)
