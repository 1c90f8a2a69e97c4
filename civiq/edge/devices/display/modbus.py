"""Modbus-RTU numeric LED counter boards on an RS-485 bus.

Why our own framing and not pymodbus: pymodbus is not in our dependency list, and a counter board needs two
functions only (0x10 write multiple registers, 0x03 read holding registers). The RTU frame is small and fully
specified (address, function, data, CRC-16/MODBUS little-endian); the code below is that and nothing more, and
it shares the bus :class:`~civiq.edge.devices.transport.SerialTransport` (and its lock) with the other boards
and call pads on the same port.

Register map of the board (holding registers; the common layout of RS-485 "Modbus LED counter display"
boards; pass other addresses to the constructor if a vendor differs):

=============  =====================================================================
``0x0000+i``   character cell ``i`` (left to right), ASCII code; ``0x20`` is blank
``0x0010``     brightness 0..15
``0x0020``     status (read only): bit 0 LED/segment fault, bit 1 over temperature
=============  =====================================================================

    >>> write_registers_request(1, 0, [0x41, 0x30]).hex(" ")
    '01 10 00 00 00 02 04 00 41 00 30 a3 af'
    >>> with_crc(bytes.fromhex("010300000001")).hex(" ")  # the textbook frame: 01 03 00 00 00 01 84 0A
    '01 03 00 00 00 01 84 0a'
"""

from __future__ import annotations

import struct
import time

from civiq.contract import DeviceState
from civiq.edge.devices.display.base import CounterDisplay, DisplayError, strip_diacritics
from civiq.edge.devices.transport import SerialTransport, TransportError

WRITE_MULTIPLE = 0x10
READ_HOLDING = 0x03
CELLS_START = 0x0000
BRIGHTNESS_REGISTER = 0x0010
STATUS_REGISTER = 0x0020
STATUS_LED_FAULT = 0x0001
STATUS_OVER_TEMPERATURE = 0x0002

EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge (busy, try later)",
    0x06: "server device busy",
}


# ----------------------------------------------------------------------------------------- framing
def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    return body + crc16_modbus(body).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16_modbus(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def check_address(address: int) -> int:
    if not isinstance(address, int) or not 1 <= address <= 247:
        raise ValueError(f"Modbus address must be 1..247, not {address!r}")
    return address


def write_registers_request(address: int, start: int, values: list[int]) -> bytes:
    """Function 0x10: write ``values`` (0..65535 each, 1..123 of them) from register ``start``."""
    if not 1 <= len(values) <= 123:
        raise ValueError("a Modbus write carries 1..123 registers")
    body = struct.pack(">BBHHB", address, WRITE_MULTIPLE, start, len(values), 2 * len(values))
    body += b"".join(struct.pack(">H", v) for v in values)
    return with_crc(body)


def read_registers_request(address: int, start: int, count: int) -> bytes:
    """Function 0x03: read ``count`` (1..125) holding registers from ``start``."""
    if not 1 <= count <= 125:
        raise ValueError("a Modbus read asks for 1..125 registers")
    return with_crc(struct.pack(">BBHH", address, READ_HOLDING, start, count))


class ModbusError(DisplayError):
    """A Modbus exchange failed; ``state`` says what it means for the board's health."""


class ModbusMaster:
    """Request/reply exchanges with one slave address over a shared :class:`SerialTransport`."""

    def __init__(self, transport: SerialTransport, address: int, *, timeout: float = 0.3,
                 where: str = "") -> None:
        self.transport = transport
        self.address = check_address(address)
        self.timeout = timeout
        self.where = where or f"Modbus address {address} on {transport.port}"

    def _exchange(self, request: bytes) -> bytes:
        """Send ``request``; return the whole reply frame (CRC checked). Raises :class:`ModbusError`."""
        t = self.transport
        try:
            with t.lock:
                t.reset_input()
                t.write(request)
                deadline = time.monotonic() + self.timeout
                head = t.read(2, self.timeout)
                if len(head) < 2:
                    if head:
                        raise ModbusError(f"{self.where}: reply cut off after 1 byte", DeviceState.degraded)
                    raise ModbusError(f"{self.where} does not answer", DeviceState.offline)
                if head[1] & 0x80:
                    need = 3  # exception code + CRC
                elif head[1] == READ_HOLDING:
                    count = t.read(1, max(0.0, deadline - time.monotonic()) + 0.05)
                    head += count
                    need = (count[0] + 2) if count else 0
                else:
                    need = 6  # start, count, CRC
                rest = t.read(need, max(0.0, deadline - time.monotonic()) + 0.05) if need else b""
        except TransportError as e:
            raise ModbusError(f"{self.where}: the port is not usable ({e})", DeviceState.offline) from None
        frame = head + rest
        if len(frame) < len(head) + need or (head[1] == READ_HOLDING and len(head) < 3):
            raise ModbusError(f"{self.where}: reply cut off ({frame.hex(' ')})", DeviceState.degraded)
        if not crc_ok(frame):
            raise ModbusError(f"{self.where}: reply failed its CRC check (noise on the RS-485 line? "
                              "check the termination and the cable)", DeviceState.degraded)
        if frame[0] != self.address:
            raise ModbusError(f"{self.where}: a reply came from address {frame[0]} instead",
                              DeviceState.degraded)
        if frame[1] == request[1] | 0x80:
            code = frame[2]
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            raise ModbusError(f"{self.where} refused the request: {name} (exception code {code})",
                              DeviceState.failed)
        if frame[1] != request[1]:
            raise ModbusError(f"{self.where}: reply has function 0x{frame[1]:02x}, expected "
                              f"0x{request[1]:02x}", DeviceState.degraded)
        return frame

    def exchange(self, request: bytes, retries: int = 1) -> tuple[bytes, str]:
        """Exchange with ``retries`` more tries after a lost or garbled reply (never after a refusal).

        Returns the reply and, when a retry was needed, the first failure in words ("" otherwise).
        """
        first = ""
        for attempt in range(retries + 1):
            try:
                return self._exchange(request), first
            except ModbusError as e:
                if e.state == DeviceState.failed or attempt == retries:
                    raise
                first = first or str(e)
        raise AssertionError("unreachable")  # pragma: no cover

    def write_registers(self, start: int, values: list[int], retries: int = 1) -> str:
        request = write_registers_request(self.address, start, values)
        reply, warning = self.exchange(request, retries)
        if reply[2:6] != request[2:6]:
            raise ModbusError(f"{self.where}: write echo does not match (sent {request[2:6].hex(' ')}, "
                              f"got {reply[2:6].hex(' ')})", DeviceState.degraded)
        return warning

    def read_registers(self, start: int, count: int, retries: int = 1) -> tuple[list[int], str]:
        reply, warning = self.exchange(read_registers_request(self.address, start, count), retries)
        data = reply[3:-2]
        if reply[2] != 2 * count or len(data) != 2 * count:
            raise ModbusError(f"{self.where}: read returned {len(data)} bytes, expected {2 * count}",
                              DeviceState.degraded)
        return [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)], warning


# ------------------------------------------------------------------------------------------ driver
class ModbusLedDisplay(CounterDisplay):
    """A numeric/alphanumeric LED board that speaks Modbus RTU.

        >>> bus = SerialTransport("/dev/civiq-rs485", 9600)        # doctest: +SKIP
        >>> d1 = ModbusLedDisplay("d1", bus, address=1, digits=4)   # doctest: +SKIP
        >>> d1.show("A012")                                          # doctest: +SKIP
    """

    model = "modbus-rtu-led"

    def __init__(self, device_id: str, transport: SerialTransport, address: int, digits: int = 4, *,
                 timeout: float = 0.3, retries: int = 1, cells_start: int = CELLS_START,
                 brightness_register: int = BRIGHTNESS_REGISTER,
                 status_register: int = STATUS_REGISTER) -> None:
        super().__init__(device_id, digits, align="right")
        self.address = check_address(address)
        self.transport = transport
        self.retries = retries
        self.cells_start = cells_start
        self.brightness_register = brightness_register
        self.status_register = status_register
        self.bus = ModbusMaster(transport, address, timeout=timeout, where=self.describe())

    def describe(self) -> str:
        return f"display {self.id} (Modbus address {self.address} on {self.transport.port})"

    def _write(self, text: str) -> tuple[DeviceState, str] | None:
        plain = strip_diacritics(text)
        bad = [c for c in plain if not 0x20 <= ord(c) < 0x7F]
        if bad:
            raise DisplayError(f"{self.describe()}: cannot show {''.join(bad)!r} (the board has ASCII "
                               "characters only)")
        plain = plain[: self.width].ljust(self.width)
        warning = self.bus.write_registers(self.cells_start, [ord(c) for c in plain], self.retries)
        return (DeviceState.degraded, f"needed a retry: {warning}") if warning else None

    def set_brightness(self, level: int) -> None:
        """0 (dimmest) .. 15 (brightest). Raises :class:`DisplayError`."""
        if not isinstance(level, int) or not 0 <= level <= 15:
            raise DisplayError(f"{self.describe()}: brightness must be 0..15, not {level!r}")
        try:
            self.bus.write_registers(self.brightness_register, [level], self.retries)
        except DisplayError as e:
            self.set_health(e.state, str(e))
            raise

    def _probe(self) -> tuple[DeviceState, str]:
        (status,), warning = self.bus.read_registers(self.status_register, 1, self.retries)
        if status & STATUS_OVER_TEMPERATURE:
            return DeviceState.failed, f"{self.describe()} reports over temperature (status 0x{status:04x})"
        if status & STATUS_LED_FAULT:
            return DeviceState.degraded, f"{self.describe()} reports failed LEDs (status 0x{status:04x})"
        if status:
            return DeviceState.degraded, f"{self.describe()} reports status 0x{status:04x}"
        if warning:
            return DeviceState.degraded, f"needed a retry: {warning}"
        return DeviceState.ok, ""
