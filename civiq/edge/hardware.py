"""Build the center's device drivers from its config: the only place that knows every device kind.

Pins come from a gpiozero pin factory (lgpio on a Pi, MockFactory in simulation), serial devices from port
paths (udev symlinks on a Pi, pty symlinks in simulation). Devices on the same port share one
:class:`SerialTransport` (an RS-485 bus) and one :class:`Worker` (jobs on a bus run one after another).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from civiq.clock import Clock
from civiq.edge.config import CenterConfig
from civiq.edge.devices.base import Device
from civiq.edge.devices.transport import SerialTransport
from civiq.edge.worker import Worker

log = logging.getLogger(__name__)


NO_PIN_LIBRARY_HINT = ("this is not a Raspberry Pi, or lgpio is not installed (`sudo apt install python3-lgpio`). "
                       "Without a Pi, try the config with --simulate")


@dataclass
class PinLibraries:
    """What gpiozero tried while choosing its pin library: ``tried`` = ``["lgpio (No module named 'lgpio')",
    ...]`` for every library that could not load so far (see :func:`pin_libraries`)."""

    caught: list[warnings.WarningMessage] = field(default_factory=list)

    @property
    def tried(self) -> list[str]:
        from gpiozero import GPIOZeroWarning

        out = []
        for w in self.caught:
            if issubclass(w.category, GPIOZeroWarning):
                name, _, why = str(w.message).removeprefix("Falling back from ").partition(": ")
                out.append(f"{name} ({why})" if why else name)
        return out

    def text(self) -> str:
        return "; ".join(self.tried)

    @staticmethod
    def in_use() -> str:
        """The pin library gpiozero settled on ("LGPIOFactory"), or "no pin library"."""
        from gpiozero import Device

        return type(Device.pin_factory).__name__ if Device.pin_factory is not None else "no pin library"

    def none_loaded(self, error: BaseException) -> bool:
        """Whether ``error`` (raised while claiming pins) means that no pin library could load at all."""
        from gpiozero import BadPinFactory

        return isinstance(error.__cause__ or error, BadPinFactory) or "pin factory" in str(error)


@contextmanager
def pin_libraries() -> Iterator[PinLibraries]:
    """Collect gpiozero's pin library fallbacks ("Falling back from lgpio: No module named 'lgpio'") instead of
    printing them as Python warnings: the caller says it in one line (doctor, the CLI). Other warnings are shown
    as usual.

    >>> import warnings
    >>> from gpiozero import PinFactoryFallback
    >>> with pin_libraries() as pins:
    ...     warnings.warn("Falling back from lgpio: No module named 'lgpio'", PinFactoryFallback)
    >>> pins.text()
    "lgpio (No module named 'lgpio')"
    """
    from gpiozero import GPIOZeroWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pins = PinLibraries(caught)
        yield pins
    for w in caught:  # outside the catch: shown as they would have been
        if not issubclass(w.category, GPIOZeroWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


@dataclass
class Hardware:
    devices: dict[str, Device] = field(default_factory=dict)
    printers: dict[str, Device] = field(default_factory=dict)
    displays: dict[str, Device] = field(default_factory=dict)  # by device id
    counter_displays: dict[str, list[Device]] = field(default_factory=dict)  # by counter id
    keypads: dict[str, Device] = field(default_factory=dict)
    counter_pads: dict[str, list[Device]] = field(default_factory=dict)  # serial pads with an LCD, by counter
    qrboards: dict[str, Device] = field(default_factory=dict)
    ratingpads: dict[str, Device] = field(default_factory=dict)  # rating pads and pages, by device id
    dispenser: Device | None = None
    counter_of: dict[str, str] = field(default_factory=dict)  # device id -> the counter it belongs to
    transports: dict[str, SerialTransport] = field(default_factory=dict)
    workers: dict[str, Worker] = field(default_factory=dict)  # by port (or device id for non-serial)
    worker_of: dict[str, Worker] = field(default_factory=dict)  # device id -> worker

    def start(self) -> None:
        for pad in [*self.keypads.values(), *self.ratingpads.values()]:
            start = getattr(pad, "start", None)
            if start:
                start()

    def close(self) -> None:
        for dev in self.devices.values():
            for name in ("stop", "close"):
                fn = getattr(dev, name, None)
                if fn:
                    try:
                        fn()
                    except Exception:  # noqa: BLE001 - closing anyway
                        log.debug("closing %s", dev.id, exc_info=True)
        for w in self.workers.values():
            w.stop(2)
        for t in self.transports.values():
            t.close()


def printer_statics(cfg: CenterConfig) -> list:  # noqa: ANN201 - list[Static]
    """The static images of this center's tickets (stored in the printer before the first ticket)."""
    from civiq.edge.devices.printer.stored import statics_for

    labels = [cfg.priority.label(cid) for cid in cfg.priority.enabled()]
    return statics_for(cfg.center.name, [(s.name_vi, s.name_en) for s in cfg.services],
                       [lbl for lbl in labels if lbl])


def build_hardware(cfg: CenterConfig, *, clock: Clock, pin_factory: object | None,
                   resolve_port: Callable[[str], str] = lambda p: p,
                   on_press: Callable[..., None], on_key: Callable[..., None],
                   state_dir: Path | None = None,
                   on_rating: Callable[[str, str, int | str], None] = lambda d, k, v: None) -> Hardware:
    """Create every configured device. ``on_key(counter, action, keypad_id)``; ``on_press(service_prefix)``
    (``on_press(service_prefix, priority=<class id>)`` after a priority button); ``on_rating(pad_id,
    "score" | "reason", score or reason id)`` for a rating pad's key."""
    from civiq.edge.devices.dispenser import Dispenser
    from civiq.edge.devices.display import AsciiFrameDisplay, ModbusLedDisplay, open_max7219
    from civiq.edge.devices.keypad import GpioKeypad, SerialCallPad, issue_action
    from civiq.edge.devices.printer import ThermalPrinter
    from civiq.edge.devices.qrboard import NextionQrBoard
    from civiq.edge.devices.ratingpad import GpioRatingPad, PageRatingPad, SerialRatingPad
    from civiq.edge.printer_links import open_printer_transport

    hw = Hardware()

    def transport(port: str, baudrate: int) -> SerialTransport:
        if port not in hw.transports:
            hw.transports[port] = SerialTransport(resolve_port(port), baudrate=baudrate)
            hw.workers[port] = Worker(port.rsplit("/", 1)[-1])
        return hw.transports[port]

    def add(dev: Device, worker_key: str) -> None:
        hw.devices[dev.id] = dev
        if worker_key not in hw.workers:
            hw.workers[worker_key] = Worker(worker_key)
        hw.worker_of[dev.id] = hw.workers[worker_key]

    for p in cfg.printers:
        codepage = None if p.codepage in (None, "none") else p.codepage
        link = open_printer_transport(p, resolve_port)  # USB or network printer; None: serial
        if link is not None:
            hw.transports[p.port] = link
        dev = ThermalPrinter(p.id, link or transport(p.port, p.baudrate), codepage=codepage,
                             width_dots=p.width_dots, graphics=p.graphics, statics=printer_statics(cfg),
                             state_path=Path(state_dir) / "printer-graphics.json" if state_dir else None,
                             store_on_poll=state_dir is not None)  # doctor (no state dir) only asks status
        hw.printers[p.id] = dev
        add(dev, p.port)

    for d in cfg.displays:
        if d.protocol == "modbus":
            dev = ModbusLedDisplay(d.id, transport(d.port, d.baudrate), d.address, digits=d.digits)
            key = d.port
        elif d.protocol == "ascii":
            dev = AsciiFrameDisplay(d.id, transport(d.port, d.baudrate), d.address, width=d.width)
            key = d.port
        else:
            dev = open_max7219(d.id, d.spi_port, d.spi_device, d.digits, pin_factory)
            key = f"spi{d.spi_port}.{d.spi_device}"
        hw.displays[d.id] = dev
        hw.counter_displays.setdefault(d.counter, []).append(dev)
        hw.counter_of[d.id] = d.counter
        add(dev, key)

    for k in cfg.keypads:
        counter = k.counter

        def key_cb(action: str, counter: str = counter, kid: str = k.id) -> None:
            on_key(counter, action, kid)

        if k.kind == "gpio":
            pins: dict[str, int | str] = {**k.pins, **{issue_action(i.service, i.priority): i.pin for i in k.issue}}
            dev = GpioKeypad(k.id, pins, key_cb, clock=clock, pin_factory=pin_factory)
            add(dev, k.id)
        else:
            dev = SerialCallPad(k.id, transport(k.port, k.baudrate), k.address, key_cb,
                                extra_codes={i.code: issue_action(i.service, i.priority) for i in k.issue})
            hw.counter_pads.setdefault(counter, []).append(dev)
            add(dev, k.port)
        hw.keypads[k.id] = dev
        hw.counter_of[k.id] = counter

    for q in cfg.qrboards:
        if q.kind == "nextion":
            dev = NextionQrBoard(q.id, transport(q.port, q.baudrate))
            hw.qrboards[q.id] = dev
            add(dev, q.port)

    for r in cfg.ratingpads:
        rid = r.id

        def on_score(score: int, rid: str = rid) -> None:
            on_rating(rid, "score", score)

        def on_reason(reason: str, rid: str = rid) -> None:
            on_rating(rid, "reason", reason)

        if r.kind == "gpio":
            dev = GpioRatingPad(r.id, r.counter, dict(r.keys), on_score, clock=clock, reason_keys=dict(r.reason_keys),
                                on_reason=on_reason, led_pin=r.led_pin, debounce_s=r.debounce_ms / 1000,
                                pin_factory=pin_factory)
            add(dev, r.id)
        elif r.kind == "serial":
            dev = SerialRatingPad(r.id, r.counter, transport(r.port, r.baudrate), r.address, on_score,
                                  on_reason=on_reason, reason_codes={c: reason for reason, c in r.reason_keys.items()},
                                  scale=cfg.rating.scale if cfg.rating else 5, poll_interval=0.2,
                                  idle_poll_interval=1.0)
            add(dev, r.port)
        else:
            dev = PageRatingPad(r.id, r.counter)
            add(dev, f"page-{r.id}")
        hw.ratingpads[r.id] = dev
        hw.counter_of[r.id] = r.counter

    if cfg.dispenser is not None:
        d = cfg.dispenser
        dev = Dispenser(d.id, dict(d.buttons), on_press, clock=clock, led_pin=d.led_pin,
                        buzzer_pin=d.buzzer_pin, debounce_s=d.debounce_ms / 1000, pin_factory=pin_factory,
                        priority_buttons=dict(d.priority_buttons), priority_window_s=d.priority_window_s)
        hw.dispenser = dev
        add(dev, "dispenser")
    return hw
