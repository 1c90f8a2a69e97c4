"""An RS-485 rating pad on a pty, decoding and answering the real frames of
:mod:`civiq.edge.devices.ratingpad` (poll ``R`` with the acknowledgement digit, lamps ``L``, ping ``P``).

    emu = RatingPadEmulator(address=21, baudrate=9600).start()      # 9600 baud: ~1 ms a byte, like the wire
    pad = SerialRatingPad("r2", "c2", SerialTransport(emu.port), 21, on_score).start()
    emu.press(4)             # on_score(4) once, at the next poll
    emu.press("a")           # a reason key
    emu.lamp                 # '1' while the counter accepts a rating

:class:`RatingPadState` is the pad itself; :class:`~civiq.edge.sim.display.AsciiBusEmulator`
holds several of them next to displays and call pads on one bus (``bus.pads[address] = RatingPadState(...)``).
"""

from __future__ import annotations

import threading
from collections import deque

from civiq.edge.devices.display.asciiframe import ACK, NAK, BadFrame, Frame, FrameParser, encode_frame
from civiq.edge.devices.ratingpad import LAMP, NO_KEY, NONE_SEQ, POLL, REASON_CODES
from civiq.edge.sim.emulator import PtyEmulator

MAX_WAITING = 8


class RatingPadState:
    """One rating pad: presses not yet acknowledged by the master, and the lamps it shows."""

    def __init__(self, address: int, keys: int = 5) -> None:
        self.address = address
        self.keys = keys
        self.waiting: deque[tuple[str, str]] = deque()  # (sequence digit, key), oldest first
        self.lamp = "0"
        self.lamps: list[str] = []  # every lamp state the master set, in order
        self.muted = False
        self.polls = 0
        self.frames_bad = 0
        self.sent: list[str] = []  # (new) keys sent to the master, in order
        self.lost_presses = 0  # presses dropped because 8 were already waiting
        self._next = 0
        self._lock = threading.Lock()

    def press(self, key: int | str) -> None:
        """A citizen presses a score key (1..keys) or a reason key ('a'-'h')."""
        k = str(key)
        if not ((k.isdigit() and 1 <= int(k) <= self.keys) or (len(k) == 1 and k in REASON_CODES)):
            raise ValueError(f"a rating pad of {self.keys} keys has score keys 1-{self.keys} and reason keys "
                             f"a-h, not {key!r}")
        with self._lock:
            if len(self.waiting) >= MAX_WAITING:
                self.lost_presses += 1
                return
            self.waiting.append((str(self._next), k))
            self._next = (self._next + 1) % 10

    def power_cycle(self) -> None:
        """Switched off and on: waiting presses lost, sequence from 0 again, lamps dark."""
        with self._lock:
            self.waiting.clear()
            self._next = 0
            self.lamp = "0"

    def handle(self, item: Frame | BadFrame) -> bytes:
        """The pad's answer to a frame on the bus (``b""`` when not addressed or muted)."""
        if item.address != self.address or self.muted:
            return b""
        ack = bytes([ACK]) + f"{self.address:02d}".encode()
        nak = bytes([NAK]) + f"{self.address:02d}".encode()
        if isinstance(item, BadFrame):
            self.frames_bad += 1
            return nak
        if item.command == POLL:
            self.polls += 1
            taken = item.payload.decode("latin-1")
            if len(taken) != 1:
                return nak
            with self._lock:
                if self.waiting and self.waiting[0][0] == taken:
                    self.waiting.popleft()  # the master has it
                head = self.waiting[0] if self.waiting else (NONE_SEQ, NO_KEY)
            if head[0] != NONE_SEQ and (not self.sent or self.sent[-1] != "".join(head)):
                self.sent.append("".join(head))  # once per press, not once per re-send
            return encode_frame(self.address, POLL, "".join(head).encode("ascii"))
        if item.command == LAMP:
            m = item.payload.decode("latin-1")
            if m not in ("0", "1", "2", "3"):
                return nak
            self.lamp = m
            self.lamps.append(m)
            return ack
        if item.command == "P":
            return ack
        return nak


class RatingPadEmulator(PtyEmulator):
    """A pty with one rating pad on it (``baudrate``: the line's pace, bytes take 10/baud s each)."""

    name = "ratingpad"

    def __init__(self, address: int = 21, keys: int = 5, baudrate: int | None = None) -> None:
        super().__init__()
        self.pad = RatingPadState(address, keys)
        self.parser = FrameParser()
        self.baudrate = baudrate

    lamp = property(lambda self: self.pad.lamp)
    polls = property(lambda self: self.pad.polls)
    frames_bad = property(lambda self: self.pad.frames_bad)

    def press(self, key: int | str) -> None:
        self.pad.press(key)

    def feed(self, data: bytes) -> bytes:
        return b"".join(self.pad.handle(item) for item in self.parser.feed(data))
