"""The edge agent: the composition root that wires the queue engine, the devices and the MQTT link.

    agent = EdgeAgent(load_config("center.yaml"))
    agent.run_forever()          # until SIGTERM / Ctrl-C

The work is done by small collaborators, each testable without a broker (tests/edge/test_<module>.py):

- :class:`~civiq.edge.device_watch.DeviceWatch`: device health, fault/recovery events, the health report,
  the disk-full fault;
- :class:`~civiq.edge.ticket_desk.TicketDesk`: a dispenser press -> a ticket -> the printer (and its QR),
  the dispenser's fault LED, the QR boards;
- :class:`~civiq.edge.counter_router.CounterRouter`: keypad / call pad / API / gateway counter operations
  -> the engine -> the counter's displays, pads and the hall speaker;
- :class:`~civiq.edge.rating.RatingDesk` (ratings), :class:`~civiq.edge.hall.HallFeed` (hall pages),
  :class:`~civiq.edge.link.EdgeLink` (MQTT).

The agent builds them, routes the gateway's commands to them, and runs the scheduler loop: device polls,
queue snapshots, health reports, QR board cycling, checkpoints and the systemd watchdog.

Threads: gpiozero and the serial call pads call in from their own threads; every operation on the queue is
atomic inside :class:`QueueEngine`; device output goes through one :class:`Worker` per bus so a dead printer
never blocks a call; the MQTT link runs paho's thread plus its outbox pump.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from civiq import __version__
from civiq.clock import Clock, SystemClock
from civiq.contract import (
    CmdResult,
    Command,
    CounterCmd,
    DeviceHealth,
    DisplayCmd,
    Event,
    Health,
    PolicyCmd,
    ServiceInfo,
    TestPrintCmd,
)
from civiq.edge.config import CenterConfig, config_hash
from civiq.edge.counter_router import CounterRouter, WrongCode
from civiq.edge.device_watch import DeviceWatch
from civiq.edge.hardware import Hardware, build_hardware
from civiq.edge.queue.engine import QueueEngine, ServiceDef
from civiq.edge.queue.profiles import PriorityOrder
from civiq.edge.queue.store import EdgeStore, StoreFull
from civiq.edge.ticket_desk import TicketDesk
from civiq.sdnotify import Notifier, watchdog_interval_s

__all__ = ["EdgeAgent", "WrongCode"]

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 15.0
SNAPSHOT_INTERVAL_S = 30.0
SNAPSHOT_MIN_GAP_S = 1.0
POLL_INTERVAL_S = 3.0
CHECKPOINT_INTERVAL_S = 300.0  # queue state saved for a fast restart (and on every clean stop)

class EdgeAgent:
    """One center's agent. ``pin_factory`` / ``resolve_port`` / ``speaker_output``: the hardware seams (the
    simulator passes its emulators); ``clock``, ``state_dir`` and ``notifier`` are injected for tests."""

    def __init__(self, cfg: CenterConfig, *, clock: Clock | None = None, pin_factory: object | None = None,
                 resolve_port: Callable[[str], str] = lambda p: p, state_dir: str | Path | None = None,
                 notifier: Notifier | None = None, speaker_output: object | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.tz = ZoneInfo(cfg.center.timezone)
        self.state_dir = Path(state_dir or cfg.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.notifier = notifier or Notifier()
        self.store = EdgeStore(self.state_dir / "edge.db")
        self.services = {s.prefix: ServiceDef(prefix=s.prefix, name_vi=s.name_vi, name_en=s.name_en,
                                              portal_url=s.portal_url or "") for s in cfg.services}
        self.engine = self._build_engine()
        self.hw: Hardware = build_hardware(cfg, clock=self.clock, pin_factory=pin_factory,
                                           resolve_port=resolve_port, on_press=self.on_dispenser_press,
                                           on_key=self.on_key, state_dir=self.state_dir,
                                           on_rating=self.on_rating_key)
        self.watch = DeviceWatch(self.hw.devices, self.hw.worker_of, clock=self.clock, state_dir=self.state_dir,
                                 log_event=self.engine.device_event,
                                 publish=lambda h: self.link.publish_state("health", h, retain=False),
                                 outbox_stats=lambda: self.link.pending_stats())
        self.desk = TicketDesk(cfg, self.engine, self.hw, self.watch, clock=self.clock)
        self.rating = self._build_rating()
        self.announcer = self._build_announcer(speaker_output)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.router = CounterRouter(cfg, self.engine, self.hw, self.watch, clock=self.clock,
                                    issue=self.desk.press, announcer=self.announcer, wake=self._wake.set)
        self.link = self._build_link()
        self._dirty = threading.Event()
        self.hung = False  # tests set this to simulate a hung main loop (the watchdog must stop)
        self._thread: threading.Thread | None = None
        self.engine.subscribe(self._on_engine_event)
        self.engine.subscribe(self.router.on_event)
        if self.rating is not None:
            self.engine.subscribe(self.rating.on_event)
            self.rating.listen(self._on_rating_window)
        from civiq.edge.hall import HallFeed

        self.hall = HallFeed(cfg, self.engine, announcer=self.announcer, store=self.store,
                             printer_status=self.desk.printer_status)  # the hall TV and kiosk pages

    # ------------------------------------------------------------------------------------ wiring
    def _build_engine(self) -> QueueEngine:
        cfg = self.cfg
        t0 = time.monotonic()
        e = QueueEngine(self.store, self.clock, self.services, {c.id: c.profile for c in cfg.counters},
                        tz=cfg.center.timezone, max_recalls=cfg.queue.max_recalls,
                        estimate_window_min=cfg.queue.estimate_window_min, on_replay=self._replaying,
                        priority=PriorityOrder(cfg.priority.rule, cfg.priority.max_in_row,
                                               cfg.priority.boost_minutes),
                        priority_classes=tuple(cfg.priority.enabled()),
                        recall_cooldown_s=cfg.queue.recall_cooldown_s, clerks=tuple(cfg.clerks),
                        counter_clerks={c.id: c.clerks for c in cfg.counters if c.clerks is not None})
        log.info("queue state rebuilt in %.2f s: %d events replayed%s", time.monotonic() - t0, e.replayed,
                 f" after the checkpoint at seq {e.restored_from}" if e.restored_from is not None else "")
        return e

    def _build_link(self):  # noqa: ANN202 - EdgeLink
        """The MQTT link (civiq/edge/link): the birth names the center's services, counters, clerks, scale."""
        from civiq.edge.link import EdgeLink

        cfg, m = self.cfg, self.cfg.mqtt
        return EdgeLink(self.store, center=cfg.center.id, node=cfg.node.id, host=m.host, port=m.port,
                        clock=self.clock, keepalive=m.keepalive, username=m.username,
                        password=m.password(), tls=m.tls, ca_file=m.ca_file, version=__version__,
                        config_hash=config_hash(cfg),
                        devices=[d.info().model_copy(update={"counter": self.hw.counter_of.get(d.id)})
                                 for d in self.hw.devices.values()],
                        center_name=cfg.center.name,
                        services={p: ServiceInfo(name_vi=s.name_vi, name_en=s.name_en)
                                  for p, s in self.services.items()},
                        counters={c.id: c.name for c in cfg.counters},
                        priority_classes={c.id: ServiceInfo(name_vi=c.name_vi, name_en=c.name_en)
                                          for c in cfg.priority.classes},
                        clerks={cid: c.name for cid, c in cfg.clerks.items()},
                        rating_scale=cfg.rating.scale if cfg.rating is not None else None,
                        rating_reasons={k: ServiceInfo(name_vi=t.vi, name_en=t.en)
                                        for k, t in (cfg.rating.reasons.items() if cfg.rating else ())},
                        counter_skills=cfg.counter_skills(), counter_profiles=cfg.counter_profiles(),
                        on_command=self.handle_command, health_source=self.health)

    def _build_announcer(self, output: object | None):  # noqa: ANN202 - Announcer | None
        """The hall speaker (civiq/edge/voice), a device like the others: in health, polled, closed."""
        if self.cfg.speaker is None:
            return None
        from civiq.edge.voice.announcer import announcer_from_config
        from civiq.edge.worker import Worker

        ann = announcer_from_config(self.cfg, self.state_dir, output=output, on_health=self.watch.check)
        self.hw.devices[ann.id] = ann
        self.hw.workers[f"speaker-{ann.id}"] = self.hw.worker_of[ann.id] = Worker(f"speaker-{ann.id}")
        return ann

    def _build_rating(self):  # noqa: ANN202 - RatingDesk | None
        """The rating windows of the counters (civiq/edge/rating.py), fed by the rating pads and pages."""
        if self.cfg.rating is None:
            return None
        from civiq.edge.rating import RatingDesk, RatingDevice

        devices = {p.id: RatingDevice(p.id, p.counter, p.model if p.model != "serial-ratingpad" else "serial",
                                      p.has_reasons) for p in self.hw.ratingpads.values()}
        desk = RatingDesk(self.cfg.rating, clock=self.clock, commit=self._commit_rating, devices=devices)
        for p in self.hw.ratingpads.values():
            p.note = lambda pid=p.id: desk.status_note(pid)
        return desk

    def _commit_rating(self, **kw: object):  # noqa: ANN202 - Event
        try:
            return self.engine.rate(**kw)  # type: ignore[arg-type]
        except StoreFull as e:
            self.watch.store_full(e)
            raise

    def _on_rating_window(self, counter: str, view: dict) -> None:
        """A counter's rating window changed: light (or darken) its pads' keys; the page follows by itself."""
        for pad in self.hw.ratingpads.values():
            if getattr(pad, "counter", None) != counter:
                continue
            worker = self.hw.worker_of.get(pad.id)

            def job(pad: Any = pad, state: str = view["state"]) -> None:
                try:
                    pad.indicate(state)
                except Exception as e:  # noqa: BLE001 - reported through the pad's health at the next poll
                    log.warning("%s: cannot light the keys for %s: %s", pad.id, state, e)

            if worker is not None and pad.model == "serial-ratingpad":
                worker.submit(job, key=f"lamp-{pad.id}")
            else:
                job()

    def _on_engine_event(self, event: Event) -> None:
        if self.watch.store_fault is not None:
            self.watch.store_recovered()  # an event was saved: the disk has room again
        self.link.notify()
        self._dirty.set()

    def _replaying(self, n: int) -> None:
        """A long replay (no usable checkpoint): keep systemd from killing the start-up as hung."""
        self.notifier.extend_timeout(30)
        self.notifier.status(f"rebuilding the queue state: {n} events replayed")

    def checkpoint(self) -> None:
        """Save the queue state (the next start replays only what follows); a failure only logs."""
        try:
            self.engine.checkpoint()
        except Exception as e:  # noqa: BLE001 - e.g. disk full: the older checkpoint stays valid
            log.warning("queue state checkpoint not saved: %s", e)

    # ------------------------------------------------------------------------------------ inputs
    # The agent's own API (the local HTTP API, the kiosk, the CLI and the tests use it): each is one
    # collaborator's method.
    def on_dispenser_press(self, service: str, priority: str | None = None, by: str = "dispenser"):  # noqa: ANN201
        """A citizen pressed a service button: :meth:`TicketDesk.press`."""
        return self.desk.press(service, priority, by)

    def on_key(self, counter: str, action: str, keypad: str | None = None) -> None:
        """A keypad key: :meth:`CounterRouter.on_key`."""
        self.router.on_key(counter, action, keypad)

    def on_rating_key(self, pad: str, kind: str, value: int | str) -> None:
        """A rating pad's key: a score or a reason (the desk decides whether it counts)."""
        if self.rating is None:
            return
        if kind == "score":
            self.rating.press(pad, int(value))
        else:
            self.rating.reason(pad, str(value))

    def counter_action(self, counter: str, action: str, to_service: str | None = None,
                       to_counter: str | None = None, ticket: str | None = None, by: str = "api",
                       clerk: str | None = None, dossier: str | None = None) -> object:
        """One counter action: :meth:`CounterRouter.action`."""
        return self.router.action(counter, action, to_service, to_counter, ticket=ticket, by=by, clerk=clerk,
                                  dossier=dossier)

    def sign_in_code(self, counter: str, code: str | None, by: str) -> object:
        """Sign in by a clerk's code: :meth:`CounterRouter.sign_in_code` (a wrong one is :class:`WrongCode`)."""
        return self.router.sign_in_code(counter, code, by)

    def handle_command(self, name: str, cmd: Command) -> CmdResult:
        """Commands from the gateway (the link validated them against the contract already)."""
        try:
            if isinstance(cmd, PolicyCmd):
                applied = self.engine.apply_policy(cmd.policy)
                return CmdResult(id=cmd.id, cmd=name, ok=True, data={"applied": applied,
                                                                     "version": cmd.policy.version})
            if isinstance(cmd, DisplayCmd):
                if cmd.device and cmd.device not in self.hw.displays:
                    return CmdResult(id=cmd.id, cmd=name, ok=False, error=f"no display {cmd.device!r}")
                shown = self.router.message(cmd.text, cmd.device)
                return CmdResult(id=cmd.id, cmd=name, ok=True, data={"displays": shown})
            if isinstance(cmd, TestPrintCmd):
                self.desk.test_print(cmd.printer)
                return CmdResult(id=cmd.id, cmd=name, ok=True)
            if isinstance(cmd, CounterCmd):
                result = self.router.action(cmd.counter, cmd.action, cmd.to_service, cmd.to_counter,
                                            ticket=cmd.ticket, by=f"gateway:{cmd.id}", clerk=cmd.clerk,
                                            dossier=cmd.dossier)
                data: dict[str, object] = {"ticket": getattr(result, "label", None)}
                if cmd.action in ("sign_in", "sign_out"):
                    data["clerk"] = getattr(result, "clerk", None)
                return CmdResult(id=cmd.id, cmd=name, ok=True, data=data)
        except KeyError as e:
            return CmdResult(id=cmd.id, cmd=name, ok=False, error=f"unknown device or counter {e}")
        except Exception as e:  # noqa: BLE001 - any failure is reported back, never raised into the link
            return CmdResult(id=cmd.id, cmd=name, ok=False, error=str(e))
        return CmdResult(id=cmd.id, cmd=name, ok=False, error=f"command {name!r} not handled by this agent")

    # ------------------------------------------------------------------------------------ outputs
    def ticket_print(self, ticket: object):  # noqa: ANN201 - TicketPrint
        """What the printer prints for ``ticket``: :meth:`TicketDesk.ticket_print`."""
        return self.desk.ticket_print(ticket)

    def test_print(self, printer_id: str | None = None) -> None:
        self.desk.test_print(printer_id)

    def display_test(self) -> dict[str, str]:
        """Show ``8888`` then the display's own id on every display; returns what went wrong per display."""
        return self.router.display_test()

    def say_test(self, text: str | None = None):  # noqa: ANN201 - Announcement
        """The chime and a sample call (or ``text``) on the speaker, now; returns what was said."""
        if self.announcer is None:
            raise KeyError("no speaker configured (add a speaker: section)")
        counter = self.cfg.counters[0].id
        service = self.cfg.services[0].prefix
        return self.announcer.say(f"{service}015", counter, text=text)

    # ------------------------------------------------------------------------------------ health
    def poll_devices(self) -> list[DeviceHealth]:
        return self.watch.poll_all()

    def health(self) -> Health:
        return self.watch.health()

    def _publish_health(self) -> None:
        self.watch.publish()

    def _publish_snapshot(self) -> None:
        self.link.publish_state("queue", self.engine.snapshot(), retain=True)

    @property
    def store_fault(self) -> str | None:
        """Set while the disk is full (docs/reliability.md, "Disk full")."""
        return self.watch.store_fault

    @property
    def refused_presses(self) -> int:
        return self.desk.refused_presses

    @property
    def wrong_codes(self) -> int:
        return self.router.wrong_codes

    @property
    def flash_s(self) -> float:
        return self.router.flash_s

    @flash_s.setter
    def flash_s(self, value: float) -> None:
        self.router.flash_s = value

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.hw.start()
        self.link.start()
        self.watch.start()
        self.poll_devices()
        self._thread = threading.Thread(target=self._loop, name="agent-loop", daemon=True)
        self._thread.start()
        self.notifier.ready(f"center {self.cfg.center.id} node {self.cfg.node.id}")

    def _loop(self) -> None:
        next_health = next_snapshot = next_poll = next_qr = 0.0
        # after a long replay, save at once: a crash loop must not pay for it again and again
        next_checkpoint = time.monotonic() + (0 if self.engine.replayed >= 50_000 else CHECKPOINT_INTERVAL_S)
        checkpointed = self.engine.restored_from if not self.engine.replayed else -1
        last_snapshot = -1e9
        qr_index = 0
        qr_cycle = min((q.cycle_seconds for q in self.cfg.qrboards), default=8)
        wd = watchdog_interval_s()
        while not self._stop.is_set():
            while self.hung and not self._stop.is_set():
                time.sleep(0.05)
            now = time.monotonic()
            try:
                self.router.tick()
                if self.rating is not None:
                    self.rating.tick()
                if now >= next_poll:
                    self.poll_devices()
                    next_poll = now + POLL_INTERVAL_S
                if self._dirty.is_set() and now - last_snapshot >= SNAPSHOT_MIN_GAP_S or now >= next_snapshot:
                    self._dirty.clear()
                    self._publish_snapshot()
                    last_snapshot = now
                    next_snapshot = now + SNAPSHOT_INTERVAL_S
                if now >= next_health:
                    self.watch.refresh_host()
                    self.watch.publish()
                    next_health = now + HEALTH_INTERVAL_S
                if now >= next_qr:
                    self.desk.show_qr(qr_index)
                    qr_index += 1
                    next_qr = now + qr_cycle
                if now >= next_checkpoint:
                    next_checkpoint = now + CHECKPOINT_INTERVAL_S
                    if self.engine.last_seq != checkpointed:
                        checkpointed = self.engine.last_seq
                        self.checkpoint()
            except Exception:  # noqa: BLE001 - the loop must survive anything
                log.exception("agent loop")
            self.notifier.watchdog()
            self._wake.wait(min(0.2, wd or 0.2))
            self._wake.clear()

    def stop(self) -> None:
        """Stop cleanly: the loop, a checkpoint, the link (retained clean death), the hardware, the store. Each
        step's time goes to the log, so a stop that outlasts systemd's TimeoutStopSec says where it waited."""
        t0 = time.monotonic()
        steps: list[str] = []

        def step(name: str) -> None:
            steps.append(f"{name} {time.monotonic() - t0:.1f} s")

        self.notifier.stopping()
        self.hall.close()  # ends the hall pages' live streams: they reconnect to the next agent
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(5)
        step("loop")
        self.checkpoint()
        step("checkpoint")
        try:
            self.link.stop(clean=True)
            step("link")
        finally:
            self.hw.close()
            step("hardware")
            self.store.close()
            log.info("agent stopped (%s)", ", ".join(steps))

    def run_forever(self) -> None:
        done = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if os.environ.get("CIVIQ_TEST_HOOKS") == "1":
            # Test hook, off unless the variable is set: SIGUSR2 hangs the scheduler loop, so a test of a
            # real process can see the systemd watchdog pings stop (tests/deploy/test_watchdog.py).
            signal.signal(signal.SIGUSR2, lambda signum, frame: setattr(self, "hung", True))
        self.start()
        log.info("agent running: center %s node %s", self.cfg.center.id, self.cfg.node.id)
        done.wait()
        self.stop()
