"""The number dispenser's button box: one GPIO button per service, a status LED and a buzzer (gpiozero).

Debounce is ours, timed by the injected clock (gpiozero's ``bounce_time`` is ignored by MockFactory, see
MEASURED.md, and a clock we own makes it testable). A press is accepted when the same button was last
accepted at least ``debounce_s`` ago and has been released for a short settle time (so release bounce does
not issue a second ticket). A button held down longer than ``stuck_after_s`` is reported by :meth:`poll` as
degraded; it issues one ticket, never one per second.

Priority buttons (one per priority class, e.g. "Ưu tiên · Người cao tuổi"): a press *arms* the class for
``priority_window_s`` seconds (the buzzer beeps twice); the next service button pressed in that window issues
a priority ticket of that class, ``on_press(service, priority=<class id>)``, and disarms. Past the window, or
after a ticket, a service button issues a normal ticket, ``on_press(service)``. One button per class, not
one per class and service: a center with eight services still needs only four priority buttons.

``on_press(service)`` runs in the thread that delivered the edge (gpiozero's callback thread on a Pi, the
caller of ``drive_low()`` with MockFactory); it should be quick. Its exceptions are logged, never raised.

    from gpiozero.pins.mock import MockFactory
    f = MockFactory()
    d = Dispenser("dispenser", {"A": 17, "B": 27}, issue, clock=SystemClock(), led_pin=22, pin_factory=f)
    f.pin(17).drive_low(); f.pin(17).drive_high()     # issue("A") called once
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from gpiozero import LED, Button, Buzzer, GPIOZeroError

from civiq.clock import Clock
from civiq.contract import DeviceHealth, DeviceState

from .base import Device

log = logging.getLogger(__name__)

SERVICE_KEY = re.compile(r"^[A-Z]{1,2}$")
PRIORITY = "priority:"  # button key prefix of a priority class button


class Dispenser(Device):
    kind = "dispenser"
    model = "gpio"

    def __init__(
        self,
        device_id: str,
        buttons: dict[str, int | str],
        on_press: Callable[[str], None],
        *,
        clock: Clock,
        led_pin: int | str | None = None,
        buzzer_pin: int | str | None = None,
        debounce_s: float = 0.3,
        pin_factory: object | None = None,
        stuck_after_s: float = 30.0,
        release_settle_s: float = 0.05,
        blink_s: float = 0.5,
        beep_s: float = 0.1,
        priority_buttons: dict[str, int | str] | None = None,
        priority_window_s: float = 10.0,
    ) -> None:
        super().__init__(device_id)
        if not buttons:
            raise ValueError(f"dispenser {device_id}: no buttons configured")
        for key in buttons:
            if not isinstance(key, str) or not SERVICE_KEY.match(key):
                raise ValueError(f"dispenser {device_id}: button key {key!r} is not a service prefix like 'A'")
        if debounce_s < 0 or stuck_after_s <= 0:
            raise ValueError(f"dispenser {device_id}: debounce_s must be >= 0 and stuck_after_s > 0")
        self._check_pins(device_id, {**buttons, **{f"{PRIORITY}{c}": p for c, p in (priority_buttons or {}).items()}},
                         led_pin, buzzer_pin)
        self.priority_window_s = priority_window_s
        self._armed: tuple[str, float] | None = None  # (class id, monotonic time of the press)
        self.on_press = on_press
        self.clock = clock
        self.debounce_s = debounce_s
        self.stuck_after_s = stuck_after_s
        self.release_settle_s = min(release_settle_s, debounce_s)
        self.blink_s = blink_s
        self.beep_s = beep_s
        self.presses = 0  # accepted presses
        self.ignored = 0  # edges dropped as bounce
        self.callback_errors = 0
        self._edge_lock = threading.Lock()
        self._last_accept: dict[str, float] = {}
        self._last_release: dict[str, float] = {}
        self._down_since: dict[str, float] = {}
        self._fault = False
        self._closed = False
        self.buttons: dict[str, Button] = {}
        self.led: LED | None = None
        self.buzzer: Buzzer | None = None
        kw = {"pin_factory": pin_factory} if pin_factory is not None else {}
        current = ""
        try:
            for key, pin in [*buttons.items(), *((f"{PRIORITY}{c}", p) for c, p in (priority_buttons or {}).items())]:
                current = f"button {key} (pin {pin})"
                btn = Button(pin, pull_up=True, bounce_time=None, **kw)
                btn.when_pressed = self._handler(self._pressed, key)
                btn.when_released = self._handler(self._released, key)
                self.buttons[key] = btn
                if btn.is_pressed:  # already held at start: never a ticket, but watched for stuck
                    self._down_since[key] = clock.monotonic()
            if led_pin is not None:
                current = f"status LED (pin {led_pin})"
                self.led = LED(led_pin, **kw)
                self.led.on()
            if buzzer_pin is not None:
                current = f"buzzer (pin {buzzer_pin})"
                self.buzzer = Buzzer(buzzer_pin, **kw)
        except (GPIOZeroError, ValueError, OSError) as e:
            self.close()
            raise ValueError(f"dispenser {device_id}: cannot use {current}: {e}") from e

    @staticmethod
    def _check_pins(device_id: str, buttons: dict[str, int | str], led: object, buzzer: object) -> None:
        used: dict[str, str] = {}
        named = [(f"button {k}", p) for k, p in buttons.items()] + [("status LED", led), ("buzzer", buzzer)]
        for what, pin in named:
            if pin is None:
                continue
            norm = f"GPIO{pin}" if isinstance(pin, int) else str(pin).upper()
            if norm in used:
                raise ValueError(f"dispenser {device_id}: pin {pin} is used by both {used[norm]} and {what}")
            used[norm] = what

    @staticmethod
    def _handler(fn: Callable[[str], None], key: str) -> Callable[[], None]:
        def handler() -> None:
            fn(key)

        return handler

    # --- edges --------------------------------------------------------------------------------------------

    def _pressed(self, key: str) -> None:
        now = self.clock.monotonic()
        with self._edge_lock:
            self._down_since.setdefault(key, now)
            last = self._last_accept.get(key)
            released = self._last_release.get(key)
            if (last is not None and now - last < self.debounce_s) or (
                released is not None and now - released < self.release_settle_s
            ):
                self.ignored += 1
                return
            self._last_accept[key] = now
            self.presses += 1
            if key.startswith(PRIORITY):
                self._armed = (key.removeprefix(PRIORITY), now)
            else:
                armed, self._armed = self._armed, None
        if key.startswith(PRIORITY):
            self.beep(times=2)
            return
        try:
            if armed is not None and now - armed[1] <= self.priority_window_s:
                self.on_press(key, priority=armed[0])  # type: ignore[call-arg]
                return
            self.on_press(key)
        except Exception:  # noqa: BLE001 - a bad callback must not kill the gpio callback thread
            self.callback_errors += 1
            log.exception("dispenser %s: handling a press of button %s failed", self.id, key)

    def _released(self, key: str) -> None:
        now = self.clock.monotonic()
        with self._edge_lock:
            self._last_release[key] = now
            self._down_since.pop(key, None)

    # --- outputs ------------------------------------------------------------------------------------------

    def signal_fault(self, fault: bool) -> None:
        """Status LED: steady on when all is well, blinking while a fault is signalled."""
        if self._closed or self.led is None or fault == self._fault:
            self._fault = fault
            return
        self._fault = fault
        try:
            if fault:
                self.led.blink(on_time=self.blink_s, off_time=self.blink_s, background=True)
            else:
                self.led.on()
        except GPIOZeroError:
            log.exception("dispenser %s: status LED", self.id)

    def beep(self, times: int = 1) -> None:
        """A short beep (a ticket was issued; two: a priority button armed). No-op without a buzzer."""
        if self._closed or self.buzzer is None:
            return
        try:
            self.buzzer.beep(on_time=self.beep_s, off_time=self.beep_s, n=times, background=True)
        except GPIOZeroError:
            log.exception("dispenser %s: buzzer", self.id)

    # --- health ------------------------------------------------------------------------------------------

    def stuck_buttons(self) -> list[str]:
        now = self.clock.monotonic()
        with self._edge_lock:
            return sorted(k for k, since in self._down_since.items() if now - since >= self.stuck_after_s)

    def poll(self) -> DeviceHealth:
        """Degraded while a button is held down (stuck) longer than ``stuck_after_s``. Never raises."""
        try:
            stuck = self.stuck_buttons()
            if self._closed:
                self.set_health(DeviceState.offline, "dispenser closed")
            elif len(stuck) == 1:
                self.set_health(DeviceState.degraded, f"button {stuck[0]} stuck")
            elif stuck:
                self.set_health(DeviceState.degraded, f"buttons {', '.join(stuck)} stuck")
            else:
                self.set_health(DeviceState.ok, "")
        except Exception as e:  # noqa: BLE001
            log.exception("dispenser %s: poll", self.id)
            self.set_health(DeviceState.failed, f"poll failed: {e}")
        return self.health()

    def close(self) -> None:
        """Release every pin (idempotent)."""
        self._closed = True
        for dev in [*self.buttons.values(), self.led, self.buzzer]:
            if dev is None:
                continue
            try:
                dev.close()
            except Exception:  # noqa: BLE001 - closing must release the rest
                log.exception("dispenser %s: closing %s", self.id, dev)
        self.buttons = {}
        self.led = self.buzzer = None
