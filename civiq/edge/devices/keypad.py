"""Staff keypads at the counters: GPIO buttons, or an RS-485 call pad polled over the display bus.

Each key press becomes one *action* handed to ``on_key(action)``: ``next``, ``recall``, ``no_show``,
``transfer``, ``done``, ``open``, ``close``, ``break``, ``hold`` (park the ticket in hand), ``call_held``
(call back the oldest ticket parked here), ``sign_out`` (the clerk leaves the counter), and on a call pad
``call:<label>`` (call that ticket out of order), ``call_held:<label>`` and ``sign_in:<code>`` (the clerk's
sign-in code, typed on the digit keys; ``sign_in`` alone when nothing was typed). Keys configured to issue tickets (a reception desk) deliver
``issue:<service>:<priority class or empty>``. The agent maps the keypad to its counter.

GPIO keypad
    One button per action, wired to ground (internal pull-up). Debounce is ours (gpiozero's MockFactory
    ignores ``bounce_time``, see MEASURED.md) and uses the injected clock: after an accepted press, further
    presses of the same key within ``debounce_s`` are contact bounce and ignored.

Serial call pad protocol (RS-485 multi-drop, 9600 8N1, shares the framing of
:mod:`civiq.edge.devices.display.asciiframe`: ``STX AA C payload ETX HH``, ``HH`` = XOR of address..ETX in hex)

* key poll, master -> pad: ``STX AA 'K' ETX HH``; the pad answers ``STX AA 'K' k ETX HH`` where ``k`` is the
  oldest key not yet reported or ``'0'`` for none. Key codes::

      N next   R recall   S no_show (skip)   T transfer   D done   O open   C close   B break
      H hold   U call back a held ticket        X call the typed ticket (out of order)
      I sign in with the typed code             Q sign out
      1-9, a-z issue keys, as configured (``issue:`` in the keypad's config)

  A pad reports each press once (it keeps up to 8 unreported presses in order). Unknown codes are ignored.
* typed entry, master -> pad: ``STX AA 'E' ETX HH``; the pad answers ``STX AA 'E' <6 chars> ETX HH``: the
  ticket number the clerk typed on its digit keys before pressing ``X`` or ``U`` (e.g. ``"B012  "``, left
  aligned, space padded; all spaces = nothing typed) and clears it. The master reads it right after a key
  poll answered ``X`` or ``U``. ``X`` with nothing typed is refused on the LCD; ``U`` with nothing typed
  calls back the oldest ticket held at the counter.
* typed code, master -> pad: ``STX AA 'I' ETX HH``; the pad answers ``STX AA 'I' <8 chars> ETX HH``: the
  sign-in code the clerk typed on its digit keys before pressing ``I`` (4 to 8 digits, left aligned, space
  padded) and clears it. The master reads it right after a key poll answered ``I``. The typed entry is one
  buffer on the pad: ``E`` gives its first 6 characters, ``I`` its first 8. A dossier code (up to 40
  characters, letters and punctuation) does not fit these frames: the clerk enters it on the counter page
  or through the counter API (``complete`` with ``dossier``).
* LCD text, master -> pad: ``STX AA 'T' <8 chars> ETX HH``; the pad answers ``ACK AA`` or ``NAK AA``.
* ping: ``STX AA 'P' ETX HH`` -> ``ACK AA``.

The pad shares its port with the displays of the bus: every exchange holds the transport's lock, so a key
poll never interleaves with a display write. A pad that misses ``offline_after`` polls in a row is
``offline``; it is ``ok`` again at its first answer.

    >>> pad = SerialCallPad("k2", SerialTransport("/dev/civiq-rs485"), 11, print).start()  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from civiq.clock import Clock
from civiq.contract import DeviceHealth, DeviceState
from civiq.edge.devices.base import Device, PolledDevice
from civiq.edge.devices.display.asciiframe import AsciiFrameLink, encode_text
from civiq.edge.devices.display.base import DisplayError
from civiq.edge.devices.transport import SerialTransport

log = logging.getLogger(__name__)

ACTIONS = ("next", "recall", "no_show", "transfer", "done", "open", "close", "break", "hold", "call_held",
           "sign_out")
KEY_CODES: dict[str, str] = {
    "next": "N", "recall": "R", "no_show": "S", "transfer": "T",
    "done": "D", "open": "O", "close": "C", "break": "B", "hold": "H", "call_held": "U", "call": "X",
    "sign_in": "I", "sign_out": "Q",
}
ACTION_OF_CODE = {code: action for action, code in KEY_CODES.items()}
ENTRY_CODES = ("X", "U")  # keys followed by a read of the typed ticket number
NO_KEY = "0"
KEY_REPLY_LEN = 8  # STX AA 'K' k ETX HH
ENTRY_LEN = 6
ENTRY_REPLY_LEN = 7 + ENTRY_LEN  # STX AA 'E' <6> ETX HH
CODE_CODE = "I"  # the sign-in key: followed by a read of the typed code
CODE_LEN = 8
CODE_REPLY_LEN = 7 + CODE_LEN  # STX AA 'I' <8> ETX HH


def _shown(action: str) -> str:
    """An action as it may be logged: a sign-in code is never written to a log."""
    return "sign_in:****" if action.startswith("sign_in:") else action


def issue_action(service: str, priority: str | None) -> str:
    """The action a ticket-issuing key delivers: ``issue:A:elderly`` (``issue:A:`` for a normal ticket)."""
    return f"issue:{service}:{priority or ''}"


def _deliver(device_id: str, on_key: Callable[[str], None], action: str) -> None:
    """Hand a key to the agent; a failing callback is logged, never allowed to kill the input thread."""
    try:
        on_key(action)
    except Exception:  # noqa: BLE001
        log.exception("keypad %s: the handler of %r failed", device_id, _shown(action))


# -------------------------------------------------------------------------------------------- GPIO
class GpioKeypad(Device):
    """Buttons on GPIO pins, one per action.

        >>> pad = GpioKeypad("k1", {"next": 5, "recall": 6}, print, clock=SystemClock())  # doctest: +SKIP
    """

    kind = "keypad"
    model = "gpio"

    def __init__(self, device_id: str, pins: Mapping[str, int | str], on_key: Callable[[str], None], *,
                 clock: Clock, debounce_s: float = 0.2, pin_factory: Any = None, pull_up: bool = True) -> None:
        super().__init__(device_id)
        unknown = sorted(a for a in set(pins) - set(ACTIONS) if not a.startswith("issue:"))
        if unknown:
            raise ValueError(f"keypad {device_id}: unknown action(s) {', '.join(unknown)}; "
                             f"known: {', '.join(ACTIONS)}")
        if not pins:
            raise ValueError(f"keypad {device_id}: no buttons configured")
        seen: dict[str, str] = {}
        for action, pin in pins.items():
            key = str(pin).upper().removeprefix("GPIO")
            if key in seen:
                raise ValueError(f"keypad {device_id}: pin {pin} is used by both {seen[key]} and {action}")
            seen[key] = action
        if debounce_s < 0:
            raise ValueError(f"keypad {device_id}: debounce_s must be >= 0")
        self.on_key = on_key
        self.clock = clock
        self.debounce_s = debounce_s
        self._last: dict[str, float] = {}
        self._press_lock = threading.Lock()
        self.buttons: dict[str, Any] = {}
        # DigitalInputDevice, not Button: a Button's hold thread makes close() take a whole second
        from gpiozero import DigitalInputDevice

        try:
            for action, pin in pins.items():
                button = DigitalInputDevice(pin, pull_up=pull_up, bounce_time=None, pin_factory=pin_factory)
                button.when_activated = functools.partial(self._pressed, action)
                self.buttons[action] = button
        except Exception as e:
            self.close()
            raise ValueError(f"keypad {device_id}: cannot use pin {pin} for {action}: {e}") from None

    def _pressed(self, action: str) -> None:
        now = self.clock.monotonic()
        with self._press_lock:
            last = self._last.get(action)
            if last is not None and now - last < self.debounce_s:
                return  # contact bounce
            self._last[action] = now
        _deliver(self.id, self.on_key, action)

    def close(self) -> None:
        for button in self.buttons.values():
            try:
                button.close()
            except Exception:  # noqa: BLE001
                pass
        self.buttons.clear()


# ------------------------------------------------------------------------------------------ serial
class SerialCallPad(PolledDevice):
    """An RS-485 call pad with an 8-character LCD, polled for keys by a background thread."""

    kind = "keypad"
    thread_prefix = "callpad"
    model = "serial-callpad"

    def __init__(self, device_id: str, transport: SerialTransport, address: int,
                 on_key: Callable[[str], None], *, poll_interval: float = 0.1, timeout: float = 0.2,
                 offline_after: int = 3, lcd_width: int = 8, extra_codes: Mapping[str, str] | None = None) -> None:
        super().__init__(device_id)
        self.codes = dict(ACTION_OF_CODE)
        for code, action in (extra_codes or {}).items():
            if code in self.codes or code == NO_KEY or len(code) != 1:
                raise ValueError(f"keypad {device_id}: key code {code!r} is taken or not one character")
            self.codes[code] = action
        if poll_interval <= 0:
            raise ValueError(f"keypad {device_id}: poll_interval must be > 0")
        self.transport = transport
        self.address = address
        self.on_key = on_key
        self.poll_interval = poll_interval
        self.offline_after = max(1, offline_after)
        self.lcd_width = lcd_width
        self.link = AsciiFrameLink(transport, address, timeout=timeout, where=self.describe())
        self._misses = 0
        self.unknown_keys = 0
        self.last_lcd: str | None = None

    def describe(self) -> str:
        return f"call pad {self.id} (address {self.address:02d} on {self.transport.port})"

    def poll_once(self) -> str | None:
        """One key poll: deliver the key (if any) to ``on_key`` and return its action."""
        try:
            frame, _ = self.link.request("K", b"", KEY_REPLY_LEN, retries=0)
        except DisplayError as e:
            self._missed(e)
            return None
        self._answered()
        code = frame.payload.decode("latin-1")
        if code == NO_KEY:
            return None
        action = self.codes.get(code)
        if action is None:
            self.unknown_keys += 1
            log.warning("%s: ignoring unknown key code %r", self.describe(), code)
            return None
        if code in ENTRY_CODES:
            try:
                entry, _ = self.link.request("E", b"", ENTRY_REPLY_LEN, retries=1)
            except DisplayError as e:  # the key is lost with its number: the clerk sees no call and retries
                log.warning("%s: %s key pressed but the typed number could not be read: %s", self.describe(),
                            action, e)
                return None
            typed = entry.payload.decode("latin-1").strip().upper()
            action = f"{action}:{typed}" if typed else action
        elif code == CODE_CODE:
            try:
                entry, _ = self.link.request("I", b"", CODE_REPLY_LEN, retries=1)
            except DisplayError as e:  # the clerk sees no greeting on the LCD and types the code again
                log.warning("%s: sign-in key pressed but the typed code could not be read: %s", self.describe(), e)
                return None
            typed = entry.payload.decode("latin-1").strip()
            action = f"{action}:{typed}" if typed else action
        _deliver(self.id, self.on_key, action)
        return action

    def _missed(self, e: DisplayError) -> None:
        self._misses += 1
        if e.state == DeviceState.offline and self._misses < self.offline_after:
            return  # one lost reply is noise, not an outage
        if self.health().state != e.state:
            log.warning("%s", e)
        self.set_health(e.state, str(e))

    def _answered(self) -> None:
        self._misses = 0
        if self.health().state != DeviceState.ok:
            log.info("%s answers again", self.describe())
            self.set_health(DeviceState.ok, "")

    def poll(self) -> DeviceHealth:
        """Health; when the poll thread is not running, polls once (delivering any key). Never raises."""
        if self._thread is None or not self._thread.is_alive():
            try:
                self.poll_once()
            except Exception as e:  # noqa: BLE001
                self.set_health(DeviceState.failed, f"{self.describe()}: unexpected error: {e}")
        return self.health()

    # -- LCD
    def show(self, text: str) -> None:
        """Put ``text`` (at most ``lcd_width`` characters) on the pad's LCD. Raises :class:`DisplayError`."""
        if not isinstance(text, str) or len(text) > self.lcd_width:
            raise DisplayError(f"{self.describe()}: LCD text must be a string of at most {self.lcd_width} "
                               f"characters, not {text!r}")
        payload = encode_text(text)[: self.lcd_width].ljust(self.lcd_width)
        self.link.command("T", payload)
        self.last_lcd = text

    def close(self) -> None:
        self.stop()
