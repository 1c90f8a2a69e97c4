"""What every device driver has in common: an id, a kind and a health the agent can read.

Drivers never touch MQTT. The agent polls :meth:`Device.poll` (cheap, may talk to the hardware) and reads
:meth:`Device.health`; a change of state becomes a ``device.fault`` / ``device.recovered`` event.
"""

from __future__ import annotations

import logging
import threading

from civiq.contract import DeviceHealth, DeviceInfo, DeviceState

log = logging.getLogger(__name__)


class Device:
    kind = "device"
    model = ""

    def __init__(self, device_id: str) -> None:
        self.id = device_id
        self._state = DeviceState.ok
        self._detail = ""
        self._lock = threading.RLock()

    def info(self) -> DeviceInfo:
        return DeviceInfo(id=self.id, kind=self.kind, model=self.model)

    def health(self) -> DeviceHealth:
        with self._lock:
            return DeviceHealth(id=self.id, kind=self.kind, state=self._state, detail=self._detail)

    def set_health(self, state: DeviceState, detail: str = "") -> None:
        with self._lock:
            self._state, self._detail = state, detail

    def poll(self) -> DeviceHealth:
        """Check the hardware (status query, link check) and return the health. Never raises."""
        return self.health()

    def close(self) -> None:
        pass


class PolledDevice(Device):
    """A device the agent polls on a thread of its own every ``poll_interval`` seconds (serial call pads,
    rating pads); :meth:`wake` polls at once. Subclasses implement :meth:`poll_once` and set
    ``thread_prefix``."""

    thread_prefix = "poll"
    poll_interval: float

    def __init__(self, device_id: str) -> None:
        super().__init__(device_id)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> object:
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.kind} {self.id}"

    def start(self) -> PolledDevice:
        if self._thread and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self.thread_prefix}-{self.id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(5)
        self._thread = None

    def wake(self) -> None:
        """Poll now rather than after the current pause."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the poll thread must survive anything
                log.exception("%s: unexpected error while polling", self.describe())
            self._wake.wait(self.poll_interval)
            self._wake.clear()
