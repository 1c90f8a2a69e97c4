"""Framed-ASCII multi-drop protocol for RS-485 text boards (and, reused, for call pads).

A request frame::

    STX(0x02)  AA  C  payload...  ETX(0x03)  HH

``AA`` is the board address as two ASCII digits (00..99), ``C`` a command letter (``T`` show text, ``P`` ping;
call pads add ``K``, see :mod:`civiq.edge.devices.keypad`), ``payload`` printable bytes (never STX/ETX) and
``HH`` the checksum: XOR of every byte from the first address digit through ETX, as two upper-case hex
digits. A board answers ``ACK(0x06) AA`` when it took the frame or ``NAK(0x15) AA`` when the checksum or the
command was wrong; a board that is not addressed stays silent.

Text for 7-bit boards has its Vietnamese diacritics stripped (``"Quầy 3"`` -> ``"Quay 3"``); 8-bit boards
get Latin-1 where a character has one.

    >>> encode_frame(2, "T", b"A012").hex(" ")
    '02 30 32 54 41 30 31 32 03 32 37'
    >>> p = FrameParser(); p.feed(encode_frame(2, "T", b"A0")[:5]); p.feed(encode_frame(2, "T", b"A0")[5:])
    []
    [Frame(address=2, command='T', payload=b'A0')]
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from civiq.contract import DeviceState
from civiq.edge.devices.display.base import CounterDisplay, DisplayError, strip_diacritics
from civiq.edge.devices.transport import SerialTransport, TransportError

STX, ETX, ACK, NAK = 0x02, 0x03, 0x06, 0x15
MAX_FRAME = 160  # bytes from STX to the checksum; longer is garbage


def checksum(body: bytes) -> bytes:
    """XOR of ``body`` (address digits .. ETX inclusive) as two upper-case hex ASCII digits."""
    x = 0
    for b in body:
        x ^= b
    return f"{x:02X}".encode("ascii")


def check_address(address: int) -> int:
    if not isinstance(address, int) or not 0 <= address <= 99:
        raise ValueError(f"an ASCII-frame address must be 0..99, not {address!r}")
    return address


def encode_frame(address: int, command: str, payload: bytes = b"") -> bytes:
    check_address(address)
    if len(command) != 1 or not command.isascii() or not command.isalpha():
        raise ValueError(f"command must be one ASCII letter, not {command!r}")
    if any(b < 0x20 or b == 0x7F for b in payload):
        raise ValueError("payload must not contain control bytes (STX/ETX would break the framing)")
    body = f"{address:02d}{command}".encode("ascii") + payload + bytes([ETX])
    return bytes([STX]) + body + checksum(body)


def encode_text(text: str, seven_bit: bool = True) -> bytes:
    """Text as a board shows it: diacritics stripped for 7-bit boards, Latin-1 otherwise; unknown -> '?'.

    >>> encode_text("Quầy 3"), encode_text("Café", seven_bit=False)
    (b'Quay 3', b'Caf\\xe9')
    """
    out = bytearray()
    for ch in text:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            out += b" "
            continue
        if not seven_bit:
            try:
                out += ch.encode("latin-1")
                continue
            except UnicodeEncodeError:
                pass
        plain = strip_diacritics(ch)
        out += plain.encode("ascii", errors="replace") if plain else b"?"
    return bytes(out)


@dataclass(frozen=True)
class Frame:
    address: int
    command: str
    payload: bytes


@dataclass(frozen=True)
class BadFrame:
    """A frame whose checksum (or address) is wrong; ``address`` is ``None`` when unreadable."""

    address: int | None
    reason: str


class FrameParser:
    """Stateful: bytes may arrive in any chunks; garbage between frames is skipped (and counted)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.garbage = 0

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        self._buf += data
        out: list[Frame | BadFrame] = []
        while True:
            start = self._buf.find(bytes([STX]))
            if start < 0:
                self.garbage += len(self._buf)
                self._buf.clear()
                return out
            if start:
                self.garbage += start
                del self._buf[:start]
            # a second STX before ETX means the first frame was cut: restart from the later STX
            etx = self._buf.find(bytes([ETX]), 1)
            nxt = self._buf.find(bytes([STX]), 1)
            if nxt > 0 and (etx < 0 or nxt < etx):
                self.garbage += nxt
                del self._buf[:nxt]
                continue
            if etx < 0:
                if len(self._buf) > MAX_FRAME:
                    self.garbage += len(self._buf)
                    self._buf.clear()
                return out
            if len(self._buf) < etx + 3:
                return out  # checksum not here yet
            if STX in self._buf[etx + 1: etx + 3]:  # the "checksum" is the next frame's start: this one was cut
                k = self._buf.index(STX, etx + 1)
                self.garbage += k
                del self._buf[:k]
                continue
            raw = bytes(self._buf[: etx + 3])
            del self._buf[: etx + 3]
            out.append(self._decode(raw))

    @staticmethod
    def _decode(raw: bytes) -> Frame | BadFrame:
        body, chk = raw[1:-2], raw[-2:]
        digits = body[:2]
        address = int(digits) if len(digits) == 2 and digits.isdigit() else None
        if address is None or len(body) < 4:
            return BadFrame(address, "malformed frame")
        if checksum(body).upper() != chk.upper():
            return BadFrame(address, "checksum error")
        command = chr(body[2])
        return Frame(address, command, body[3:-1])


class AsciiFrameLink:
    """Exchanges with one address over a shared transport (the transport's lock keeps them whole)."""

    def __init__(self, transport: SerialTransport, address: int, *, timeout: float = 0.3,
                 where: str = "") -> None:
        self.transport = transport
        self.address = check_address(address)
        self.timeout = timeout
        self.where = where or f"address {address:02d} on {transport.port}"

    def _io(self, request: bytes, reply_len: int, first_timeout: float | None = None) -> bytes:
        t = self.transport
        try:
            with t.lock:
                t.reset_input()
                t.write(request)
                return t.read(reply_len, self.timeout if first_timeout is None else first_timeout)
        except TransportError as e:
            raise DisplayError(f"{self.where}: the port is not usable ({e})", DeviceState.offline) from None

    def command(self, command: str, payload: bytes = b"", retries: int = 1) -> str:
        """Send a frame that is answered by ACK/NAK. Returns "" or the failure a retry got past."""
        request = encode_frame(self.address, command, payload)
        ack = bytes([ACK]) + f"{self.address:02d}".encode()
        nak = bytes([NAK]) + f"{self.address:02d}".encode()
        first = ""
        for attempt in range(retries + 1):
            reply = self._io(request, 3)
            if reply == ack:
                return first
            if not reply:
                err = DisplayError(f"{self.where} does not answer", DeviceState.offline)
            elif reply == nak:
                err = DisplayError(f"{self.where} rejected the frame (NAK): checksum or command not "
                                   "accepted", DeviceState.failed)
            else:
                err = DisplayError(f"{self.where}: garbled reply {reply.hex(' ')}", DeviceState.degraded)
            if attempt == retries:
                raise err
            first = first or str(err)
        raise AssertionError("unreachable")  # pragma: no cover

    def request(self, command: str, payload: bytes, reply_len: int, retries: int = 1) -> tuple[Frame, str]:
        """Send a frame answered by a frame of ``reply_len`` bytes with the same address and command."""
        request = encode_frame(self.address, command, payload)
        first = ""
        for attempt in range(retries + 1):
            reply = self._io(request, reply_len)
            frames = FrameParser().feed(reply)
            frame = frames[0] if frames else None
            if isinstance(frame, Frame) and frame.address == self.address and frame.command == command:
                return frame, first
            if not reply:
                err = DisplayError(f"{self.where} does not answer", DeviceState.offline)
            elif isinstance(frame, BadFrame):
                err = DisplayError(f"{self.where}: reply failed its {frame.reason} (noise on the line?)",
                                   DeviceState.degraded)
            else:
                err = DisplayError(f"{self.where}: unexpected reply {reply.hex(' ')}", DeviceState.degraded)
            if attempt == retries:
                raise err
            first = first or str(err)
            time.sleep(0.01)  # let a late, garbled reply drain before the retry
        raise AssertionError("unreachable")  # pragma: no cover


class AsciiFrameDisplay(CounterDisplay):
    """A text board on a framed-ASCII RS-485 bus.

        >>> d2 = AsciiFrameDisplay("d2", SerialTransport("/dev/civiq-rs485"), address=2)  # doctest: +SKIP
        >>> d2.show("A012 > 2")                                                          # doctest: +SKIP
    """

    model = "ascii-frame"

    def __init__(self, device_id: str, transport: SerialTransport, address: int, width: int = 8, *,
                 seven_bit: bool = True, timeout: float = 0.3, retries: int = 1) -> None:
        super().__init__(device_id, width, align="left")
        self.address = check_address(address)
        self.transport = transport
        self.seven_bit = seven_bit
        self.retries = retries
        self.link = AsciiFrameLink(transport, address, timeout=timeout, where=self.describe())

    def describe(self) -> str:
        return f"display {self.id} (ASCII address {self.address:02d} on {self.transport.port})"

    def _write(self, text: str) -> tuple[DeviceState, str] | None:
        payload = encode_text(text, self.seven_bit)[: self.width].ljust(self.width)
        warning = self.link.command("T", payload, self.retries)
        return (DeviceState.degraded, f"needed a retry: {warning}") if warning else None

    def _probe(self) -> tuple[DeviceState, str]:
        warning = self.link.command("P", b"", self.retries)
        return (DeviceState.degraded, f"needed a retry: {warning}") if warning else (DeviceState.ok, "")
