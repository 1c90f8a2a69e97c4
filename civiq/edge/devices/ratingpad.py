"""Citizen rating pads at the counters: GPIO keys, or an RS-485 rating pad polled over the display bus.

A pad reports presses only: ``on_score(score)`` for a score key (1 = worst), ``on_reason(reason_id)`` for a
reason key. Whether a press counts (a rating window is open at the counter) is decided by
:class:`civiq.edge.rating.RatingDesk`; the pad only lights its keys when told (:meth:`indicate`):
``idle`` (dark: nothing to rate), ``open`` (score keys lit), ``reasons`` (reason keys lit), ``done``
(thank you).

GPIO rating pad
    One key per score wired to ground (internal pull-up), optional reason keys, an optional lamp (lit while
    a rating is welcome, blinking while a low score waits for reason keys). Debounce is ours, on the injected clock (MockFactory ignores ``bounce_time``).

RS-485 rating pad protocol (9600 8N1 by default; the framing of :mod:`civiq.edge.devices.display.asciiframe`:
``STX AA C payload ETX HH``, ``HH`` = XOR of address..ETX as two upper-case hex digits). docs/technician.md
("Rating pads") has it byte by byte.

* key poll, master -> pad: ``STX AA 'R' a ETX HH``; ``a`` is the sequence digit (``'0'``-``'9'``) of the last
  press the master took from this pad, ``'-'`` when it has taken none yet (agent start, or the pad has just
  come back after not answering). The pad first drops its oldest waiting press if its sequence digit is
  ``a`` (the master has it), then answers ``STX AA 'R' s k ETX HH``: its oldest waiting press, ``s`` the
  press's sequence digit (each press takes the next digit, 9 wraps to 0) and ``k`` its key: ``'1'``-``'5'``
  a score, ``'a'``-``'h'`` a reason key; ``'-' '0'`` when no press waits. A reply lost on the line is sent
  again at the next poll (same ``s``); the master takes a press once (a repeated ``s`` is not a new press).
  The pad keeps up to 8 waiting presses.
* lamps, master -> pad: ``STX AA 'L' m ETX HH`` -> ``ACK AA`` (``NAK AA`` on a bad frame); ``m``: ``'0'``
  dark, ``'1'`` score keys lit, ``'2'`` reason keys lit, ``'3'`` thank-you (the pad flashes, then goes dark).
* ping: ``STX AA 'P' ETX HH`` -> ``ACK AA``.

The agent polls a pad every ``poll_interval`` (0.2 s) while its counter accepts a rating and every
``idle_poll_interval`` otherwise (1 s in the agent: presses outside a window are still counted), so a bus
of call pads is not slowed down by the rating pads. A pad that misses ``offline_after`` polls in a row is
``offline``; ``ok`` again at its first answer, when its lamps are set again.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from civiq.clock import Clock
from civiq.contract import DeviceState
from civiq.edge.devices.base import Device, PolledDevice
from civiq.edge.devices.display.asciiframe import AsciiFrameLink
from civiq.edge.devices.display.base import DisplayError
from civiq.edge.devices.transport import SerialTransport

log = logging.getLogger(__name__)

POLL = "R"
LAMP = "L"
NONE_SEQ = "-"
NO_KEY = "0"
POLL_REPLY_LEN = 9  # STX AA 'R' s k ETX HH
LAMPS = {"idle": "0", "closed": "0", "open": "1", "reasons": "2", "recording": "3", "done": "3"}
REASON_CODES = "abcdefgh"


def _safe(device_id: str, fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - a failing handler must not kill the input thread
        log.exception("rating pad %s: the handler failed for %r", device_id, args)


class RatingPad(Device):
    kind = "ratingpad"

    def __init__(self, device_id: str, counter: str) -> None:
        super().__init__(device_id)
        self.counter = counter
        self.note: Callable[[], str] | None = None  # set by the agent: the counts shown in the health detail
        self.lamp = "idle"

    def status_note(self) -> str:
        return self.note() if self.note is not None else ""

    @property
    def has_reasons(self) -> bool:
        return False

    def indicate(self, state: str) -> None:
        self.lamp = state


class PageRatingPad(RatingPad):
    """The rating page ``/rate/<counter>`` on a tablet: a device in health and birth, no wire of its own."""

    model = "page"

    @property
    def has_reasons(self) -> bool:
        return True


# -------------------------------------------------------------------------------------------- GPIO
class GpioRatingPad(RatingPad):
    """Score keys (and optional reason keys, lamp) on GPIO pins."""

    model = "gpio"

    def __init__(self, device_id: str, counter: str, keys: Mapping[int, int | str],
                 on_score: Callable[[int], None], *, clock: Clock, reason_keys: Mapping[str, int | str] = {},  # noqa: B006
                 on_reason: Callable[[str], None] = lambda r: None, led_pin: int | str | None = None,
                 debounce_s: float = 0.2, pin_factory: Any = None) -> None:
        super().__init__(device_id, counter)
        if not keys:
            raise ValueError(f"rating pad {device_id}: no score keys configured")
        self.on_score, self.on_reason = on_score, on_reason
        self.clock = clock
        self.debounce_s = debounce_s
        self._last: dict[str, float] = {}
        self._press_lock = threading.Lock()
        self.buttons: dict[str, Any] = {}
        self.led: Any = None
        self.reason_ids = tuple(reason_keys)
        from gpiozero import LED, DigitalInputDevice

        inputs = {f"score:{s}": p for s, p in keys.items()} | {f"reason:{r}": p for r, p in reason_keys.items()}
        what = ""
        try:
            for what, pin in inputs.items():
                button = DigitalInputDevice(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
                button.when_activated = functools.partial(self._pressed, what)
                self.buttons[what] = button
            if led_pin is not None:
                what = "lamp"
                self.led = LED(led_pin, pin_factory=pin_factory)
        except Exception as e:
            self.close()
            raise ValueError(f"rating pad {device_id}: cannot use the pin of {what}: {e}") from None

    @property
    def has_reasons(self) -> bool:
        return bool(self.reason_ids)

    def _pressed(self, what: str) -> None:
        now = self.clock.monotonic()
        with self._press_lock:
            last = self._last.get(what)
            if last is not None and now - last < self.debounce_s:
                return  # contact bounce
            self._last[what] = now
        kind, _, value = what.partition(":")
        if kind == "score":
            _safe(self.id, self.on_score, int(value))
        else:
            _safe(self.id, self.on_reason, value)

    def indicate(self, state: str) -> None:
        super().indicate(state)
        if self.led is not None:
            if state == "open":
                self.led.on()
            elif state == "reasons":  # blinking: a low score waits for the reason keys
                self.led.blink(on_time=0.4, off_time=0.4)
            else:
                self.led.off()

    def close(self) -> None:
        for dev in [*self.buttons.values(), self.led]:
            if dev is None:
                continue
            try:
                dev.close()
            except Exception:  # noqa: BLE001
                pass
        self.buttons.clear()
        self.led = None


# ------------------------------------------------------------------------------------------ serial
class SerialRatingPad(RatingPad, PolledDevice):
    """An RS-485 rating pad polled for presses by a background thread (protocol in the module docstring)."""

    model = "serial-ratingpad"
    thread_prefix = "ratingpad"

    def __init__(self, device_id: str, counter: str, transport: SerialTransport, address: int,
                 on_score: Callable[[int], None], *, on_reason: Callable[[str], None] = lambda r: None,
                 reason_codes: Mapping[str, str] | None = None, scale: int = 5, poll_interval: float = 0.2,
                 idle_poll_interval: float | None = None, timeout: float = 0.2, offline_after: int = 3) -> None:
        super().__init__(device_id, counter)
        if poll_interval <= 0 or (idle_poll_interval is not None and idle_poll_interval <= 0):
            raise ValueError(f"rating pad {device_id}: poll intervals must be > 0")
        self.transport = transport
        self.address = address
        self.on_score, self.on_reason = on_score, on_reason
        self.reason_of_code = dict(reason_codes or {})  # 'a' -> reason id
        bad = [c for c in self.reason_of_code if c not in REASON_CODES]
        if bad:
            raise ValueError(f"rating pad {device_id}: reason key codes are a-h, not {bad[0]!r}")
        self.scale = scale
        # polled often while its counter accepts a rating, seldom otherwise (the bus is shared with call pads)
        self.busy_interval = poll_interval
        self.idle_interval = poll_interval if idle_poll_interval is None else idle_poll_interval
        self.poll_interval = self.idle_interval
        self.offline_after = max(1, offline_after)
        self.link = AsciiFrameLink(transport, address, timeout=timeout, where=self.describe())
        self._taken = NONE_SEQ  # sequence digit of the last press taken
        self._misses = 0
        self.unknown_keys = 0
        self.duplicates = 0  # presses sent again because our acknowledgement was lost

    def describe(self) -> str:
        return f"rating pad {self.id} (address {self.address:02d} on {self.transport.port})"

    @property
    def has_reasons(self) -> bool:
        return bool(self.reason_of_code)

    def poll_once(self) -> str | None:
        """One poll: deliver the press (if a new one came) and return its key."""
        try:
            frame, _ = self.link.request(POLL, self._taken.encode("ascii"), POLL_REPLY_LEN, retries=0)
        except DisplayError as e:
            self._missed(e)
            return None
        self._answered()
        payload = frame.payload.decode("latin-1")
        if len(payload) != 2:
            self.unknown_keys += 1
            return None
        seq, key = payload
        if seq == NONE_SEQ:
            return None
        if seq == self._taken:
            self.duplicates += 1  # our last acknowledgement was lost: the pad sent it again
            return None
        self._taken = seq
        if key.isdigit() and 1 <= int(key) <= self.scale:
            _safe(self.id, self.on_score, int(key))
        elif key in self.reason_of_code:
            _safe(self.id, self.on_reason, self.reason_of_code[key])
        else:
            self.unknown_keys += 1
            log.warning("%s: ignoring unknown key %r", self.describe(), key)
            return None
        return key

    def _missed(self, e: DisplayError) -> None:
        self._misses += 1
        if e.state == DeviceState.offline and self._misses < self.offline_after:
            return  # one lost reply is noise, not an outage
        if self.health().state != e.state:
            log.warning("%s", e)
        self.set_health(e.state, str(e))
        if e.state == DeviceState.offline:
            self._taken = NONE_SEQ  # it may come back powered up again, counting from 0

    def _answered(self) -> None:
        self._misses = 0
        if self.health().state != DeviceState.ok:
            log.info("%s answers again", self.describe())
            self.set_health(DeviceState.ok, "")
            if self.lamp not in ("idle", "closed"):  # it may have been switched off and on: light it again
                try:
                    self.link.command(LAMP, LAMPS.get(self.lamp, "0").encode("ascii"))
                except DisplayError as e:
                    log.warning("%s: lamps not set again: %s", self.describe(), e)

    def poll(self):  # noqa: ANN201 - DeviceHealth
        """Health; when the poll thread is not running, polls once (delivering any press). Never raises."""
        if self._thread is None or not self._thread.is_alive():
            try:
                self.poll_once()
            except Exception as e:  # noqa: BLE001
                self.set_health(DeviceState.failed, f"{self.describe()}: unexpected error: {e}")
        return self.health()

    def indicate(self, state: str) -> None:
        """Light the pad's keys for ``state`` (raises :class:`DisplayError` when the pad does not take it); a
        pad whose counter accepts a rating is polled every ``poll_interval``, else every ``idle_poll_interval``."""
        super().indicate(state)
        fast = state in ("open", "reasons")
        self.poll_interval = self.busy_interval if fast else self.idle_interval
        if fast:
            self._wake.set()  # the next poll now, not after the idle pause
        self.link.command(LAMP, LAMPS.get(state, "0").encode("ascii"))

    def close(self) -> None:
        self.stop()
