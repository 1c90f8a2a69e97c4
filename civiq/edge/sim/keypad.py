"""An RS-485 call pad on a pty, speaking the protocol documented in :mod:`civiq.edge.devices.keypad`.

    emu = CallPadEmulator(address=11).start()
    pad = SerialCallPad("k2", SerialTransport(emu.port), 11, on_key).start()
    emu.press("next")        # on_key("next") is called once, at the next poll
    emu.type("B012"); emu.press("call")   # on_key("call:B012"): the master read the typed entry
    emu.type("4821"); emu.press("sign_in")  # on_key("sign_in:4821"): the clerk's sign-in code
    pad.show("A012"); emu.lcd == "A012"

:class:`CallPadState` is the pad itself (keys waiting, LCD); :meth:`AsciiBusEmulator.add_pad
<civiq.edge.sim.display.AsciiBusEmulator.add_pad>` puts pads on a display bus with it.
"""

from __future__ import annotations

import threading
from collections import deque

from civiq.edge.devices.display.asciiframe import ACK, NAK, BadFrame, Frame, FrameParser, encode_frame
from civiq.edge.devices.keypad import CODE_LEN, ENTRY_LEN, KEY_CODES, NO_KEY
from civiq.edge.sim.emulator import PtyEmulator


class CallPadState:
    """One call pad: the presses it has not reported yet and what its LCD shows."""

    def __init__(self, address: int, lcd_width: int = 8) -> None:
        self.address = address
        self.lcd_width = lcd_width
        self.lcd_raw = " " * lcd_width
        self.keys: deque[str] = deque(maxlen=8)
        self.muted = False
        self.polls = 0
        self.frames_bad = 0
        self.reported: list[str] = []  # key codes sent to the master, in order
        self.entry = ""  # what the clerk typed on the digit keys, not yet read by the master
        self._lock = threading.Lock()

    @property
    def lcd(self) -> str:
        return self.lcd_raw.strip()

    def press(self, key: str) -> None:
        """A member of staff presses a key: an action name ("next") or a raw code ("N", or any other)."""
        code = KEY_CODES.get(key, key)
        if len(code) != 1 or not 0x20 < ord(code) < 0x7F:
            raise ValueError(f"unknown key {key!r}: an action name or one printable ASCII code")
        with self._lock:
            self.keys.append(code)

    def type(self, text: str) -> None:
        """The clerk types on the pad's keys: a ticket number ("B012", read by ``E``: its first 6
        characters) or a sign-in code ("4821", read by ``I``: up to 8 digits)."""
        text = text.strip().upper()
        if len(text) > CODE_LEN or not text.isascii() or not text.isalnum():
            raise ValueError(f"a typed entry is 1-{CODE_LEN} letters and digits, not {text!r}")
        with self._lock:
            self.entry = text

    def handle(self, item: Frame | BadFrame) -> bytes:
        """The pad's answer to a frame on the bus (``b""`` when it is not addressed or muted)."""
        if item.address != self.address or self.muted:
            return b""
        ack = bytes([ACK]) + f"{self.address:02d}".encode()
        nak = bytes([NAK]) + f"{self.address:02d}".encode()
        if isinstance(item, BadFrame):
            self.frames_bad += 1
            return nak
        if item.command == "K":
            self.polls += 1
            with self._lock:
                code = self.keys.popleft() if self.keys else NO_KEY
            if code != NO_KEY:
                self.reported.append(code)
            return encode_frame(self.address, "K", code.encode("latin-1"))
        if item.command == "T":
            self.lcd_raw = item.payload.decode("latin-1")[: self.lcd_width].ljust(self.lcd_width)
            return ack
        if item.command == "P":
            return ack
        if item.command == "E":
            with self._lock:
                typed, self.entry = self.entry, ""
            return encode_frame(self.address, "E", typed[:ENTRY_LEN].ljust(ENTRY_LEN).encode("ascii"))
        if item.command == "I":
            with self._lock:
                typed, self.entry = self.entry, ""
            return encode_frame(self.address, "I", typed[:CODE_LEN].ljust(CODE_LEN).encode("ascii"))
        return nak


class CallPadEmulator(PtyEmulator):
    """A pty with one call pad on it."""

    name = "callpad"

    def __init__(self, address: int = 11, lcd_width: int = 8) -> None:
        super().__init__()
        self.pad = CallPadState(address, lcd_width)
        self.parser = FrameParser()

    address = property(lambda self: self.pad.address)
    lcd = property(lambda self: self.pad.lcd)
    polls = property(lambda self: self.pad.polls)
    frames_bad = property(lambda self: self.pad.frames_bad)
    reported = property(lambda self: self.pad.reported)

    def press(self, key: str) -> None:
        self.pad.press(key)

    def type(self, text: str) -> None:
        self.pad.type(text)

    def feed(self, data: bytes) -> bytes:
        return b"".join(self.pad.handle(item) for item in self.parser.feed(data))
