"""Emulated hardware for a center config: gpiozero MockFactory pins and one pty emulator per serial port.

USB printers (``/dev/usb/lp0``) get a pty behind their device path too; a network printer (``tcp://``) gets
a :class:`NetworkPrinterEmulator` listening on 127.0.0.1 (``resolve_port`` gives its address).

Each configured serial port gets an emulator that speaks the real protocol of the devices on it, and a
symlink in ``sim_dir`` that the agent opens exactly as it would open a udev symlink on a Pi. Unplugging a
device removes its symlink and closes its pty; plugging it back creates a fresh pty and re-points the
symlink, so the driver's reconnect path is the real one.

    sim = SimHardware(cfg, Path("/tmp/sim")).start()
    agent = EdgeAgent(cfg, pin_factory=sim.pin_factory, resolve_port=sim.resolve_port)
    sim.press_button("A")
    sim.printed("p1")[-1].text
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from civiq.edge.config import CenterConfig
from civiq.edge.sim.emulator import PtyEmulator

KEYPAD_DEBOUNCE_S = 0.2  # GpioKeypad's default


def port_slug(port: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", port.strip("/")) or "port"


def sim_dir_for(cfg: CenterConfig, state_dir: str | Path | None = None) -> Path:
    return Path(state_dir or cfg.state_dir) / "sim"


def pin_number(pin: int | str) -> int:
    if isinstance(pin, int):
        return pin
    m = re.search(r"(\d+)$", str(pin))
    if not m:
        raise ValueError(f"pin {pin!r}")
    return int(m.group(1))


class SimHardware:
    def __init__(self, cfg: CenterConfig, sim_dir: str | Path, *, paced_printers: bool = False) -> None:
        self.cfg = cfg
        # Serial printers at the configured baud rate (bytes take baud/10 per second). Off by default: the
        # first start stores the ticket's images in the printer (~20 KB: ~11 s at 19200 baud), which would
        # hold every simulated ticket behind it; bench/ and the physics tests turn it on.
        self.paced_printers = paced_printers
        self.sim_dir = Path(sim_dir)
        self.pin_factory = MockFactory()
        self.emulators: dict[str, PtyEmulator] = {}  # by configured port
        self.device_port: dict[str, str] = {}  # device id -> configured port
        self.max7219: dict[str, object] = {}
        self._lock = threading.RLock()
        self._last_press: dict[int, float] = {}
        from civiq.edge.sim.speaker import SpeakerEmulator

        self.speaker = SpeakerEmulator()  # the hall speaker (used when the config has a speaker: section)
        # a tap on a rating page (the agent sets it: the page's own handler, as its POST would call it)
        self.page_rate: Callable[[str, int, list[str]], object] | None = None

    # -------------------------------------------------------------------------------- set-up
    def _make(self, port: str) -> PtyEmulator:
        from civiq.edge.sim.display import AsciiBusEmulator, ModbusBusEmulator
        from civiq.edge.sim.printer import EscPosEmulator
        from civiq.edge.sim.qrboard import NextionEmulator

        cfg = self.cfg
        printers = [p for p in cfg.printers if p.port == port]
        if printers and printers[0].transport == "tcp":
            from civiq.edge.sim.printer_links import NetworkPrinterEmulator

            emu = EscPosEmulator(width_dots=printers[0].width_dots)
            return NetworkPrinterEmulator(emu=emu)  # type: ignore[return-value] - same plug/unplug/tickets API
        if printers and self.paced_printers and printers[0].transport == "usb":  # a pty too; USB: ~1 MB/s
            return EscPosEmulator(width_dots=printers[0].width_dots, byte_seconds=1e-6)
        if printers and self.paced_printers:  # a serial line at the configured baud rate
            return EscPosEmulator(printers[0].baudrate, width_dots=printers[0].width_dots)
        if printers:  # serial, or a USB printer (a pty here too); unpaced: the tickets come out at once
            return EscPosEmulator(width_dots=printers[0].width_dots)
        modbus = [d for d in cfg.displays if d.protocol == "modbus" and d.port == port]
        if modbus:
            emu = ModbusBusEmulator()
            for d in modbus:
                emu.add_board(d.address)
            return emu
        ascii_ = [d for d in cfg.displays if d.protocol == "ascii" and d.port == port]
        pads = [k for k in cfg.keypads if k.kind == "serial" and k.port == port]
        rpads = [r for r in cfg.ratingpads if r.kind == "serial" and r.port == port]
        if ascii_ or pads or rpads:  # call and rating pads speak the same framing: one bus emulator holds all
            from civiq.edge.sim.ratingpad import RatingPadState

            emu = AsciiBusEmulator()
            for d in ascii_:
                emu.add_board(d.address)
            for k in pads:
                emu.add_pad(k.address)
            for r in rpads:
                with emu.lock:
                    emu.pads[r.address] = RatingPadState(r.address, cfg.rating.scale if cfg.rating else 5)  # type: ignore[assignment]
            return emu
        if any(q.kind == "nextion" and q.port == port for q in cfg.qrboards):
            return NextionEmulator()
        raise ValueError(f"no emulator for port {port}")

    def ports(self) -> list[str]:
        cfg = self.cfg
        seen: dict[str, None] = {}
        for p in cfg.printers:
            seen[p.port] = None
            self.device_port[p.id] = p.port
        for d in cfg.displays:
            if d.protocol in ("modbus", "ascii"):
                seen[d.port] = None
                self.device_port[d.id] = d.port
        for k in cfg.keypads:
            if k.kind == "serial":
                seen[k.port] = None
                self.device_port[k.id] = k.port
        for q in cfg.qrboards:
            if q.kind == "nextion":
                seen[q.port] = None
                self.device_port[q.id] = q.port
        for r in cfg.ratingpads:
            if r.kind == "serial":
                seen[r.port] = None
                self.device_port[r.id] = r.port
        return list(seen)

    def start(self) -> SimHardware:
        from civiq.edge.sim.max7219 import Max7219Emulator

        self.sim_dir.mkdir(parents=True, exist_ok=True)
        for port in self.ports():
            self.plug_port(port)
        for d in self.cfg.displays:
            if d.protocol == "max7219":  # the chip must be on the mock SPI bus before the driver opens it
                self.max7219[d.id] = Max7219Emulator(d.spi_port, d.spi_device, pin_factory=self.pin_factory,
                                                     digits_on_module=d.digits)
        return self

    def resolve_port(self, port: str) -> str:
        if port.startswith("tcp://"):  # a network printer: its emulator listens on 127.0.0.1
            return self.emulators[port].url  # type: ignore[attr-defined]
        return str(self.sim_dir / port_slug(port))

    def plug_port(self, port: str) -> PtyEmulator:
        with self._lock:
            old = self.emulators.get(port)
            if port.startswith("tcp://"):  # the same network printer powers on again, on the same address
                emu = old if old is not None else self._make(port)
                if not emu.plugged:
                    emu.start()
                self.emulators[port] = emu
                return emu
            emu = self._make(port).start()
            if old is not None:
                _carry_state(old, emu)
            self.emulators[port] = emu
            link = Path(self.resolve_port(port))
            tmp = link.with_name(link.name + ".new")
            if tmp.is_symlink():
                tmp.unlink()
            os.symlink(emu.port, tmp)
            os.replace(tmp, link)
            return emu

    def unplug_port(self, port: str) -> None:
        with self._lock:
            emu = self.emulators.get(port)
            link = Path(self.resolve_port(port))
            if link.is_symlink():
                link.unlink()
            if emu is not None:
                emu.unplug()

    def stop(self) -> None:
        for port in list(self.emulators):
            self.unplug_port(port)

    # -------------------------------------------------------------------------------- people
    def _pin(self, pin: int | str):  # noqa: ANN202
        return self.pin_factory.pin(pin_number(pin))

    def press_pin(self, pin: int | str, min_gap_s: float = 0.0) -> None:
        """A short press of an active-low button (pull-up): drive low, then release.

        Like a person, the simulator does not press the same button again faster than its debounce
        time (``min_gap_s``): presses closer than that are bounces by definition and would count once.
        """
        n = pin_number(pin)
        with self._lock:
            wait = self._last_press.get(n, -1e9) + min_gap_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            p = self._pin(n)
            p.drive_low()
            p.drive_high()
            self._last_press[n] = time.monotonic()

    def press_button(self, service: str, priority: str | None = None) -> None:
        """A citizen presses a service button; with ``priority`` (a class id), its priority button first."""
        if self.cfg.dispenser is None or service not in self.cfg.dispenser.buttons:
            raise KeyError(f"no dispenser button for service {service!r}")
        d = self.cfg.dispenser
        if priority is not None:
            if priority not in d.priority_buttons:
                raise KeyError(f"no dispenser priority button for class {priority!r}")
            self.press_pin(d.priority_buttons[priority], min_gap_s=d.debounce_ms / 1000 + 0.06)
        self.press_pin(d.buttons[service], min_gap_s=d.debounce_ms / 1000 + 0.06)

    def press_key(self, keypad_id: str, action: str, ticket: str | None = None) -> None:
        """A clerk presses a key; on a call pad, ``ticket`` is typed first (``call``, ``call_held``)."""
        k = next((k for k in self.cfg.keypads if k.id == keypad_id), None)
        if k is None:
            raise KeyError(f"no keypad {keypad_id!r}")
        if k.kind == "gpio":
            if ticket:
                raise ValueError(f"keypad {keypad_id} is a GPIO keypad: it cannot type a ticket number")
            issue = next((i for i in k.issue if f"issue:{i.service}:{i.priority or ''}" == action), None)
            if issue is not None:
                self.press_pin(issue.pin, min_gap_s=KEYPAD_DEBOUNCE_S + 0.06)
                return
            if action not in k.pins:
                raise KeyError(f"keypad {keypad_id} has no {action!r} key")
            self.press_pin(k.pins[action], min_gap_s=KEYPAD_DEBOUNCE_S + 0.06)
        else:
            pad = self.emulators[k.port].pads[k.address]
            if ticket:
                pad.type(ticket)
            pad.press(action)

    def rate(self, pad_id: str, score: int, reasons: list[str] | tuple[str, ...] = ()) -> None:
        """A citizen rates on rating device ``pad_id``: the score key, then the reason keys (a page: the face,
        the reasons, then "Gửi"). Whether it counts is the agent's business (a rating window must be open)."""
        r = next((r for r in self.cfg.ratingpads if r.id == pad_id), None)
        if r is None:
            raise KeyError(f"no rating device {pad_id!r} in the config's ratingpads")
        scale = self.cfg.rating.scale if self.cfg.rating is not None else 5
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= scale:
            raise ValueError(f"a score is 1 to {scale} on this center's scale, not {score!r}")
        offered = list(self.cfg.rating.reasons) if r.kind == "page" and self.cfg.rating else list(
            getattr(r, "reason_keys", {}))
        unknown = [x for x in reasons if x not in offered]
        if unknown:
            raise KeyError(f"rating device {pad_id} has no reason {unknown[0]!r} (it has: {', '.join(offered) or 'none'})")
        if r.kind == "gpio":
            if score not in r.keys:
                raise ValueError(f"rating pad {pad_id} has no key for score {score!r}")
            gap = r.debounce_ms / 1000 + 0.06
            self.press_pin(r.keys[score], min_gap_s=gap)
            for reason in reasons:
                self.press_pin(r.reason_keys[reason], min_gap_s=gap)
        elif r.kind == "serial":
            pad = self.emulators[r.port].pads[r.address]
            pad.press(score)
            for reason in reasons:
                pad.press(r.reason_keys[reason])
        else:
            if self.page_rate is None:
                raise ValueError(f"rating page {pad_id}: no agent attached to tap it")
            self.page_rate(pad_id, score, list(reasons))

    def rating_pad(self, pad_id: str):  # noqa: ANN201 - RatingPadState
        """The emulated RS-485 rating pad (its lamp, its waiting presses)."""
        r = next((r for r in self.cfg.ratingpads if r.id == pad_id and r.kind == "serial"), None)
        if r is None:
            raise KeyError(f"no RS-485 rating pad {pad_id!r} in the config's ratingpads")
        return self.emulators[r.port].pads[r.address]

    # -------------------------------------------------------------------------------- what people see
    def emulator_of(self, device_id: str) -> PtyEmulator:
        return self.emulators[self.device_port[device_id]]

    def printed(self, printer_id: str) -> list:
        return list(self.emulator_of(printer_id).tickets)

    def shown(self, display_id: str) -> str:
        d = next((d for d in self.cfg.displays if d.id == display_id), None)
        if d is None:
            raise KeyError(f"no display {display_id!r}")
        if d.protocol == "max7219":
            emu = self.max7219.get(display_id)
            return emu.text if emu is not None else ""
        emu = self.emulators[d.port]
        return emu.boards[d.address].text

    def displays(self) -> dict[str, str]:
        out = {}
        for d in self.cfg.displays:
            try:
                out[d.id] = self.shown(d.id)
            except (KeyError, AttributeError):
                out[d.id] = ""
        return out

    # -------------------------------------------------------------------------------- faults
    def unplug(self, device_id: str) -> None:
        self.unplug_port(self.device_port[device_id])

    def plug(self, device_id: str) -> None:
        self.plug_port(self.device_port[device_id])

    def set_printer(self, printer_id: str, **flags: bool) -> None:
        emu = self.emulator_of(printer_id)
        for k, v in flags.items():
            if k not in ("paper_near_end", "paper_out", "cover_open", "offline"):
                raise KeyError(f"unknown printer flag {k!r}")
            setattr(emu, k, bool(v))

    def mute(self, device_id: str, muted: bool = True) -> None:
        """A display that stops answering (its board), or a whole bus shorted when the id is a port."""
        d = next((d for d in self.cfg.displays if d.id == device_id), None)
        if d is not None and d.protocol in ("modbus", "ascii"):
            self.emulators[d.port].boards[d.address].muted = muted
            return
        self.emulator_of(device_id).muted = muted


def _carry_state(old: PtyEmulator, new: PtyEmulator) -> None:
    """A replugged device keeps its paper and its printed history (it is the same printer)."""
    for attr in ("tickets", "paper_near_end", "paper_out", "cover_open", "offline"):
        if hasattr(old, attr):
            setattr(new, attr, getattr(old, attr))
