"""Nextion-style UART HMI as a QR board: one page with a QR component, a title and a few text lines.

Protocol (Nextion instruction set, the part we use): every instruction is ASCII (the text values in the
HMI project's encoding, UTF-8 by default) terminated by ``FF FF FF``::

    bkcmd=3              answer every instruction: 01 FF FF FF on success, an error code otherwise
    page 0               show page 0
    qr0.txt="<url>"      the QR component's text (the HMI draws the QR code)
    t0.txt="<title>"     title; t1.txt, t2.txt, ... the waiting lines
    sendme               the HMI answers 66 <page> FF FF FF (our health check)

Inside a quoted value ``\\"`` is a quote, ``\\\\`` a backslash and ``\\r`` a line break; control characters are
dropped. Unsolicited messages the HMI may send at any time (``00 00 00 FF FF FF`` on power-up, ``88 FF FF FF``
when ready, ``65 ...`` touch events) are skipped; a power-up also makes the driver send ``bkcmd=3`` again
(the HMI forgets it).

    >>> instruction('t0.txt=' + quote('Đất "đai"'))
    b't0.txt="\\xc4\\x90\\xe1\\xba\\xa5t \\\\"\\xc4\\x91ai\\\\""\\xff\\xff\\xff'
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from civiq.contract import DeviceHealth, DeviceState
from civiq.edge.devices.base import Device
from civiq.edge.devices.display.base import DisplayError, strip_diacritics
from civiq.edge.devices.transport import SerialTransport, TransportError

TERM = b"\xff\xff\xff"
SUCCESS = 0x01
STARTUP = b"\x00\x00\x00"
READY = b"\x88"
PAGE_REPLY = 0x66
STRING_REPLY = 0x70
UNSOLICITED = {0x65, 0x67, 0x68, 0x86, 0x87, 0x88, 0x89}  # touch, sleep/wake, ready, upgrade

RETURN_CODES = {
    0x00: "invalid instruction",
    0x02: "invalid component id",
    0x03: "invalid page id",
    0x04: "invalid picture id",
    0x05: "invalid font id",
    0x06: "invalid file operation",
    0x09: "invalid CRC",
    0x11: "invalid baud rate setting",
    0x1A: "invalid variable name or attribute",
    0x1B: "invalid variable operation",
    0x1C: "assignment failed",
    0x1D: "EEPROM operation failed",
    0x1E: "invalid quantity of parameters",
    0x1F: "IO operation failed",
    0x20: "escape character invalid",
    0x23: "variable name too long",
    0x24: "serial buffer overflow",
}


def quote(text: str) -> str:
    """A Nextion string literal: quotes and backslashes escaped, line breaks as ``\\r``, no control chars.

    >>> print(quote('say "hi"\\\\'))
    "say \\"hi\\"\\\\"
    """
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            continue
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def instruction(text: str, encoding: str = "utf-8") -> bytes:
    """One instruction as bytes; characters the HMI font encoding lacks lose their diacritics, then '?'."""
    out = bytearray()
    for ch in text:
        try:
            b = ch.encode(encoding)
        except UnicodeEncodeError:
            b = strip_diacritics(ch).encode(encoding, errors="replace") or b"?"
        out += b.replace(b"\xff", b"?")  # 0xFF would end the instruction early
    return bytes(out) + TERM


class NextionQrBoard(Device):
    """A Nextion HMI showing one procedure's QR code, its title and the waiting lines.

        >>> q1 = NextionQrBoard("q1", SerialTransport("/dev/ttyAMA0", 9600))        # doctest: +SKIP
        >>> q1.show("https://dichvucong.gov.vn/...", "Đất đai / Land", ["Đang chờ: 5"])  # doctest: +SKIP
    """

    kind = "qrboard"
    model = "nextion"

    def __init__(self, device_id: str, transport: SerialTransport, *, timeout: float = 0.3, page: int = 0,
                 qr_component: str = "qr0", title_component: str = "t0",
                 line_components: Sequence[str] = ("t1", "t2", "t3"), encoding: str = "utf-8",
                 max_text: int = 60, max_url: int = 200) -> None:
        super().__init__(device_id)
        self.transport = transport
        self.timeout = timeout
        self.page = page
        self.qr_component = qr_component
        self.title_component = title_component
        self.line_components = tuple(line_components)
        self.encoding = encoding
        self.max_text = max_text
        self.max_url = max_url
        self._set_up = False
        self.last_shown: tuple[str, str, tuple[str, ...]] | None = None

    def describe(self) -> str:
        return f"QR board {self.id} (Nextion on {self.transport.port})"

    # -------------------------------------------------------------- wire
    def _read_reply(self, timeout: float) -> bytes | None:
        """The next reply (without FF FF FF), skipping unsolicited messages; ``None`` on timeout."""
        t = self.transport
        deadline = time.monotonic() + timeout
        buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            chunk = t.read(1, left)
            if not chunk:
                return None
            buf += chunk
            if not buf.endswith(TERM):
                if len(buf) > 4096:
                    buf = b""  # never a reply: drop it
                continue
            msg, buf = buf[:-3], b""
            if msg == STARTUP or msg[:1] == READY:
                self._set_up = False  # it rebooted and forgot bkcmd
                continue
            if msg and msg[0] in UNSOLICITED:
                continue
            return msg

    def _exchange(self, text: str, timeout: float | None = None) -> bytes | None:
        t = self.transport
        try:
            with t.lock:
                t.reset_input()
                t.write(instruction(text, self.encoding))
                return self._read_reply(self.timeout if timeout is None else timeout)
        except TransportError as e:
            raise DisplayError(f"{self.describe()}: the port is not usable ({e})", DeviceState.offline) from None

    def _setup(self) -> None:
        # Until bkcmd=3 is in effect a successful instruction may stay unanswered: read whatever comes back.
        self._exchange("bkcmd=3", timeout=min(self.timeout, 0.15))
        self._set_up = True
        self._command(f"page {self.page}", setup=False)

    def _command(self, text: str, *, setup: bool = True) -> None:
        """Send one instruction and require 01 FF FF FF. Raises :class:`DisplayError`."""
        if setup and not self._set_up:
            self._setup()
        reply = self._exchange(text)
        if reply is None and setup:
            self._setup()  # it may have rebooted (bkcmd forgotten): set up again, try once more
            reply = self._exchange(text)
        if reply is None:
            self._set_up = False
            raise DisplayError(f"{self.describe()} does not answer", DeviceState.offline)
        if reply[:1] != bytes([SUCCESS]):
            code = reply[0] if reply else 0
            name = RETURN_CODES.get(code, "unknown error")
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise DisplayError(f"{self.describe()} refused {shown!r}: {name} (code 0x{code:02x}); is the "
                               "right HMI project loaded?", DeviceState.failed)

    # -------------------------------------------------------------- public
    def show(self, url: str, title: str, lines: Sequence[str] = ()) -> None:
        """Show a QR code for ``url`` with ``title`` and up to ``len(line_components)`` lines."""
        if not isinstance(url, str) or not url.strip():
            raise DisplayError(f"{self.describe()}: the QR code needs a URL, got {url!r}")
        if len(url) > self.max_url:
            raise DisplayError(f"{self.describe()}: URL has {len(url)} characters, the QR component holds "
                               f"{self.max_url}")
        lines = [str(x) for x in lines]
        if len(lines) > len(self.line_components):
            raise DisplayError(f"{self.describe()}: {len(lines)} lines given, the page has "
                               f"{len(self.line_components)}")
        values = [(self.qr_component, url), (self.title_component, str(title)[: self.max_text])]
        values += [(comp, (lines[i] if i < len(lines) else "")[: self.max_text])
                   for i, comp in enumerate(self.line_components)]
        try:
            for comp, value in values:
                self._command(f"{comp}.txt={quote(value)}")
        except DisplayError as e:
            self.set_health(e.state, str(e))
            raise
        self.last_shown = (url, str(title), tuple(lines))
        self.set_health(DeviceState.ok, "")

    def poll(self) -> DeviceHealth:
        """``sendme``: the HMI says which page it shows. Never raises."""
        try:
            if not self._set_up:
                self._setup()
            reply = self._exchange("sendme")
            if reply is None:
                self._set_up = False
                self.set_health(DeviceState.offline, f"{self.describe()} does not answer")
            elif reply[:1] == bytes([PAGE_REPLY]) and len(reply) >= 2:
                if reply[1] == self.page:
                    self.set_health(DeviceState.ok, "")
                else:
                    self.set_health(DeviceState.degraded, f"{self.describe()} shows page {reply[1]}, "
                                                          f"not {self.page}")
                    self._set_up = False  # the next show goes back to our page
            else:
                self.set_health(DeviceState.degraded, f"{self.describe()}: unexpected reply "
                                                      f"{reply.hex(' ')} to sendme")
        except DisplayError as e:
            self.set_health(e.state, str(e))
        except Exception as e:  # noqa: BLE001 - poll never raises
            self.set_health(DeviceState.failed, f"{self.describe()}: unexpected error: {e}")
        return self.health()
