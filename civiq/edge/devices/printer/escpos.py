"""ESC/POS protocol: byte encoders for the commands a ticket needs, and the real-time status decoder.

Pure functions, no I/O: what is printed is built here and in :mod:`.render`; how the bytes travel is the
driver's business (:mod:`.driver`).

>>> INIT + align("center") + text_size(2, 2) + b"A001\\n" + cut()
b'\\x1b@\\x1ba\\x01\\x1d!\\x11A001\\n\\x1dV\\x01'
>>> decode_status(0x12, 0x12, 0x12)
PrinterStatus(online=True, cover_open=False, paper_near_end=False, paper_out=False)
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from PIL import Image

ESC = b"\x1b"
GS = b"\x1d"
DLE = b"\x10"
EOT = b"\x04"
LF = b"\n"

INIT = ESC + b"@"

#: ESC t numbers of the code pages we know how to encode for (Epson numbering; WPC1258 = 52).
CODEPAGES: dict[str, int] = {"cp437": 0, "cp1252": 16, "cp1258": 52}

_ALIGN = {"left": 0, "center": 1, "right": 2}
_QR_EC = {"L": 48, "M": 49, "Q": 50, "H": 51}
QR_MAX_BYTES = 7089

# CP1258 has the Vietnamese base letters (Ă Â Ê Ô Ơ Ư Đ) precomposed but the five tone marks only as
# combining characters, so "ấ" must travel as "â" + U+0301.
_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")


def align(where: str) -> bytes:
    """ESC a n: ``left``, ``center`` or ``right``."""
    try:
        return ESC + b"a" + bytes([_ALIGN[where]])
    except KeyError:
        raise ValueError(f"alignment must be one of {sorted(_ALIGN)}, not {where!r}") from None


def text_size(width: int = 1, height: int = 1) -> bytes:
    """GS ! n: character magnification, 1..8 in each direction."""
    if not (1 <= width <= 8 and 1 <= height <= 8):
        raise ValueError(f"text size must be 1..8 in each direction, not {width}x{height}")
    return GS + b"!" + bytes([((width - 1) << 4) | (height - 1)])


def bold(on: bool = True) -> bytes:
    """ESC E n: emphasised (bold) on or off."""
    return ESC + b"E" + bytes([1 if on else 0])


def select_codepage(codepage: str) -> bytes:
    """ESC t n for a code page name in :data:`CODEPAGES` (``"cp1258"`` -> ``ESC t 52``)."""
    try:
        return ESC + b"t" + bytes([CODEPAGES[codepage]])
    except KeyError:
        raise ValueError(f"unknown printer code page {codepage!r}; known: {sorted(CODEPAGES)}") from None


def encode_text(text: str, codepage: str | None = None) -> bytes:
    """Encode text for the printer's active code page; characters it cannot show become ``?``.

    With ``cp1258`` Vietnamese letters are split into a base letter and a combining tone mark:

    >>> encode_text("Đất", "cp1258")
    b'\\xd0\\xe2\\xect'
    >>> encode_text("Đất")  # no Vietnamese code page: ASCII only
    b'??t'
    """
    if codepage is None or codepage == "cp437":
        return text.encode("ascii", errors="replace")
    if codepage != "cp1258":
        return text.encode(codepage, errors="replace")
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        out += _cp1258_char(ch)
    return bytes(out)


def _cp1258_char(ch: str) -> bytes:
    try:
        return ch.encode("cp1258")
    except UnicodeEncodeError:
        pass
    decomposed = unicodedata.normalize("NFD", ch)
    tones = [m for m in decomposed[1:] if m in _TONE_MARKS]
    others = [m for m in decomposed[1:] if m not in _TONE_MARKS]
    head = unicodedata.normalize("NFC", decomposed[0] + "".join(others))
    try:
        return head.encode("cp1258") + "".join(tones).encode("cp1258")
    except UnicodeEncodeError:
        return b"?"


def raster(img: Image.Image) -> bytes:
    """GS v 0: a raster bit image from a Pillow image (dark pixels print).

    Each row is padded to whole bytes; the first byte's high bit is the leftmost dot.
    """
    mono = img.convert("L").point(lambda v: 255 if v < 128 else 0).convert("1")
    width, height = mono.size
    if width == 0 or height == 0:
        raise ValueError("cannot print an empty image")
    width_bytes = (width + 7) // 8
    if width_bytes > 0xFFFF or height > 0xFFFF:
        raise ValueError(f"image {width}x{height} is too large for GS v 0")
    data = mono.tobytes()  # 1 bits are the (inverted) dark pixels, rows padded to bytes
    assert len(data) == width_bytes * height
    return (GS + b"v0\x00" + width_bytes.to_bytes(2, "little") + height.to_bytes(2, "little") + data)


def _qr_fn(fn: int, payload: bytes) -> bytes:
    body = b"\x31" + bytes([fn]) + payload  # cn = 49: QR code
    return GS + b"(k" + len(body).to_bytes(2, "little") + body


def qr(data: str, *, size: int = 6, error: str = "M", model: int = 2) -> bytes:
    """GS ( k: select the model, module size and error level, store the data, print the symbol."""
    raw = data.encode("utf-8")
    if not raw:
        raise ValueError("QR data is empty")
    if len(raw) > QR_MAX_BYTES:
        raise ValueError(f"QR data is {len(raw)} bytes; a QR code holds at most {QR_MAX_BYTES}")
    if not 1 <= size <= 16:
        raise ValueError(f"QR module size must be 1..16 dots, not {size}")
    if error not in _QR_EC:
        raise ValueError(f"QR error level must be one of {sorted(_QR_EC)}, not {error!r}")
    if model not in (1, 2):
        raise ValueError(f"QR model must be 1 or 2, not {model}")
    return (
        _qr_fn(65, bytes([48 + model, 0]))
        + _qr_fn(67, bytes([size]))
        + _qr_fn(69, bytes([_QR_EC[error]]))
        + _qr_fn(80, b"\x30" + raw)
        + _qr_fn(81, b"\x30")
    )


def feed(lines: int = 1) -> bytes:
    """ESC d n: print the buffer and feed ``lines`` lines."""
    if not 0 <= lines <= 255:
        raise ValueError(f"feed must be 0..255 lines, not {lines}")
    return ESC + b"d" + bytes([lines])


def cut(full: bool = False, feed_dots: int | None = None) -> bytes:
    """GS V: cut the paper (partial by default); with ``feed_dots`` feed that far first (GS V 65/66 n)."""
    if feed_dots is None:
        return GS + b"V" + bytes([0 if full else 1])
    if not 0 <= feed_dots <= 255:
        raise ValueError(f"feed before cut must be 0..255 dots, not {feed_dots}")
    return GS + b"V" + bytes([65 if full else 66, feed_dots])


# --- real-time status -------------------------------------------------------------------------------------

#: DLE EOT n: 1 printer status, 2 offline cause, 3 error cause, 4 paper roll sensor.
STATUS_QUERIES = (1, 2, 4)


def status_request(n: int) -> bytes:
    """DLE EOT n (``10 04 n``): the printer answers one status byte at once, even mid-job."""
    if n not in (1, 2, 3, 4):
        raise ValueError(f"DLE EOT takes n = 1..4, not {n}")
    return DLE + EOT + bytes([n])


def is_status_byte(b: int) -> bool:
    """Every DLE EOT reply has bits 1 and 4 set and bits 0 and 7 clear (idle baseline 0x12)."""
    return (b & 0x93) == 0x12


@dataclass(frozen=True)
class PrinterStatus:
    online: bool
    cover_open: bool
    paper_near_end: bool
    paper_out: bool

    def problem(self) -> str:
        """Why the printer cannot print, in plain words; ``""`` when it can."""
        if self.paper_out:
            return "printer is out of paper"
        if self.cover_open:
            return "printer cover is open"
        if not self.online:
            return "printer reports it is offline"
        return ""


def decode_status(printer: int, offline_cause: int, paper: int) -> PrinterStatus:
    """Decode the replies to DLE EOT 1, 2 and 4 (bit meanings in MEASURED.md).

    >>> decode_status(0x1A, 0x36, 0x7E)
    PrinterStatus(online=False, cover_open=True, paper_near_end=True, paper_out=True)
    """
    for name, b in (("printer", printer), ("offline cause", offline_cause), ("paper", paper)):
        if not 0 <= b <= 255 or not is_status_byte(b):
            raise ValueError(f"not an ESC/POS {name} status byte: {b:#04x}")
    return PrinterStatus(
        online=not printer & 0x08,
        cover_open=bool(offline_cause & 0x04),
        paper_near_end=bool(paper & 0x0C),
        paper_out=bool(paper & 0x60) or bool(offline_cause & 0x20),
    )


# --- stored graphics: NV graphics (GS ( L fn 67/69) and download graphics (fn 83/85) -------------------------

#: ``graphics: nv`` keeps images in the printer's flash (survive power-off); ``download`` in its RAM (lost at
#: power-off, re-sent after a reconnect); ``raster`` sends every picture on every ticket (any printer).
GRAPHICS_MODES = ("nv", "download", "raster")
_DEFINE_FN = {"nv": 67, "download": 83}
_PRINT_FN = {"nv": 69, "download": 85}
_DELETE_ALL_FN = {"nv": 65, "download": 82}
KEY_FIRST, KEY_LAST = 32, 126


def _graphics_fn(fn: int, payload: bytes) -> bytes:
    body = b"\x30" + bytes([fn]) + payload  # m = 48
    if len(body) <= 0xFFFF:
        return GS + b"(L" + len(body).to_bytes(2, "little") + body
    return GS + b"8L" + len(body).to_bytes(4, "little") + body  # the 4-byte length form for big images


def _check_key(key: bytes) -> None:
    if len(key) != 2 or not all(KEY_FIRST <= k <= KEY_LAST for k in key):
        raise ValueError(f"a graphics key is two printable ASCII bytes (32..126), not {key!r}")


def _check_mode(mode: str) -> None:
    if mode not in _DEFINE_FN:
        raise ValueError(f"stored graphics mode must be 'nv' or 'download', not {mode!r}")


def define_graphic(mode: str, key: bytes, img: Image.Image) -> bytes:
    """GS ( L fn 67 (NV) or fn 83 (download): store a 1-bit raster under a two-byte key.

    Layout: ``a=48`` (monochrome) ``kc1 kc2`` ``b=1`` (one colour) ``xL xH yL yH`` (dots) ``c=49`` (colour 1),
    then the rows, padded to whole bytes, high bit = leftmost dot, 1 = printed.
    """
    _check_mode(mode)
    _check_key(key)
    mono = img.convert("L").point(lambda v: 255 if v < 128 else 0).convert("1")
    width, height = mono.size
    if not (1 <= width <= 8192 and 1 <= height <= 2304):
        raise ValueError(f"image {width}x{height} cannot be stored (at most 8192x2304 dots)")
    head = b"\x30" + key + b"\x01" + width.to_bytes(2, "little") + height.to_bytes(2, "little") + b"\x31"
    return _graphics_fn(_DEFINE_FN[mode], head + mono.tobytes())


def print_graphic(mode: str, key: bytes, scale_x: int = 1, scale_y: int = 1) -> bytes:
    """GS ( L fn 69 (NV) or fn 85 (download): print the stored image ``key`` — 11 bytes on the wire."""
    _check_mode(mode)
    _check_key(key)
    if scale_x not in (1, 2) or scale_y not in (1, 2):
        raise ValueError("stored graphics scale is 1 or 2 in each direction")
    return _graphics_fn(_PRINT_FN[mode], key + bytes([scale_x, scale_y]))


_DELETE_FN = {"nv": 66, "download": 84}


def delete_graphic(mode: str, key: bytes) -> bytes:
    """GS ( L fn 66 (NV) or fn 84 (download): forget the image stored under ``key``."""
    _check_mode(mode)
    _check_key(key)
    return _graphics_fn(_DELETE_FN[mode], key)


def delete_all_graphics(mode: str) -> bytes:
    """GS ( L fn 65 (NV) or fn 82 (download) with "CLR": forget every stored image of that kind."""
    _check_mode(mode)
    return _graphics_fn(_DELETE_ALL_FN[mode], b"CLR")
