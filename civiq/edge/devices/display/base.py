"""What every counter display offers the agent: ``show(text)``, ``last_shown`` and a health poll.

Concrete boards (:mod:`.modbus`, :mod:`.asciiframe`, :mod:`.max7219`) implement two hooks:

* ``_write(text)``: put ``text`` (already fitted to the board's width) on the board, or raise
  :class:`DisplayError` saying in plain words what went wrong and with which health state; it may return
  ``(state, detail)`` when the text is shown but something needs attention (it took a retry after a CRC
  error: the line is noisy);
* ``_probe()``: ask the board whether it is alive (a status read or a ping); return
  ``(state, detail)`` or raise :class:`DisplayError`.

:meth:`CounterDisplay.show` raises :class:`DisplayError`; :meth:`CounterDisplay.poll` never raises.

    >>> d = SomeDisplay("d1", ...)          # doctest: +SKIP
    >>> d.show("A012"); d.last_shown        # doctest: +SKIP
    'A012'
"""

from __future__ import annotations

import logging
import unicodedata

from civiq.contract import DeviceHealth, DeviceState
from civiq.edge.devices.base import Device
from civiq.errors import EdgeError

log = logging.getLogger(__name__)


class DisplayError(EdgeError):
    """The display did not show the text. ``str(e)`` says why; ``state`` is the health it implies."""

    def __init__(self, message: str, state: DeviceState = DeviceState.failed) -> None:
        super().__init__(message)
        self.state = state


def strip_diacritics(text: str) -> str:
    """Vietnamese (or any Latin) text reduced to plain ASCII letters, for 7-bit boards.

    >>> strip_diacritics("Quầy số 3 – Đất đai")
    'Quay so 3 - Dat dai'
    """
    text = text.replace("Đ", "D").replace("đ", "d").replace("–", "-").replace("—", "-")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class CounterDisplay(Device):
    """A display above a counter that shows a ticket number ("A012") or a short word ("NGHI")."""

    kind = "display"

    def __init__(self, device_id: str, width: int, align: str = "right") -> None:
        super().__init__(device_id)
        if not isinstance(width, int) or not 1 <= width <= 64:
            raise ValueError(f"display {device_id}: width must be 1..64 characters, not {width!r}")
        if align not in ("left", "right"):
            raise ValueError(f"display {device_id}: align must be 'left' or 'right', not {align!r}")
        self.width = width
        self.align = align
        self._last_shown: str | None = None

    # ------------------------------------------------------------------ public
    @property
    def last_shown(self) -> str | None:
        """The last text the board confirmed it shows (``None`` before the first successful ``show``)."""
        return self._last_shown

    def describe(self) -> str:
        """How a technician finds this board ("display d1 (Modbus address 1 on /dev/ttyUSB0)")."""
        return f"display {self.id}"

    def fit(self, text: str) -> str:
        """Check ``text`` fits the board and pad it to the board's width. Raises :class:`DisplayError`."""
        if not isinstance(text, str):
            raise DisplayError(f"{self.describe()}: text must be a string, not {type(text).__name__}")
        if any(unicodedata.category(c).startswith("C") for c in text):
            raise DisplayError(f"{self.describe()}: text {text!r} contains control characters")
        if len(text) > self.width:
            raise DisplayError(
                f"{self.describe()}: text {text!r} has {len(text)} characters but the board has only {self.width}"
            )
        return text.rjust(self.width) if self.align == "right" else text.ljust(self.width)

    def show(self, text: str) -> None:
        """Show ``text`` and wait until the board confirms it. Raises :class:`DisplayError`."""
        fitted = self.fit(text)
        try:
            warning = self._write(fitted)
        except DisplayError as e:
            self.set_health(e.state, str(e))
            raise
        self._last_shown = text
        self.set_health(*(warning or (DeviceState.ok, "")))

    def clear(self) -> None:
        """Blank the board."""
        self.show("")

    def poll(self) -> DeviceHealth:
        """Ask the board whether it is alive. Never raises."""
        try:
            state, detail = self._probe()
        except DisplayError as e:
            state, detail = e.state, str(e)
        except Exception as e:  # noqa: BLE001 - poll must never raise
            log.exception("%s: unexpected error while polling", self.describe())
            state, detail = DeviceState.failed, f"{self.describe()}: unexpected error: {e}"
        self.set_health(state, detail)
        return self.health()

    # ------------------------------------------------------------------ hooks
    def _write(self, text: str) -> tuple[DeviceState, str] | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _probe(self) -> tuple[DeviceState, str]:  # pragma: no cover - abstract
        raise NotImplementedError
