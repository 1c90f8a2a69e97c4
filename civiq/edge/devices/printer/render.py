"""What a ticket looks like: the layout, turned into one ESC/POS job (bytes), with no I/O.

Vietnamese needs diacritics most thermal printers cannot draw, so the Vietnamese lines are rendered to a
1-bit raster image with Pillow (DejaVu Sans has the glyphs) unless the printer profile says it speaks CP1258.
The ticket number is always native printer text (ASCII, large), the QR code is the printer's own GS ( k.

>>> t = TicketPrint("Trung tâm Bến Nghé", "A001", "Đất đai", "Land", "08:15 05/01/2026", 3,
...                 "~15 phút / min", "https://q.example/t/A001")
>>> job = ticket_job(t, width_dots=384)
>>> job.startswith(escpos.INIT) and job.endswith(escpos.cut(feed_dots=48))
True
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from . import escpos

FONT_REGULAR = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
FONT_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

#: Font A is 12 dots wide on 80 mm (576 dots) and 58 mm (384 dots) printers alike.
FONT_A_DOTS = 12
WIDTHS = (384, 576)


@dataclass(frozen=True)
class TicketPrint:
    """Everything a citizen reads on a ticket (already formatted for people)."""

    center_name: str
    label: str  # "A001"
    service_name_vi: str
    service_name_en: str
    issued_local: str  # "08:15 05/01/2026"
    ahead: int
    eta_text: str  # "~15 phút / min" or "chưa ước tính được / unknown"
    qr_url: str
    priority_label: str | None = None  # "ƯU TIÊN · Người cao tuổi" on a priority ticket (printed under the number)


@dataclass(frozen=True)
class Line:
    """One line of text in a block: ``size`` is a multiple of the base font size."""

    text: str
    size: float = 1.0
    bold: bool = False
    align: str = "center"


def check_width(width_dots: int) -> int:
    if width_dots not in WIDTHS:
        raise ValueError(f"printer width must be one of {WIDTHS} dots, not {width_dots}")
    return width_dots


@lru_cache(maxsize=32)
def _font(bold: bool, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_BOLD if bold else FONT_REGULAR, px)


def _base_px(width_dots: int) -> int:
    return 26 if width_dots >= 576 else 20


def _wrap_px(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap by rendered width; a single word wider than the paper is cut by characters."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while font.getlength(current) > width and len(current) > 1:
            cut = len(current)
            while cut > 1 and font.getlength(current[:cut]) > width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    if current or not lines:
        lines.append(current)
    return lines


def render_lines(lines: list[Line], width_dots: int, *, margin: int = 8) -> Image.Image:
    """Render text lines to a 1-bit image exactly ``width_dots`` wide (long lines wrap)."""
    check_width(width_dots)
    base = _base_px(width_dots)
    usable = width_dots - 2 * margin
    placed: list[tuple[str, ImageFont.FreeTypeFont, str, int]] = []
    for line in lines:
        font = _font(line.bold, max(8, round(base * line.size)))
        ascent, descent = font.getmetrics()
        for part in _wrap_px(line.text, font, usable):
            placed.append((part, font, line.align, ascent + descent + 4))
    height = max(1, sum(h for *_, h in placed))
    img = Image.new("1", (width_dots, height), 1)
    draw = ImageDraw.Draw(img)
    y = 0
    for text, font, where, h in placed:
        w = font.getlength(text)
        if where == "center":
            x = (width_dots - w) / 2
        elif where == "right":
            x = width_dots - margin - w
        else:
            x = margin
        draw.text((x, y), text, font=font, fill=0)
        y += h
    return img


def _text_block(lines: list[Line], width_dots: int, codepage: str) -> bytes:
    """The same lines as native text in the printer's code page (CP1258 printers)."""
    out = bytearray()
    for line in lines:
        mag = 2 if line.size >= 1.5 else 1
        out += escpos.align(line.align) + escpos.bold(line.bold) + escpos.text_size(mag, mag)
        columns = width_dots // (FONT_A_DOTS * mag)
        for part in textwrap.wrap(line.text, columns) or [""]:
            out += escpos.encode_text(part, codepage) + escpos.LF
    out += escpos.bold(False) + escpos.text_size(1, 1)
    return bytes(out)


def block(lines: list[Line], width_dots: int, codepage: str | None) -> bytes:
    """Print lines as raster (any printer) or as CP1258 text when the printer has that code page."""
    if codepage == "cp1258":
        return _text_block(lines, width_dots, codepage)
    return escpos.align("left") + escpos.raster(render_lines(lines, width_dots))


def _label_size(label: str, width_dots: int) -> int:
    return max(1, min(6, width_dots // (FONT_A_DOTS * max(1, len(label)))))


def _start(codepage: str | None) -> bytes:
    if codepage is not None and codepage not in ("cp1258", "cp437"):
        raise ValueError(f"printer code page must be none or cp1258, not {codepage!r}")
    return escpos.INIT + (escpos.select_codepage(codepage) if codepage else b"")


def ticket_job(t: TicketPrint, *, codepage: str | None = None, width_dots: int = 576) -> bytes:
    """The whole ticket as one ESC/POS job, ending with a cut."""
    check_width(width_dots)
    if not t.label.isascii() or not t.label.strip():
        raise ValueError(f"ticket label must be plain ASCII like 'A001', not {t.label!r}")
    if t.ahead < 0:
        raise ValueError(f"people ahead cannot be negative ({t.ahead})")
    size = _label_size(t.label, width_dots)
    job = bytearray(_start(codepage))
    job += block([Line(t.center_name, 1.0, bold=True), Line("Số thứ tự / Your number", 0.9)], width_dots, codepage)
    job += escpos.align("center") + escpos.bold(True) + escpos.text_size(size, size)
    job += t.label.encode("ascii") + escpos.LF
    job += escpos.text_size(1, 1) + escpos.bold(False)
    job += block(
        [
            *([Line(t.priority_label, 1.2, bold=True)] if t.priority_label else []),
            Line(t.service_name_vi, 1.5, bold=True),
            Line(t.service_name_en, 1.0),
            Line(f"Trước bạn / Ahead: {t.ahead}", 1.0, align="left"),
            Line(f"Dự kiến / Wait: {t.eta_text}", 1.0, align="left"),
            Line(f"Giờ lấy số / Issued: {t.issued_local}", 1.0, align="left"),
        ],
        width_dots,
        codepage,
    )
    job += escpos.align("center") + escpos.qr(t.qr_url, size=8 if width_dots >= 576 else 6) + escpos.feed(1)
    job += block([Line("Quét mã để theo dõi lượt / Scan to follow your turn", 0.8)], width_dots, codepage)
    job += escpos.cut(feed_dots=48)
    return bytes(job)


def lines_job(lines: list[str], *, codepage: str | None = None, width_dots: int = 576) -> bytes:
    """A test print: the given lines (Vietnamese welcome), then a cut."""
    check_width(width_dots)
    body = [Line(s, 1.0, align="left") for s in lines] or [Line("(trống / empty)")]
    return _start(codepage) + block(body, width_dots, codepage) + escpos.cut(feed_dots=48)
