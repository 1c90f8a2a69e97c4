"""A Nextion HMI on a pty: executes the instructions the driver sends and keeps the component values.

    emu = NextionEmulator().start()
    board = NextionQrBoard("q1", SerialTransport(emu.port))
    board.show("https://example.org/p", "Đất đai", ["Đang chờ: 3"])
    emu.components["qr0"]      # 'https://example.org/p'
    emu.power_on()             # a reboot: values cleared, bkcmd back to 2, startup bytes sent
"""

from __future__ import annotations

import os
import re

from civiq.edge.devices.qrboard.nextion import PAGE_REPLY, STRING_REPLY, SUCCESS, TERM
from civiq.edge.sim.emulator import PtyEmulator

_ASSIGN = re.compile(r'^([A-Za-z_][A-Za-z0-9_]{0,14})\.txt="(.*)"$', re.S)
_PAGE = re.compile(r"^page (\w+)$")
_BKCMD = re.compile(r"^bkcmd=(\d+)$")
_GET = re.compile(r"^get ([A-Za-z_][A-Za-z0-9_]{0,14})\.txt$")


def unquote(body: str) -> str | None:
    """The value of a Nextion string literal's inside; ``None`` when an escape is invalid."""
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            if i + 1 >= len(body):
                return None
            nxt = body[i + 1]
            if nxt in '"\\':
                out.append(nxt)
            elif nxt == "r":
                out.append("\n")
            else:
                return None
            i += 2
            continue
        if ch == '"':
            return None  # an unescaped quote inside the value
        out.append(ch)
        i += 1
    return "".join(out)


class NextionEmulator(PtyEmulator):
    name = "nextion"

    def __init__(self, components: tuple[str, ...] = ("qr0", "t0", "t1", "t2", "t3"), pages: int = 1,
                 encoding: str = "utf-8") -> None:
        super().__init__()
        self.component_names = components
        self.pages = pages
        self.encoding = encoding
        self.components: dict[str, str] = dict.fromkeys(components, "")
        self.page = 0
        self.bkcmd = 2  # the HMI's power-on default: answer failures only
        self.instructions: list[str] = []
        self._buf = bytearray()

    def power_on(self) -> None:
        """The HMI reboots: values and bkcmd reset, then it announces itself (startup + ready)."""
        with self.lock:
            self.components = dict.fromkeys(self.component_names, "")
            self.page, self.bkcmd = 0, 2
            self._buf.clear()
            if self.master is not None:
                os.write(self.master, b"\x00\x00\x00" + TERM + b"\x88" + TERM)

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while True:
            end = self._buf.find(TERM)
            if end < 0:
                if len(self._buf) > 8192:
                    self._buf.clear()  # the real HMI overflows too (code 0x24)
                    out += self._result(0x24)
                return bytes(out)
            raw = bytes(self._buf[:end])
            del self._buf[: end + 3]
            out += self._execute(raw)

    def _result(self, code: int) -> bytes:
        ok = code == SUCCESS
        if (ok and self.bkcmd in (1, 3)) or (not ok and self.bkcmd in (2, 3)):
            return bytes([code]) + TERM
        return b""

    def _execute(self, raw: bytes) -> bytes:
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError:
            return self._result(0x00)
        self.instructions.append(text)
        if m := _BKCMD.match(text):
            level = int(m.group(1))
            if level > 3:
                return self._result(0x1B)
            self.bkcmd = level
            return self._result(SUCCESS)
        if m := _PAGE.match(text):
            name = m.group(1)
            if not name.isdigit() or int(name) >= self.pages:
                return self._result(0x03)
            self.page = int(name)
            return self._result(SUCCESS)
        if text == "sendme":
            return bytes([PAGE_REPLY, self.page]) + TERM
        if m := _GET.match(text):
            if m.group(1) not in self.components:
                return self._result(0x02)
            return bytes([STRING_REPLY]) + self.components[m.group(1)].encode(self.encoding) + TERM
        if m := _ASSIGN.match(text):
            comp, body = m.group(1), m.group(2)
            if comp not in self.components:
                return self._result(0x02)
            value = unquote(body)
            if value is None:
                return self._result(0x20)
            self.components[comp] = value
            return self._result(SUCCESS)
        if re.match(r"^[A-Za-z_]\w*\.\w+=", text):
            comp = text.split(".", 1)[0]
            return self._result(0x02 if comp not in self.components else 0x1A)
        return self._result(0x00)
