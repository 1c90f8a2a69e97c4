"""RS-485 display buses on a pty: several emulated boards answer by address, decoding the real bytes.

    bus = ModbusBusEmulator().start()
    b1, b2 = bus.add_board(1), bus.add_board(2)
    d1 = ModbusLedDisplay("d1", SerialTransport(bus.port), address=1)
    d1.show("A012"); assert b1.text == "A012"
    b1.muted = True          # this board stops answering (its cable is cut)
    bus.muted = True         # the whole bus is shorted: nobody answers

Both parsers keep state across chunks and never raise on garbage: bytes that do not make a frame are
skipped; frames with a bad CRC/checksum are dropped (Modbus) or NAKed (ASCII), as real boards do.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from civiq.edge.devices.display.asciiframe import ACK, NAK, BadFrame, Frame, FrameParser
from civiq.edge.devices.display.modbus import (
    BRIGHTNESS_REGISTER,
    CELLS_START,
    READ_HOLDING,
    STATUS_REGISTER,
    WRITE_MULTIPLE,
    crc_ok,
    with_crc,
)
from civiq.edge.sim.emulator import PtyEmulator

if TYPE_CHECKING:
    from civiq.edge.sim.keypad import CallPadState

RTU_GAP_S = 0.05  # silence that ends a frame (Modbus t3.5, stretched for a pty and a busy test machine)


# ------------------------------------------------------------------------------------------- Modbus
@dataclass
class ModbusBoard:
    """One Modbus LED board: what it shows and knobs for fault injection."""

    address: int
    digits: int = 4
    cells: list[int] = field(default_factory=list)
    brightness: int = 15
    status: int = 0  # bit 0 LED fault, bit 1 over temperature
    muted: bool = False  # cut off the bus: hears nothing, answers nothing
    corrupt_replies: int = 0  # the next N replies go out with a wrong CRC
    exception_code: int | None = None  # answer every request with this Modbus exception
    writes: int = 0

    def __post_init__(self) -> None:
        if not self.cells:
            self.cells = [0x20] * self.digits

    @property
    def raw(self) -> str:
        """Every cell, blanks included."""
        return "".join(chr(c) if 0x20 <= c < 0x7F else "?" for c in self.cells)

    @property
    def text(self) -> str:
        """What a person reads on the board."""
        return self.raw.strip()

    def registers(self) -> dict[int, int]:
        regs = {CELLS_START + i: c for i, c in enumerate(self.cells)}
        regs[BRIGHTNESS_REGISTER] = self.brightness
        regs[STATUS_REGISTER] = self.status
        return regs


def _exception(address: int, function: int, code: int) -> bytes:
    return with_crc(bytes([address, function | 0x80, code]))


class ModbusBusEmulator(PtyEmulator):
    name = "modbus-bus"

    def __init__(self) -> None:
        super().__init__()
        self.boards: dict[int, ModbusBoard] = {}
        self._buf = bytearray()
        self._last_rx = 0.0
        self.frames_ok = 0
        self.frames_bad = 0

    def add_board(self, address: int, digits: int = 4) -> ModbusBoard:
        with self.lock:
            board = ModbusBoard(address, digits)
            self.boards[address] = board
            return board

    def board(self, address: int) -> ModbusBoard:
        return self.boards[address]

    # -------------------------------------------------------------- parsing
    def feed(self, data: bytes) -> bytes:
        now = time.monotonic()
        if self._buf and now - self._last_rx > RTU_GAP_S:
            self.frames_bad += 1  # a partial frame ended by silence
            self._buf.clear()
        self._last_rx = now
        self._buf += data
        replies = []
        while len(self._buf) >= 2:
            function = self._buf[1]
            if function == WRITE_MULTIPLE:
                if len(self._buf) < 7:
                    break
                size = 9 + self._buf[6]
            elif function == READ_HOLDING:
                size = 8
            elif len(self._buf) >= 4 and crc_ok(bytes(self._buf)):
                size = len(self._buf)  # a whole frame of a function we do not implement
            else:
                del self._buf[0]  # not a frame start: resynchronise
                continue
            if len(self._buf) < size:
                break
            frame = bytes(self._buf[:size])
            if not crc_ok(frame):
                self.frames_bad += 1
                del self._buf[0]
                continue
            del self._buf[:size]
            self.frames_ok += 1
            reply = self._handle(frame)
            if reply:
                replies.append(reply)
        return b"".join(replies)

    def _handle(self, frame: bytes) -> bytes:
        address, function = frame[0], frame[1]
        targets = list(self.boards.values()) if address == 0 else [self.boards.get(address)]
        reply = b""
        for board in targets:
            if board is None or board.muted:
                continue  # a muted board is cut off the bus: it neither hears nor answers
            answer = self._apply(board, function, frame)
            if address == 0:
                continue  # broadcasts are never answered
            if board.corrupt_replies > 0 and answer:
                board.corrupt_replies -= 1
                answer = answer[:-1] + bytes([answer[-1] ^ 0x5A])
            reply = answer
        return reply

    def _apply(self, board: ModbusBoard, function: int, frame: bytes) -> bytes:
        a = board.address
        if board.exception_code is not None:
            return _exception(a, function, board.exception_code)
        regs = board.registers()
        if function == WRITE_MULTIPLE:
            start, count, nbytes = struct.unpack(">HHB", frame[2:7])
            values = [int.from_bytes(frame[7 + 2 * i: 9 + 2 * i], "big") for i in range(nbytes // 2)]
            if nbytes != 2 * count or not 1 <= count <= 123:
                return _exception(a, function, 0x03)
            wanted = range(start, start + count)
            if any(r not in regs or r == STATUS_REGISTER for r in wanted):
                return _exception(a, function, 0x02)
            for r, v in zip(wanted, values, strict=True):
                if r == BRIGHTNESS_REGISTER:
                    if v > 15:
                        return _exception(a, function, 0x03)
                    board.brightness = v
                else:
                    board.cells[r - CELLS_START] = v
            board.writes += 1
            return with_crc(frame[:6])
        if function == READ_HOLDING:
            start, count = struct.unpack(">HH", frame[2:6])
            wanted = range(start, start + count)
            if not 1 <= count <= 125 or any(r not in regs for r in wanted):
                return _exception(a, function, 0x02)
            data = b"".join(struct.pack(">H", regs[r]) for r in wanted)
            return with_crc(bytes([a, function, len(data)]) + data)
        return _exception(a, function, 0x01)


# -------------------------------------------------------------------------------------------- ASCII
@dataclass
class AsciiBoard:
    address: int
    width: int = 8
    raw: str = ""
    muted: bool = False
    nak_replies: int = 0  # NAK the next N frames even when they are good
    pings: int = 0

    @property
    def text(self) -> str:
        return self.raw.strip()


class AsciiBusEmulator(PtyEmulator):
    name = "ascii-bus"

    def __init__(self) -> None:
        super().__init__()
        self.boards: dict[int, AsciiBoard] = {}
        self.pads: dict[int, CallPadState] = {}
        self.parser = FrameParser()
        self.frames_ok = 0
        self.frames_bad = 0

    def add_board(self, address: int, width: int = 8) -> AsciiBoard:
        with self.lock:
            board = AsciiBoard(address, width, raw=" " * width)
            self.boards[address] = board
            return board

    def board(self, address: int) -> AsciiBoard:
        return self.boards[address]

    def add_pad(self, address: int, lcd_width: int = 8) -> CallPadState:
        """A staff call pad on the same bus (see :mod:`civiq.edge.devices.keypad`): ``press()``, ``lcd``."""
        from civiq.edge.sim.keypad import CallPadState

        with self.lock:
            pad = CallPadState(address, lcd_width)
            self.pads[address] = pad
            return pad

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for item in self.parser.feed(data):
            pad = self.pads.get(item.address) if item.address is not None else None
            if pad is not None:
                out += pad.handle(item)
                continue
            board = self.boards.get(item.address) if item.address is not None else None
            if isinstance(item, BadFrame):
                self.frames_bad += 1
                if board is not None and not board.muted:
                    out += bytes([NAK]) + f"{board.address:02d}".encode()
                continue
            self.frames_ok += 1
            if board is None or board.muted:
                continue
            out += self._handle(board, item)
        return bytes(out)

    def _handle(self, board: AsciiBoard, frame: Frame) -> bytes:
        ack = bytes([ACK]) + f"{board.address:02d}".encode()
        nak = bytes([NAK]) + f"{board.address:02d}".encode()
        if board.nak_replies > 0:
            board.nak_replies -= 1
            return nak
        if frame.command == "T":
            board.raw = frame.payload.decode("latin-1")[: board.width].ljust(board.width)
            return ack
        if frame.command == "P":
            board.pings += 1
            return ack
        return nak
