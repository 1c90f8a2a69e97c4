"""The device watch: every device's health, its faults and recoveries as events, the health report.

One of the edge agent's collaborators (:mod:`civiq.edge.agent` wires them); it knows nothing of MQTT: the
agent hands it ``publish`` (the link's health message) and ``outbox_stats``. Device output goes through the
device's :class:`~civiq.edge.worker.Worker` (``submit`` / ``show``) so a dead printer never blocks a call,
and every job ends with a health check, so a fault shows the moment it happens.

    watch = DeviceWatch(hw.devices, hw.worker_of, clock=clock, state_dir=state, log_event=engine.device_event)
    watch.check(printer)            # a changed state: a device_fault / device_recovered event, health published
    watch.health().devices          # every device (and a failed "storage" while the disk is full)

A device that is fine from the start logs nothing; the first state that is not ``ok`` and every later change
is an event. A full disk is a fault of its own (``store_full``): it is reported as a failed ``storage`` device
until the next event is saved (``store_recovered``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from civiq.clock import Clock
from civiq.contract import DeviceHealth, DeviceState, EventType, Health, OutboxHealth
from civiq.edge.hostinfo import clock_offset_s, host_health, ntp_synchronized
from civiq.edge.queue.store import StoreFull

log = logging.getLogger(__name__)

DOWN = (DeviceState.failed, DeviceState.offline)


class DeviceWatch:
    """Health of the devices in ``devices`` (id -> device), their jobs run on ``worker_of[id]``.

    ``log_event(type, data)`` records a device event (the queue engine's ``device_event``); ``publish(health)``
    sends a health report (the agent: the MQTT link); ``on_checked(device, health)`` is told after every check
    (the ticket desk lights the dispenser's fault LED from it); ``on_store(fault)`` when the disk fills or
    frees (``fault`` is the text, or None)."""

    def __init__(self, devices: dict[str, Any], worker_of: dict[str, Any], *, clock: Clock,
                 state_dir: str | Path, log_event: Callable[[EventType, dict], object],
                 publish: Callable[[Health], None] = lambda h: None,
                 outbox_stats: Callable[[], OutboxHealth] = lambda: OutboxHealth(pending=0)) -> None:
        self.devices = devices
        self.worker_of = worker_of
        self.clock = clock
        self.state_dir = Path(state_dir)
        self._log_event = log_event
        self._publish = publish
        self._outbox_stats = outbox_stats
        self.on_checked: list[Callable[[Any, DeviceHealth], None]] = []
        self.on_store: list[Callable[[str | None], None]] = []
        self.last: dict[str, DeviceHealth] = {}  # each device's last state seen
        self.store_fault: str | None = None  # set while the disk is full (docs/reliability.md, "Disk full")
        self.ntp: bool | None = None
        self.clock_offset: float | None = None

    # -------------------------------------------------------------------------------- checks
    def start(self) -> None:
        """Take every device's state as it is now (a device that starts failed is reported at its first check)."""
        self.ntp = ntp_synchronized()
        for dev in self.devices.values():
            self.last.setdefault(dev.id, dev.health())

    def check(self, dev: Any) -> DeviceHealth:
        """The device's health now; a change from the last one is logged as an event and published."""
        h = dev.health()
        prev = self.last.get(dev.id)
        if prev is None or prev.state != h.state or prev.detail != h.detail:
            self.last[dev.id] = h
            if prev is not None or h.state != DeviceState.ok:
                etype = EventType.device_recovered if h.state == DeviceState.ok else EventType.device_fault
                try:
                    self._log_event(etype, {"device": h.id, "kind": h.kind, "state": str(h.state),
                                            "detail": h.detail})
                except StoreFull as e:
                    log.error("disk full: device event for %s not logged", h.id)
                    self.store_full(e)
                self.publish()
        for fn in self.on_checked:
            fn(dev, h)
        return h

    def poll_all(self) -> list[DeviceHealth]:
        """Ask every device for its state on its own worker (a slow bus never blocks the caller); returns the
        states known now."""
        out = []
        for dev in self.devices.values():
            worker = self.worker_of.get(dev.id)

            def job(dev: Any = dev) -> None:
                dev.poll()
                self.check(dev)

            if worker is not None:
                worker.submit(job, key=f"poll-{dev.id}")
            out.append(dev.health())
        return out

    # -------------------------------------------------------------------------------- device jobs
    def submit(self, dev: Any, job: Callable[[], None], key: str | None = None) -> None:
        """Run ``job`` on the device's worker (latest wins per ``key``), then check the device."""

        def run() -> None:
            try:
                job()
            finally:
                self.check(dev)

        self.worker_of[dev.id].submit(run, key=key)

    def show(self, dev: Any, text: str, key: str) -> None:
        """``text`` on a display or a pad's LCD, on its worker; a failure shows in the device's health."""

        def job() -> None:
            try:
                dev.show(text)
            except Exception as e:  # noqa: BLE001 - reported through the device's health
                log.warning("%s: cannot show %r: %s", dev.id, text, e)

        self.submit(dev, job, key=key)

    # -------------------------------------------------------------------------------- the disk
    def store_full(self, e: StoreFull) -> None:
        """The disk is full: a failed "storage" device in every health report (the gateway alerts); the
        listeners refuse tickets and light the dispenser's fault LED."""
        first = self.store_fault is None
        self.store_fault = f"disk full: events cannot be saved, no ticket is issued ({e})"
        for fn in self.on_store:
            fn(self.store_fault)
        if first:
            log.error("%s", self.store_fault)
            self.publish()

    def store_recovered(self) -> None:
        """An event was saved again: the storage fault ends."""
        if self.store_fault is None:
            return
        self.store_fault = None
        log.warning("events can be saved again: tickets are issued again")
        for fn in self.on_store:
            fn(None)
        self.publish()

    # -------------------------------------------------------------------------------- reports
    def refresh_host(self) -> None:
        """Read the clock's sync state again (done before each periodic health report)."""
        self.ntp, self.clock_offset = ntp_synchronized(), clock_offset_s()

    def health(self) -> Health:
        """The health report: the host, every device (with its status note), the outbox."""
        now = self.clock.now()
        host = host_health(self.state_dir, now, clock_offset_s=self.clock_offset, synced=self.ntp)
        devices = []
        for d in self.devices.values():
            h = d.health()
            note = d.status_note() if hasattr(d, "status_note") else ""
            if note:  # counters (e.g. rating presses outside a window): shown, never a fault of their own
                h.detail = f"{h.detail}; {note}" if h.detail else note
            devices.append(h)
        if self.store_fault is not None:
            devices.append(DeviceHealth(id="storage", kind="storage", state=DeviceState.failed,
                                        detail=self.store_fault))
        return Health(ts=now, host=host, devices=devices, outbox=self._outbox_stats())

    def publish(self) -> None:
        """Send the health report now; a failure only logs (the next periodic report tries again)."""
        try:
            self._publish(self.health())
        except Exception:  # noqa: BLE001
            log.exception("health not published")
