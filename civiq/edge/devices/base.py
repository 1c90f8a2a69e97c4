"""What every device driver has in common: an id, a kind and a health the agent can read.

Drivers never touch MQTT. The agent polls :meth:`Device.poll` (cheap, may talk to the hardware) and reads
:meth:`Device.health`; a change of state becomes a ``device.fault`` / ``device.recovered`` event.
"""

from __future__ import annotations

import threading

from civiq.contract import DeviceHealth, DeviceInfo, DeviceState


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
