"""The edge agent: queue engine + devices + MQTT link, wired together.

    agent = EdgeAgent(load_config("center.yaml"))
    agent.run_forever()          # until SIGTERM / Ctrl-C

Threads: gpiozero and the serial call pads call in from their own threads; every operation on the queue is
atomic inside :class:`QueueEngine`; device output goes through one :class:`Worker` per bus so a dead printer
never blocks a call; the MQTT link runs paho's thread plus its outbox pump; the scheduler loop (this module)
polls device health, publishes snapshots and health, cycles the QR boards and pings the systemd watchdog.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from civiq import __version__
from civiq.clock import Clock, SystemClock
from civiq.contract import (
    CmdResult,
    Command,
    CounterCmd,
    DeviceHealth,
    DeviceState,
    DisplayCmd,
    Event,
    EventType,
    Health,
    PolicyCmd,
    ServiceInfo,
    TestPrintCmd,
)
from civiq.edge.config import CenterConfig, config_hash
from civiq.edge.hardware import Hardware, build_hardware
from civiq.edge.hostinfo import clock_offset_s, host_health, ntp_synchronized
from civiq.edge.queue.engine import QueueEngine, QueueError, RecallCooldown, ServiceDef
from civiq.edge.queue.profiles import PriorityOrder
from civiq.edge.queue.store import EdgeStore, StoreFull
from civiq.sdnotify import Notifier, watchdog_interval_s
from civiq.tickettoken import token_with_key

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 15.0
SNAPSHOT_INTERVAL_S = 30.0
SNAPSHOT_MIN_GAP_S = 1.0
POLL_INTERVAL_S = 3.0
CHECKPOINT_INTERVAL_S = 300.0  # queue state saved for a fast restart (and on every clean stop)

CALL_EVENTS = {EventType.ticket_called, EventType.ticket_recalled}
FLASH_S = 3.0  # a clerk's name after a sign-in, or "Sai mã" after a wrong code, stays this long on the counter
WRONG_CODE_TEXT = "Sai mã"  # shown as "Sai ma" by 7-bit boards and pad LCDs


class WrongCode(QueueError):
    """A sign-in code that belongs to no clerk of this center."""


def _eta_text(eta_s: float | None) -> str:
    if eta_s is None:
        return "Chưa ước tính được / unknown"
    minutes = max(1, round(eta_s / 60))
    return f"~{minutes} phút / min"


class EdgeAgent:
    def __init__(self, cfg: CenterConfig, *, clock: Clock | None = None, pin_factory: object | None = None,
                 resolve_port: Callable[[str], str] = lambda p: p, state_dir: str | Path | None = None,
                 notifier: Notifier | None = None, speaker_output: object | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.tz = ZoneInfo(cfg.center.timezone)
        self.state_dir = Path(state_dir or cfg.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._ticket_key = cfg.center.ticket_key()
        self.notifier = notifier or Notifier()
        self.store = EdgeStore(self.state_dir / "edge.db")
        services = {s.prefix: ServiceDef(prefix=s.prefix, name_vi=s.name_vi, name_en=s.name_en,
                                         portal_url=s.portal_url or "") for s in cfg.services}
        self.services = services
        t0 = time.monotonic()
        self.engine = QueueEngine(self.store, self.clock, services,
                                  {c.id: c.profile for c in cfg.counters}, tz=cfg.center.timezone,
                                  max_recalls=cfg.queue.max_recalls,
                                  estimate_window_min=cfg.queue.estimate_window_min,
                                  on_replay=self._replaying,
                                  priority=PriorityOrder(cfg.priority.rule, cfg.priority.max_in_row,
                                                         cfg.priority.boost_minutes),
                                  priority_classes=tuple(cfg.priority.enabled()),
                                  recall_cooldown_s=cfg.queue.recall_cooldown_s,
                                  clerks=tuple(cfg.clerks),
                                  counter_clerks={c.id: c.clerks for c in cfg.counters if c.clerks is not None})
        e = self.engine
        log.info("queue state rebuilt in %.2f s: %d events replayed%s", time.monotonic() - t0, e.replayed,
                 f" after the checkpoint at seq {e.restored_from}" if e.restored_from is not None else "")
        self.hw: Hardware = build_hardware(cfg, clock=self.clock, pin_factory=pin_factory,
                                           resolve_port=resolve_port, on_press=self.on_dispenser_press,
                                           on_key=self.on_key, state_dir=self.state_dir,
                                           on_rating=self.on_rating_key)
        self.rating = self._build_rating()
        self.announcer = self._build_announcer(speaker_output)
        from civiq.edge.link import EdgeLink

        m = cfg.mqtt
        self.link = EdgeLink(self.store, center=cfg.center.id, node=cfg.node.id, host=m.host, port=m.port,
                             clock=self.clock, keepalive=m.keepalive, username=m.username,
                             password=m.password(), tls=m.tls, ca_file=m.ca_file, version=__version__,
                             config_hash=config_hash(cfg),
                             devices=[d.info() for d in self.hw.devices.values()],
                             center_name=cfg.center.name,
                             services={p: ServiceInfo(name_vi=s.name_vi, name_en=s.name_en)
                                       for p, s in services.items()},
                             counters={c.id: c.name for c in cfg.counters},
                             priority_classes={c.id: ServiceInfo(name_vi=c.name_vi, name_en=c.name_en)
                                               for c in cfg.priority.classes},
                             clerks={cid: c.name for cid, c in cfg.clerks.items()},
                             rating_scale=cfg.rating.scale if cfg.rating is not None else None,
                             rating_reasons={k: ServiceInfo(name_vi=t.vi, name_en=t.en)
                                             for k, t in (cfg.rating.reasons.items() if cfg.rating else ())},
                             on_command=self.handle_command, health_source=self.health)
        self._dirty = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_health: dict[str, DeviceHealth] = {}
        self._message_until: float = 0.0
        self._clerk_of_code = {c.code: cid for cid, c in cfg.clerks.items() if c.code}
        self.flash_s = FLASH_S
        self.wrong_codes = 0  # sign-in codes typed on a keypad that match no clerk (no event: counted only)
        self._flash_lock = threading.Lock()
        self._flash_until: dict[str, float] = {}  # counter -> monotonic time its flashed text ends
        self.refused_presses = 0
        self.store_fault: str | None = None  # set while the disk is full (docs/reliability.md, "Disk full")
        self._ntp: bool | None = None
        self._clock_offset: float | None = None
        self.hung = False  # tests set this to simulate a hung main loop (the watchdog must stop)
        self._thread: threading.Thread | None = None
        self.engine.subscribe(self._on_engine_event)
        if self.rating is not None:
            self.engine.subscribe(self.rating.on_event)
            self.rating.listen(self._on_rating_window)
        from civiq.edge.hall import HallFeed, printer_status_of

        self.hall = HallFeed(cfg, self.engine, announcer=self.announcer, store=self.store,
                             printer_status=printer_status_of(self))  # the hall TV and kiosk pages

    def _build_announcer(self, output: object | None):  # noqa: ANN202 - Announcer | None
        """The hall speaker (civiq/edge/voice), a device like the others: in health, polled, closed."""
        if self.cfg.speaker is None:
            return None
        from civiq.edge.voice.announcer import announcer_from_config
        from civiq.edge.worker import Worker

        ann = announcer_from_config(self.cfg, self.state_dir, output=output, on_health=self._check_device)
        self.hw.devices[ann.id] = ann
        self.hw.workers[f"speaker-{ann.id}"] = self.hw.worker_of[ann.id] = Worker(f"speaker-{ann.id}")
        return ann

    def say_test(self, text: str | None = None):  # noqa: ANN201 - Announcement
        """The chime and a sample call (or ``text``) on the speaker, now; returns what was said."""
        if self.announcer is None:
            raise KeyError("no speaker configured (add a speaker: section)")
        counter = self.cfg.counters[0].id
        service = self.cfg.services[0].prefix
        return self.announcer.say(f"{service}015", counter, text=text)

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
            self._store_full(e)
            raise

    def on_rating_key(self, pad: str, kind: str, value: int | str) -> None:
        """A rating pad's key: a score or a reason (the desk decides whether it counts)."""
        if self.rating is None:
            return
        if kind == "score":
            self.rating.press(pad, int(value))
        else:
            self.rating.reason(pad, str(value))

    def _on_rating_window(self, counter: str, view: dict) -> None:
        """A counter's rating window changed: light (or darken) its pads' keys; the page follows by itself."""
        for pad in self.hw.ratingpads.values():
            if getattr(pad, "counter", None) != counter:
                continue
            worker = self.hw.worker_of.get(pad.id)

            def job(pad=pad, state=view["state"]) -> None:  # noqa: ANN001
                try:
                    pad.indicate(state)
                except Exception as e:  # noqa: BLE001 - reported through the pad's health at the next poll
                    log.warning("%s: cannot light the keys for %s: %s", pad.id, state, e)

            if worker is not None and pad.model == "serial-ratingpad":
                worker.submit(job, key=f"lamp-{pad.id}")
            else:
                job()

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
    def on_dispenser_press(self, service: str, priority: str | None = None, by: str = "dispenser"):  # noqa: ANN201
        """A citizen pressed a service button: issue a ticket and print it (unless the printer is down).
        ``priority``: a priority class id (a priority button, a reception key, the kiosk); ``by``: the source.
        Returns the ticket issued, or None when none was (printer out, disk full, unknown service/class)."""
        printer = self._dispenser_printer()
        if printer is not None and printer.health().state in (DeviceState.failed, DeviceState.offline):
            # No paper, no ticket: a number nobody holds would be called and time out as a no-show.
            self.refused_presses += 1
            if self.hw.dispenser is not None:
                self.hw.dispenser.signal_fault(True)
            log.warning("button %s pressed but printer %s is %s: no ticket issued", service, printer.id,
                        printer.health().detail)
            return None
        try:
            ticket = self.engine.issue(service, priority=priority, by=by if priority else None)
        except StoreFull as e:
            self.refused_presses += 1  # no number without a durable record: it could be issued twice
            self._store_full(e)
            return None
        except QueueError as e:
            log.error("cannot issue a %s ticket: %s", service, e)
            return None
        if self.hw.dispenser is not None:
            self.hw.dispenser.beep()
        if printer is not None:
            self.hw.worker_of[printer.id].submit(lambda: self._print_ticket(printer, ticket))
        return ticket

    def on_key(self, counter: str, action: str, keypad: str | None = None) -> None:
        """A keypad key: a counter action (``call:<label>`` and ``call_held[:<label>]`` carry the typed
        ticket, ``sign_in:<code>`` the clerk's typed code), or ``issue:<service>:<priority>`` from a
        reception desk key."""
        if action.startswith("issue:"):
            _, service, priority = (action.split(":") + ["", ""])[:3]
            self.on_dispenser_press(service, priority or None, by=f"keypad:{keypad or counter}")
            return
        name, _, ticket = action.partition(":")
        try:
            if name == "sign_in":  # the typed code names the clerk
                try:
                    self.sign_in_code(counter, ticket, by=f"keypad:{keypad or counter}")
                except WrongCode:
                    pass  # refused, counted, "Sai mã" on the counter: nothing more to say
                return
            self.counter_action(counter, name, ticket=ticket or None, by=f"keypad:{keypad or counter}")
        except (QueueError, StoreFull) as e:
            if isinstance(e, StoreFull):
                self._store_full(e)
            log.warning("counter %s: %s refused: %s", counter, "sign_in" if name == "sign_in" else action, e)
            text = f"CHO {min(999, round(e.left_s))}S" if isinstance(e, RecallCooldown) else "LOI"
            for pad in self.hw.counter_pads.get(counter, []):
                self._submit_show(pad, text if action else "", key=f"lcd-{pad.id}")

    def counter_action(self, counter: str, action: str, to_service: str | None = None,
                       to_counter: str | None = None, ticket: str | None = None, by: str = "api",
                       clerk: str | None = None, dossier: str | None = None) -> object:
        """One counter action; ``by`` (who asked: ``keypad:<id>``, ``api``, ``gateway:<command id>``) is
        written in the event of every recall, out-of-order call, hold and call back (audit), and of every
        sign-in and sign-out. ``sign_in`` takes ``clerk`` (a clerk id); ``complete`` / ``done`` may carry
        ``dossier`` (the one-stop system's dossier code)."""
        e = self.engine
        if action == "sign_in":
            if not clerk:
                raise QueueError("signing in needs the clerk's id (clerk)")
            result = e.sign_in(counter, clerk, by=by)
            self._greet(counter, clerk)
            return result
        if action == "sign_out":
            return e.sign_out(counter, by=by)
        if dossier is not None and action not in ("done", "complete"):
            raise QueueError("a dossier code goes with the completion of a ticket (complete)")
        if action == "next":
            return e.call_next(counter)
        if action == "recall":
            return e.recall(counter, by=by)
        if action == "call":
            if not ticket:
                raise QueueError("calling a specific ticket needs its number (e.g. B012)")
            return e.call_ticket(counter, ticket, by=by)
        if action == "hold":
            return e.hold(counter, by=by)
        if action == "call_held":
            return e.call_held(counter, ticket, by=by)
        if action == "no_show":
            return e.no_show(counter)
        if action in ("done", "complete"):
            return e.complete(counter, dossier=dossier)
        if action == "transfer":
            if to_service is None and to_counter is None:
                to_service = self._transfer_target(counter)
            return e.transfer(counter, to_service=to_service, to_counter=to_counter)
        if action == "open":
            return e.open_counter(counter)
        if action == "close":
            return e.close_counter(counter, by=by)
        if action == "break":
            return e.break_counter(counter)
        raise QueueError(f"unknown counter action {action!r}")

    def sign_in_code(self, counter: str, code: str | None, by: str) -> object:
        """Sign in the clerk whose code is ``code`` (typed on the keypad or the counter's PC). A code that
        matches nobody is refused (:class:`WrongCode`), counted in ``wrong_codes`` and shown on the counter
        as "Sai mã" for a moment; no event is logged for it."""
        self.engine.counter(counter)  # an unknown counter is a QueueError, not a wrong code
        clerk = self._clerk_of_code.get(code or "")
        if clerk is None:
            self.wrong_codes += 1
            log.warning("counter %s: a wrong sign-in code was typed (%d so far)", counter, self.wrong_codes)
            self._flash(counter, WRONG_CODE_TEXT)
            raise WrongCode(f"wrong sign-in code at counter {counter}")
        return self.counter_action(counter, "sign_in", clerk=clerk, by=by)

    def _greet(self, counter: str, clerk: str) -> None:
        """After a sign-in: the clerk's short name on the counter's pad LCD and text display for a moment."""
        c = self.cfg.clerks.get(clerk)
        if c is not None:
            self._flash(counter, c.display_name())

    def _flash(self, counter: str, text: str) -> None:
        """``text`` on the counter's call pad LCDs and text (ASCII-frame) displays for FLASH_S seconds; the
        scheduler loop then puts the ticket in hand back. 7-segment boards keep showing the ticket."""
        self._show_text_at(counter, text)
        with self._flash_lock:
            self._flash_until[counter] = self.clock.monotonic() + self.flash_s
        self._wake.set()

    def _show_text_at(self, counter: str, text: str) -> None:
        from civiq.edge.devices.display.asciiframe import AsciiFrameDisplay

        for pad in self.hw.counter_pads.get(counter, []):
            self._submit_show(pad, text[: pad.lcd_width], key=f"lcd-{pad.id}")
        for d in self.hw.counter_displays.get(counter, []):
            if isinstance(d, AsciiFrameDisplay):
                self._submit_show(d, text[: d.width], key=f"show-{d.id}")

    def _end_flashes(self) -> None:
        """Put the ticket in hand (or nothing) back where a flashed text has had its time."""
        now = self.clock.monotonic()
        with self._flash_lock:
            done = [c for c, until in self._flash_until.items() if now >= until]
            for c in done:
                del self._flash_until[c]
        for counter in done:
            try:
                view = self.engine.counter(counter)
            except QueueError:
                continue
            self._show_text_at(counter, view.ticket or ("----" if str(view.state) == "break" else ""))

    def _transfer_target(self, counter: str) -> str:
        """A keypad's transfer key has no target: send the citizen to the next service in the counter's
        profile after the ticket's own (the usual case: they queued for the wrong procedure)."""
        view = self.engine.counter(counter)
        if view.ticket is None:
            raise QueueError(f"counter {counter} has no ticket to transfer")
        current = self.engine.ticket(view.ticket)
        services = list(self.engine.profile(counter).services)
        others = [s for s in services if current is None or s != current.service]
        if not others:
            raise QueueError(f"counter {counter} serves only one service: transfer from the dashboard")
        if current is not None and current.service in services:
            i = services.index(current.service)
            rotated = services[i + 1:] + services[:i]
            return rotated[0]
        return others[0]

    def handle_command(self, name: str, cmd: Command) -> CmdResult:
        """Commands from the gateway (the link validated them against the contract already)."""
        try:
            if isinstance(cmd, PolicyCmd):
                applied = self.engine.apply_policy(cmd.policy)
                return CmdResult(id=cmd.id, cmd=name, ok=True, data={"applied": applied,
                                                                     "version": cmd.policy.version})
            if isinstance(cmd, DisplayCmd):
                targets = [self.hw.displays[cmd.device]] if cmd.device else list(self.hw.displays.values())
                if cmd.device and cmd.device not in self.hw.displays:
                    return CmdResult(id=cmd.id, cmd=name, ok=False, error=f"no display {cmd.device!r}")
                self._message_until = self.clock.monotonic() + cmd.seconds
                for d in targets:
                    self._submit_show(d, cmd.text, key=f"show-{d.id}")
                return CmdResult(id=cmd.id, cmd=name, ok=True, data={"displays": [d.id for d in targets]})
            if isinstance(cmd, TestPrintCmd):
                self.test_print(cmd.printer)
                return CmdResult(id=cmd.id, cmd=name, ok=True)
            if isinstance(cmd, CounterCmd):
                result = self.counter_action(cmd.counter, cmd.action, cmd.to_service, cmd.to_counter,
                                             ticket=cmd.ticket, by=f"gateway:{cmd.id}", clerk=cmd.clerk,
                                             dossier=cmd.dossier)
                label = getattr(result, "label", None)
                data: dict[str, object] = {"ticket": label}
                if cmd.action in ("sign_in", "sign_out"):
                    data["clerk"] = getattr(result, "clerk", None)
                return CmdResult(id=cmd.id, cmd=name, ok=True, data=data)
        except KeyError as e:
            return CmdResult(id=cmd.id, cmd=name, ok=False, error=f"unknown device or counter {e}")
        except Exception as e:  # noqa: BLE001 - any failure is reported back, never raised into the link
            return CmdResult(id=cmd.id, cmd=name, ok=False, error=str(e))
        return CmdResult(id=cmd.id, cmd=name, ok=False, error=f"command {name!r} not handled by this agent")

    # ------------------------------------------------------------------------------------ outputs
    def _dispenser_printer(self):  # noqa: ANN202
        if self.cfg.dispenser is None or not self.cfg.dispenser.printer:
            return next(iter(self.hw.printers.values()), None)
        return self.hw.printers.get(self.cfg.dispenser.printer)

    def ticket_print(self, ticket: object):  # noqa: ANN201
        from civiq.edge.devices.printer import TicketPrint

        svc = self.services[ticket.service]
        issued = ticket.issued_at.astimezone(self.tz).strftime("%H:%M %d/%m/%Y")
        url = svc.portal_url
        if self._ticket_key and self.cfg.center.public_url:
            token = token_with_key(self._ticket_key, self.cfg.center.id, ticket.day, ticket.label)
            url = f"{self.cfg.center.public_url.rstrip('/')}/t/{token}"
        return TicketPrint(center_name=self.cfg.center.name, label=ticket.label, service_name_vi=svc.name_vi,
                           service_name_en=svc.name_en, issued_local=issued, ahead=ticket.ahead,
                           eta_text=_eta_text(ticket.eta_s), qr_url=url,
                           priority_label=self.cfg.priority.label(getattr(ticket, "priority", None)))

    def _print_ticket(self, printer, ticket) -> None:  # noqa: ANN001
        from civiq.edge.devices.printer import PrinterError

        try:
            printer.print_ticket(self.ticket_print(ticket))
        except PrinterError as e:
            log.error("ticket %s not printed: %s", ticket.label, e)
        except Exception:  # noqa: BLE001
            log.exception("ticket %s not printed", ticket.label)
        self._check_device(printer)

    def test_print(self, printer_id: str | None = None) -> None:
        printers = [self.hw.printers[printer_id]] if printer_id else list(self.hw.printers.values())
        for p in printers:
            lines = [self.cfg.center.name, "In thử / Test print", f"{p.id} · civiq {__version__}",
                     self.clock.now().astimezone(self.tz).strftime("%H:%M:%S %d/%m/%Y")]
            p.test_print(lines)

    def display_test(self) -> dict[str, str]:
        """Show ``8888`` then the display's own id on every display; returns what went wrong per display."""
        results = {}
        for d in self.hw.displays.values():
            try:
                for text in ("8888", d.id[-4:].upper()):
                    d.show(text)
                results[d.id] = "ok"
            except Exception as e:  # noqa: BLE001 - reported per display
                results[d.id] = str(e)
            self._check_device(d)
        return results

    def _submit_show(self, dev, text: str, key: str) -> None:  # noqa: ANN001
        def job() -> None:
            try:
                dev.show(text)
            except Exception as e:  # noqa: BLE001 - reported through the device's health
                log.warning("%s: cannot show %r: %s", dev.id, text, e)
            self._check_device(dev)

        self.hw.worker_of[dev.id].submit(job, key=key)

    def _store_full(self, e: StoreFull) -> None:
        """The disk is full: refuse tickets (the dispenser LED blinks), report a failed "storage" device in
        every health message (the gateway alerts), keep everything that needs no new event running."""
        first = self.store_fault is None
        self.store_fault = f"disk full: events cannot be saved, no ticket is issued ({e})"
        if self.hw.dispenser is not None:
            self.hw.dispenser.signal_fault(True)
        if first:
            log.error("%s", self.store_fault)
            self._publish_health()

    def _store_recovered(self) -> None:
        self.store_fault = None
        log.warning("events can be saved again: tickets are issued again")
        printer = self._dispenser_printer()
        if self.hw.dispenser is not None:
            self.hw.dispenser.signal_fault(printer is not None and printer.health().state in
                                           (DeviceState.failed, DeviceState.offline))
        self._publish_health()

    def _on_engine_event(self, event: Event) -> None:
        if self.store_fault is not None:
            self._store_recovered()
        self.link.notify()
        self._dirty.set()
        if event.type in CALL_EVENTS:
            counter, label = event.data.get("counter"), event.data.get("ticket", "")
            for d in self.hw.counter_displays.get(counter, []):
                self._submit_show(d, label, key=f"show-{d.id}")
            for pad in self.hw.counter_pads.get(counter, []):
                self._submit_show(pad, label, key=f"lcd-{pad.id}")
            if self.announcer is not None:  # only queued here: the engine thread never waits for a sound
                self.announcer.announce(label, counter, recall=event.type == EventType.ticket_recalled,
                                        priority=event.data.get("priority"), service=event.data.get("service"))
        elif event.type in (EventType.counter_closed, EventType.counter_break):
            counter = event.data.get("counter")
            text = "" if event.type == EventType.counter_closed else "----"
            for d in self.hw.counter_displays.get(counter, []):
                self._submit_show(d, text, key=f"show-{d.id}")
        elif event.type == EventType.ticket_held:  # parked: nobody is served there now; the pad says what
            counter, label = event.data.get("counter"), str(event.data.get("ticket", ""))
            for d in self.hw.counter_displays.get(counter, []):
                self._submit_show(d, "", key=f"show-{d.id}")
            for pad in self.hw.counter_pads.get(counter, []):
                text = f"GIU {label}" if len(label) <= pad.lcd_width - 4 else label[: pad.lcd_width]
                self._submit_show(pad, text, key=f"lcd-{pad.id}")

    # ------------------------------------------------------------------------------------ health
    def _check_device(self, dev) -> DeviceHealth:  # noqa: ANN001
        h = dev.health()
        prev = self._last_health.get(dev.id)
        if prev is None or prev.state != h.state or prev.detail != h.detail:
            self._last_health[dev.id] = h
            if prev is not None or h.state != DeviceState.ok:
                recovered = h.state == DeviceState.ok
                etype = EventType.device_recovered if recovered else EventType.device_fault
                try:
                    self.engine.device_event(etype, {"device": h.id, "kind": h.kind, "state": str(h.state),
                                                     "detail": h.detail})
                except StoreFull as e:
                    log.error("disk full: device event for %s not logged", h.id)
                    self._store_full(e)
                self._publish_health()
            if dev is self._dispenser_printer() and self.hw.dispenser is not None:
                self.hw.dispenser.signal_fault(h.state in (DeviceState.failed, DeviceState.offline)
                                               or self.store_fault is not None)
        return h

    def poll_devices(self) -> list[DeviceHealth]:
        out = []
        for dev in self.hw.devices.values():
            worker = self.hw.worker_of.get(dev.id)

            def job(dev=dev) -> None:  # noqa: ANN001
                dev.poll()
                self._check_device(dev)

            if worker is not None:
                worker.submit(job, key=f"poll-{dev.id}")
            out.append(dev.health())
        return out

    def health(self) -> Health:
        now = self.clock.now()
        host = host_health(self.state_dir, now, clock_offset_s=self._clock_offset, synced=self._ntp)
        devices = []
        for d in self.hw.devices.values():
            h = d.health()
            note = d.status_note() if hasattr(d, "status_note") else ""
            if note:  # counters (e.g. rating presses outside a window): shown, never a fault of their own
                h.detail = f"{h.detail}; {note}" if h.detail else note
            devices.append(h)
        if self.store_fault is not None:
            devices.append(DeviceHealth(id="storage", kind="storage", state=DeviceState.failed,
                                        detail=self.store_fault))
        return Health(ts=now, host=host, devices=devices, outbox=self.link.pending_stats())

    def _publish_health(self) -> None:
        try:
            self.link.publish_state("health", self.health(), retain=False)
        except Exception:  # noqa: BLE001
            log.exception("health not published")

    def _publish_snapshot(self) -> None:
        snap = self.engine.snapshot()
        self.link.publish_state("queue", snap, retain=True)

    def _update_qrboards(self, index: int) -> None:
        if not self.hw.qrboards or not self.services:
            return
        svcs = list(self.services.values())
        svc = svcs[index % len(svcs)]
        snap = self.engine.snapshot()
        lines = []
        for s in svcs:
            q = snap.services.get(s.prefix)
            if q is None:
                continue
            eta = "?" if q.eta_s is None else f"{round(q.eta_s / 60)}'"
            lines.append(f"{s.prefix} {s.name_vi}: {q.waiting} ({eta})")
        for board in self.hw.qrboards.values():
            self.hw.worker_of[board.id].submit(
                lambda board=board: self._show_qr(board, svc.portal_url, f"{svc.name_vi} / {svc.name_en}",
                                                  lines), key=f"qr-{board.id}")

    def _show_qr(self, board, url: str, title: str, lines: list[str]) -> None:  # noqa: ANN001
        try:
            board.show(url, title, lines)
        except Exception as e:  # noqa: BLE001
            log.warning("QR board %s: %s", board.id, e)
        self._check_device(board)

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._ntp = ntp_synchronized()
        self.hw.start()
        self.link.start()
        for dev in self.hw.devices.values():
            self._last_health.setdefault(dev.id, dev.health())
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
                if self._flash_until:
                    self._end_flashes()
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
                    self._ntp, self._clock_offset = ntp_synchronized(), clock_offset_s()
                    self._publish_health()
                    next_health = now + HEALTH_INTERVAL_S
                if now >= next_qr:
                    self._update_qrboards(qr_index)
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
        self.notifier.stopping()
        self.hall.close()  # ends the hall pages' live streams: they reconnect to the next agent
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(5)
        self.checkpoint()
        try:
            self.link.stop(clean=True)
        finally:
            self.hw.close()
            self.store.close()

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
