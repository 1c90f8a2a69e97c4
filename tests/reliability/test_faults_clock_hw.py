"""Clock jumps and hardware faults, through the whole agent (simulated hardware, real broker).

* The wall clock jumps back, forward over midnight, and a Pi without RTC boots in 1970: numbers go on, the
  daily reset happens once, no (day, ticket) is issued twice, suspect timestamps are flagged.
* A printer unplugged in the middle of a ticket, a shorted display bus, a stuck dispenser button: each is
  reported (a ``device.fault`` event on the broker) and the rest of the center keeps working.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from civiq.clock import FakeClock
from civiq.contract import ClockQuality, DeviceState, Event, EventType, parse_payload
from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from tests.conftest import wait_for
from tests.e2e.centers import write_center

PREFIX = "civiq/v1/test-xa/pi-1"


def events(rec) -> list[Event]:  # noqa: ANN001
    by_seq = {}
    for p in rec.on("/event"):
        e = parse_payload(Event, p)
        by_seq.setdefault(e.seq, e)
    return [by_seq[k] for k in sorted(by_seq)]


def press(agent, clock: FakeClock, service: str) -> None:  # noqa: ANN001
    clock.advance(1)  # the dispenser's debounce runs on the injected clock
    before = agent.store.last_seq()
    agent.sim.press_button(service)
    wait_for(lambda: agent.store.last_seq() > before, what=f"a {service} press logged")


def issued(agent) -> list[Event]:  # noqa: ANN001
    return [e for e in agent.store.events() if e.type == EventType.ticket_issued]


def test_clock_jumps_and_a_1970_boot(tmp_path: Path, broker, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"{PREFIX}/event", persistent=True)
    config = write_center(tmp_path, broker.port, http_port=free_port())
    clock = FakeClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))  # 08:00 in Ho Chi Minh City
    agent = make_agent(load_config(config, env={}), simulate=True, clock=clock)
    agent.start()
    try:
        press(agent, clock, "A")
        press(agent, clock, "A")
        clock.set(datetime(2026, 1, 4, 23, 0, tzinfo=UTC))  # NTP steps the clock 2 h back
        press(agent, clock, "A")
        ev = issued(agent)
        assert [(e.data["day"], e.data["ticket"]) for e in ev] == [("2026-01-05", "A001"), ("2026-01-05", "A002"),
                                                                   ("2026-01-05", "A003")]
        assert ev[-1].clock == ClockQuality.suspect and ev[0].clock != ClockQuality.suspect
        jumps = [e for e in agent.store.events() if e.type == EventType.clock_jump]
        assert len(jumps) == 1 and jumps[0].seq == ev[-1].seq - 1, "no clock.jump event before the suspect one"
        clock.set(datetime(2026, 1, 5, 23, 30, tzinfo=UTC))  # forward, past local midnight (06:30 on the 6th)
        press(agent, clock, "A")
        press(agent, clock, "B")
        assert [(e.data["day"], e.data["ticket"]) for e in issued(agent)[-2:]] == [("2026-01-06", "A001"),
                                                                                  ("2026-01-06", "B001")]
        assert issued(agent)[-1].clock != ClockQuality.suspect
    finally:
        agent.stop()
        agent.sim.stop()

    boot = FakeClock(datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC))  # a Pi without RTC, before NTP
    agent = make_agent(load_config(config, env={}), simulate=True, clock=boot)
    agent.start()
    try:
        press(agent, boot, "A")
        last = issued(agent)[-1]
        assert (last.data["day"], last.data["ticket"]) == ("2026-01-06", "A002"), "numbering restarted in 1970"
        assert last.clock == ClockQuality.suspect
        labels = [(e.data["day"], e.data["ticket"]) for e in issued(agent)]
        assert len(labels) == len(set(labels)), labels
        seqs = [e.seq for e in agent.store.events()]
        assert seqs == list(range(1, len(seqs) + 1))
        wait_for(lambda: [e.seq for e in events(rec)] == seqs, what="every event on the broker, in order")
        assert events(rec)[-1].clock == ClockQuality.suspect  # the gateway sees the flag
    finally:
        agent.stop()
        agent.sim.stop()


def faults(rec, device: str) -> list[Event]:  # noqa: ANN001
    return [e for e in events(rec) if e.type == EventType.device_fault and e.data.get("device") == device]


def test_printer_unplugged_mid_ticket(tmp_path: Path, broker, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"{PREFIX}/#")
    agent = make_agent(load_config(write_center(tmp_path, broker.port, http_port=free_port()), env={}),
                       simulate=True)
    agent.start()
    try:
        emu = agent.sim.emulator_of("p1")
        agent.sim.press_button("A")
        emu.wait_tickets(1, timeout=10)
        # From here the line moves at the configured 19200 baud (~1.9 KB/s): a stored-image ticket is ~300
        # bytes, so it is still on the wire when the printer stops reading after its first 64 bytes.
        emu.baudrate = 19200
        base = len(emu.received)
        grabbed, release = threading.Event(), threading.Event()

        def cut_mid_job() -> None:  # stop the printer reading once the job has started, then pull the cable
            deadline = time.monotonic() + 10
            while len(emu.received) < base + 64 and time.monotonic() < deadline:
                time.sleep(0.0005)
            with emu.lock:
                grabbed.set()
                release.wait(10)

        t = threading.Thread(target=cut_mid_job)
        t.start()
        agent.sim.press_button("B")
        assert grabbed.wait(10)
        cut_at = len(emu.received)
        threading.Thread(target=lambda: (time.sleep(0.2), release.set()), daemon=True).start()
        agent.sim.unplug("p1")  # waits for the emulator thread, which the lock holder lets go in 0.2 s
        t.join()
        wait_for(lambda: faults(rec, "p1"), timeout=15, what="the printer fault on the broker")
        assert agent.hw.printers["p1"].health().state == DeviceState.offline
        assert len(emu.tickets) == 1, "the interrupted ticket was cut as if complete"
        assert cut_at > base, "the job had not started"
        agent.sim.press_key("k1", "next")  # the rest works: the queue, the displays
        wait_for(lambda: agent.sim.shown("d1") == "A001", what="the call shown")
        agent.sim.plug("p1")
        wait_for(lambda: agent.hw.printers["p1"].health().state == DeviceState.ok, timeout=15)
        agent.sim.press_button("A")
        wait_for(lambda: any("A002" in tk.all_text() for tk in agent.sim.printed("p1")), what="printing again")
    finally:
        agent.stop()
        agent.sim.stop()


def test_display_bus_shorted_and_a_stuck_button(tmp_path: Path, broker, recorder) -> None:  # noqa: ANN001
    rec = recorder(f"{PREFIX}/#")
    clock = FakeClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))
    agent = make_agent(load_config(write_center(tmp_path, broker.port, http_port=free_port()), env={}),
                       simulate=True, clock=clock)
    agent.start()
    try:
        bus = agent.sim.emulators[agent.cfg.displays[0].port]
        bus.muted = True  # d1 and d2 share the RS-485 bus: a short silences both
        press(agent, clock, "A")
        press(agent, clock, "B")
        agent.sim.press_key("k1", "next")
        agent.sim.press_key("k2", "next")
        try:
            wait_for(lambda: faults(rec, "d1") and faults(rec, "d2"), timeout=20, what="both displays reported")
        except AssertionError:
            raise AssertionError(f"{agent.hw.displays['d1'].health()} {agent.hw.displays['d2'].health()} "
                                 f"{[(e.type, e.data) for e in events(rec)]}") from None
        assert agent.engine.snapshot().counters["c1"].ticket == "A001"  # calls go on without displays
        wait_for(lambda: len(agent.sim.printed("p1")) == 2, what="tickets still printed")

        pin = agent.sim._pin(agent.cfg.dispenser.buttons["A"])  # noqa: SLF001 - the button's mock pin
        clock.advance(1)
        n_issued = agent.engine.snapshot().services["A"].issued_today
        pin.drive_low()  # button A jams down: one ticket for the press, then nothing more
        clock.advance(31)
        wait_for(lambda: faults(rec, "dispenser"), timeout=15, what="the stuck button reported")
        assert "stuck" in faults(rec, "dispenser")[-1].data["detail"]
        assert agent.engine.snapshot().services["A"].issued_today == n_issued + 1, "a jammed button issued more"
        press(agent, clock, "B")  # the other buttons still work
        assert agent.engine.snapshot().services["B"].issued_today == 2
        pin.drive_high()
        bus.muted = False
        clock.advance(1)
        wait_for(lambda: [e for e in events(rec) if e.type == EventType.device_recovered
                          and e.data.get("device") == "dispenser"], timeout=15, what="button released")
    finally:
        agent.stop()
        agent.sim.stop()
