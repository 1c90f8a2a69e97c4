"""The edge agent's collaborators wired by hand, without the agent and without a broker: emulated hardware
(MockFactory pins, pty emulators speaking the real protocols), the real queue engine on SQLite, a fake clock
for the engine and the collaborators (the devices keep real time for their debounce).

    with agent_parts(tmp_path) as p:
        p.desk.press("A")
        p.sim.emulator_of("p1").wait_tickets(1)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from civiq.clock import FakeClock, SystemClock
from civiq.contract import Event, Health
from civiq.edge.config import CenterConfig, load_config
from civiq.edge.counter_router import CounterRouter
from civiq.edge.device_watch import DeviceWatch
from civiq.edge.hardware import build_hardware
from civiq.edge.queue import EdgeStore, QueueEngine, ServiceDef
from civiq.edge.queue.profiles import PriorityOrder
from civiq.edge.sim.example import sim_center_yaml
from civiq.edge.sim.hardware import SimHardware
from civiq.edge.ticket_desk import TicketDesk

# counter c2's board is a text (ASCII frame) board and it has a serial call pad with an LCD (address 11)
PAD_AND_TEXT_BOARD = [
    ("protocol: modbus, port: /dev/civiq-rs485, baudrate: 9600, address: 2, digits: 4",
     "protocol: ascii, port: /dev/civiq-rs485, baudrate: 9600, address: 2, width: 8"),
    ("protocol: modbus, port: /dev/civiq-rs485, baudrate: 9600, address: 1, digits: 4",
     "protocol: modbus, port: /dev/civiq-bus2, baudrate: 9600, address: 1, digits: 4"),
    ("keypads:\n", "keypads:\n  - {id: k3, counter: c2, kind: serial, port: /dev/civiq-rs485, address: 11}\n"),
]
CLERKS = """clerks:
  lan: {name: "Nguyễn Thị Lan", code: "4821"}
  minh: {name: "Trần Văn Minh", code: "05093", short_name: "A.MINH"}
"""


@dataclass
class Parts:
    cfg: CenterConfig
    clock: FakeClock
    sim: SimHardware
    hw: Any
    engine: QueueEngine
    watch: DeviceWatch
    desk: TicketDesk
    router: CounterRouter
    published: list[Health] = field(default_factory=list)  # health reports the watch sent
    events: list[Event] = field(default_factory=list)  # every queue event, in order
    issued: list[tuple] = field(default_factory=list)  # (service, priority, by) of the router's issue: keys

    def of(self, type_: str) -> list[dict]:
        return [e.data for e in self.events if str(e.type) == type_]


def center_config(tmp_path: Path, extra: str = "", edits: list[tuple[str, str]] | None = None) -> CenterConfig:
    text = sim_center_yaml(1, center="xa-parts", state_dir=tmp_path / "state")  # port 1: no broker, none used
    for old, new in edits or []:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "center.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return load_config(path)


@contextmanager
def agent_parts(tmp_path: Path, extra: str = "", edits: list[tuple[str, str]] | None = None) -> Iterator[Parts]:
    cfg = center_config(tmp_path, extra, edits)
    clock = FakeClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))  # 08:00 in Ho Chi Minh City
    sim = SimHardware(cfg, tmp_path / "sim").start()
    parts: dict[str, Any] = {}
    hw = build_hardware(cfg, clock=SystemClock(), pin_factory=sim.pin_factory, resolve_port=sim.resolve_port,
                        on_press=lambda s, priority=None: parts["desk"].press(s, priority),
                        on_key=lambda c, a, k=None: parts["router"].on_key(c, a, k), state_dir=tmp_path / "state")
    services = {s.prefix: ServiceDef(s.prefix, s.name_vi, s.name_en, s.portal_url or "") for s in cfg.services}
    engine = QueueEngine(EdgeStore(tmp_path / "edge.db"), clock, services, {c.id: c.profile for c in cfg.counters},
                         tz=cfg.center.timezone, priority=PriorityOrder(cfg.priority.rule, cfg.priority.max_in_row),
                         priority_classes=tuple(cfg.priority.enabled()),
                         recall_cooldown_s=cfg.queue.recall_cooldown_s, clerks=tuple(cfg.clerks))
    published: list[Health] = []
    watch = DeviceWatch(hw.devices, hw.worker_of, clock=clock, state_dir=tmp_path / "state",
                        log_event=engine.device_event, publish=published.append)
    desk = parts["desk"] = TicketDesk(cfg, engine, hw, watch, clock=clock)
    p = Parts(cfg, clock, sim, hw, engine, watch, desk, None, published)  # type: ignore[arg-type]
    router = parts["router"] = CounterRouter(cfg, engine, hw, watch, clock=clock,
                                             issue=lambda s, pr, by: p.issued.append((s, pr, by)))
    p.router = router
    engine.subscribe(p.events.append)
    engine.subscribe(router.on_event)
    try:
        hw.start()
        watch.start()
        yield p
    finally:
        try:
            hw.close()
            engine.store.close()
        finally:
            sim.stop()
