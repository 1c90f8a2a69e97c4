"""An RS-485 call pad on a pty, speaking the protocol documented in :mod:`civiq.edge.devices.keypad`.

    emu = CallPadEmulator(address=11).start()
    pad = SerialCallPad("k2", SerialTransport(emu.port), 11, on_key).start()
    emu.press("next")        # on_key("next") is called once, at the next poll
    pad.show("A012"); emu.lcd == "A012"
"""

from __future__ import annotations

from collections import deque

from civiq.edge.devices.display.asciiframe import ACK, NAK, BadFrame, FrameParser, encode_frame
from civiq.edge.devices.emulator import PtyEmulator
from civiq.edge.devices.keypad import KEY_CODES, NO_KEY


class CallPadEmulator(PtyEmulator):
    name = "callpad"

    def __init__(self, address: int = 11, lcd_width: int = 8) -> None:
        super().__init__()
        self.address = address
        self.lcd_width = lcd_width
        self.lcd_raw = " " * lcd_width
        self.keys: deque[str] = deque(maxlen=8)
        self.parser = FrameParser()
        self.polls = 0
        self.frames_bad = 0
        self.reported: list[str] = []  # key codes sent to the master, in order

    @property
    def lcd(self) -> str:
        return self.lcd_raw.strip()

    def press(self, key: str) -> None:
        """A member of staff presses a key: an action name ("next") or a raw code ("N", or any byte)."""
        code = KEY_CODES.get(key, key)
        if len(code) != 1 or not 0x20 < ord(code) < 0x7F:
            raise ValueError(f"unknown key {key!r}: an action name or one printable ASCII code")
        with self.lock:
            self.keys.append(code)

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        ack = bytes([ACK]) + f"{self.address:02d}".encode()
        nak = bytes([NAK]) + f"{self.address:02d}".encode()
        for item in self.parser.feed(data):
            if item.address != self.address:
                continue
            if isinstance(item, BadFrame):
                self.frames_bad += 1
                out += nak
            elif item.command == "K":
                self.polls += 1
                code = self.keys.popleft() if self.keys else NO_KEY
                if code != NO_KEY:
                    self.reported.append(code)
                out += encode_frame(self.address, "K", code.encode("latin-1"))
            elif item.command == "T":
                self.lcd_raw = item.payload.decode("latin-1")[: self.lcd_width].ljust(self.lcd_width)
                out += ack
            elif item.command == "P":
                out += ack
            else:
                out += nak
        return bytes(out)
