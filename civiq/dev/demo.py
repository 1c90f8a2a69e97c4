"""``civiq demo``: a province in a box. Broker, gateway and simulated centers on this machine, one command.

    $ civiq demo                      # 3 centers, 60 simulated seconds per real second, dashboard on :8080
    $ civiq demo --centers 6 --speed 120 --duration 300 --no-browser

What runs, all in this process except Mosquitto:

* an MQTT broker: Mosquitto on a free port when ``mosquitto`` is on the PATH, else the embedded amqtt
  (``CIVIQ_DEMO_BROKER=embedded`` or ``=mosquitto`` forces the choice);
* the gateway (:class:`civiq.gateway.service.Gateway`) with its embedded SQLite store in a temporary
  directory and the dashboard on ``--port`` (a free port when that one is taken), with three demo users;
* one real :class:`~civiq.edge.agent.EdgeAgent` per center on simulated hardware
  (``make_agent(cfg, simulate=True)``: the code that runs on a Pi, with mock GPIO pins and pty emulators),
  each with its local HTTP API (the simulator API of docs/simulator.md) on a free port, which also serves
  the center's hall TV board (``/board``) and touch kiosk (``/kiosk``): the banner prints both links, and
  the ratings of the center (``/api/rating``) and, where a counter has a tablet, its rating page
  (``/rate/<counter>``). The demo centers have no ``speaker:`` section, so the demo speaks nothing;
* the people of :mod:`civiq.dev.demo_people`: citizens, clerks and a technician.

Every part shares one :class:`~civiq.clock.ScaledClock` starting at 07:30 today in Asia/Ho_Chi_Minh. Things
that run in real time (MQTT keepalives, the edges' health every 15 real seconds, device polling) are
therefore ``speed`` times longer in clock time, so every interval the gateway measures on the clock is
scaled here (:func:`gateway_settings`): a node is offline after 3 missed health reports, i.e.
``3 * 15 * speed`` clock seconds.

``CIVIQ_DEMO_DIR=/some/dir`` keeps the configs, databases and ``demo.log`` there (by default they live in a
temporary directory removed on exit).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from civiq.clock import DEFAULT_TZ, ScaledClock
from civiq.dev.broker import EmbeddedBroker, Mosquitto, free_port
from civiq.dev.demo_centers import MAX_CENTERS, DemoCenter, demo_centers
from civiq.dev.demo_people import CenterPeople
from civiq.errors import CiviqError

log = logging.getLogger("civiq.dev.demo")

START_LOCAL = (7, 30)
HEALTH_REAL_S = 15.0  # the edge agent's health interval (real seconds: its loop runs on time.monotonic)
PROGRESS_EVERY_S = 5.0  # one progress line this often when stdout is not a terminal
MAX_SPEED = 3600.0


class DemoError(CiviqError):
    """The demo cannot start; the message says why in words."""


@dataclass
class CenterRun:
    center: DemoCenter
    config_path: Path
    agent: Any
    server: Any  # WebThread: the agent's local API
    people: CenterPeople | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/"

    @property
    def board_url(self) -> str:
        """The hall TV's calling board (``/board``; ``/board?audio=1`` would play the voice: the demo has none)."""
        return f"{self.api_url}board"

    @property
    def kiosk_url(self) -> str:
        """The touch kiosk at the dispenser: a tap issues and prints a ticket, like a button."""
        return f"{self.api_url}kiosk"


@dataclass(frozen=True)
class Login:
    user: str
    password: str
    role: str
    center: str | None = None
    clerk: str | None = None  # role clerk: the clerk id the center's events carry


@dataclass(frozen=True)
class Progress:
    local: datetime
    issued: int
    served: int
    waiting: int
    alerts: int
    centers: int

    def line(self, speed: float) -> str:
        return (f"{self.local:%H:%M} (x{speed:g})  tickets {self.issued}  served {self.served}  "
                f"waiting {self.waiting}  alerts {self.alerts}")


# ------------------------------------------------------------------------------------------ settings
def start_time(tz: str = DEFAULT_TZ, now: datetime | None = None) -> datetime:
    """07:30 today in the center's time zone, as UTC (where the demo's clock starts)."""
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(tz))
    return local.replace(hour=START_LOCAL[0], minute=START_LOCAL[1], second=0, microsecond=0).astimezone(UTC)


def gateway_settings(data_dir: Path, broker_port: int, http_port: int, speed: float,  # noqa: ANN201
                     protocol: str = "5"):
    """Gateway settings for a clock running ``speed`` times real time.

    The edges report health every 15 *real* seconds, so every interval the gateway measures on the shared
    clock is scaled by ``speed``: heartbeat timeout (3 missed reports), how long a problem must stay gone
    before its alert clears, the flapping window, the outbox-age threshold and the advisor's period.

    >>> s = gateway_settings(Path("/tmp/x"), 1883, 8080, speed=60)
    >>> s.heartbeat_timeout_s, s.alerts.clear_after_s, s.balance.interval_s
    (2700.0, 600.0, 600.0)
    """
    from civiq.gateway.settings import GatewaySettings

    return GatewaySettings.load(
        gateway_id="demo",
        data_dir=data_dir,
        mqtt={"host": "127.0.0.1", "port": broker_port, "keepalive": 10, "session_expiry_s": 0,
              "protocol": protocol},
        http={"host": "127.0.0.1", "port": http_port, "public_base_url": f"http://127.0.0.1:{http_port}"},
        heartbeat_timeout_s=3 * HEALTH_REAL_S * speed,
        alerts={"clear_after_s": 10 * speed, "flap_window_s": 600 * speed, "mqtt": True,
                "thresholds": {"outbox_oldest_s_max": 300 * speed}},
        balance={"interval_s": 10 * speed, "history_days": 1},
    )


def scale_ingest(ingest: Any, speed: float) -> None:
    """The ingest's own periodic jobs are timed on the clock too (constructor arguments the gateway does not
    expose): scale them so they keep their real-time meaning."""
    for name in ("gap_grace_s", "rebirth_interval_s", "save_interval_s", "prune_interval_s", "heartbeat_check_s"):
        if hasattr(ingest, name):
            setattr(ingest, name, getattr(ingest, name) * speed)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def has_display() -> bool:
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


# ------------------------------------------------------------------------------------------ the demo
class Demo:
    """Everything ``civiq demo`` runs; :meth:`start` and :meth:`stop` (idempotent, in reverse order).

        demo = Demo(centers=3, speed=60, port=0).start()
        print(demo.url, demo.logins[0].password, demo.progress().issued)
        demo.stop()
    """

    def __init__(self, centers: int = 3, speed: float = 60.0, port: int = 8080, broker: str = "auto",
                 workdir: Path | None = None, should_stop: threading.Event | None = None) -> None:
        if not 1 <= centers <= MAX_CENTERS:
            raise DemoError(f"--centers must be between 1 and {MAX_CENTERS} (got {centers})")
        if not 0 < speed <= MAX_SPEED:
            raise DemoError(f"--speed must be above 0 and at most {MAX_SPEED:g} simulated seconds per real "
                            f"second (got {speed:g})")
        if not 0 <= port <= 65535:
            raise DemoError(f"--port must be a TCP port 0-65535 (got {port})")
        if broker not in ("auto", "embedded", "mosquitto"):
            raise DemoError(f"CIVIQ_DEMO_BROKER must be auto, embedded or mosquitto (got {broker!r})")
        self.centers = demo_centers(centers)
        self.speed = speed
        self.requested_port = port
        self.broker_choice = broker
        self.keep_dir = workdir is not None
        self.dir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="civiq-demo-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.should_stop = should_stop or threading.Event()
        self.tz = ZoneInfo(DEFAULT_TZ)
        self.notes: deque[str] = deque(maxlen=20)
        self.clock: ScaledClock | None = None
        self.broker: Mosquitto | EmbeddedBroker | None = None
        self.broker_kind = ""
        self.gateway: Any = None
        self.port = 0
        self.port_note = ""
        self.public_url = ""  # the gateway's public pages (ticket QR codes open <public_url>/t/<token>)
        self.logins: list[Login] = []
        self.runs: list[CenterRun] = []
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    # ---------------------------------------------------------------------------------- start
    def start(self) -> Demo:
        try:
            self._start_broker()
            self.clock = ScaledClock(start_time(), speed=self.speed)
            self._check()
            self._start_gateway()
            self._check()
            self._add_users()
            for c in self.centers:
                self._check()
                self.runs.append(self._start_center(c))
            for run in self.runs:
                run.people = CenterPeople(run.center, run.agent, self.clock, notes=self.notes)
                run.people.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _check(self) -> None:
        if self.should_stop.is_set():
            raise KeyboardInterrupt

    def _start_broker(self) -> None:
        choice = self.broker_choice
        if choice == "auto":
            choice = "mosquitto" if shutil.which("mosquitto") else "embedded"
        if choice == "mosquitto":
            if not Mosquitto.available():
                raise DemoError("CIVIQ_DEMO_BROKER=mosquitto but mosquitto is not installed "
                                "(apt-get install mosquitto, or leave CIVIQ_DEMO_BROKER unset)")
            try:
                self.broker = Mosquitto(workdir=self._sub("mosquitto")).start()
                self.broker_kind = "mosquitto"
                return
            except (OSError, RuntimeError, TimeoutError) as e:
                log.warning("mosquitto did not start (%s): using the embedded broker", e)
                self.notes.append(f"mosquitto did not start ({e}); using the embedded broker")
        for name in ("amqtt", "transitions", "passlib"):
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            self.broker = EmbeddedBroker().start()
        except Exception as e:  # noqa: BLE001 - said in words
            raise DemoError(f"the embedded MQTT broker (amqtt) did not start: {e}") from e
        self.broker_kind = "embedded"

    def _sub(self, name: str) -> Path:
        p = self.dir / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    def _start_gateway(self) -> None:
        from civiq.gateway.service import Gateway

        port = self.requested_port
        if port == 0 or not port_free(port):
            new = free_port()
            if port:
                self.port_note = f"port {port} is taken: the dashboard is on port {new} instead"
            port = new
        assert self.broker is not None and self.clock is not None
        # amqtt (the embedded broker) speaks no MQTT 5
        protocol = "3.1.1" if self.broker_kind == "embedded" else "5"
        settings = gateway_settings(self._sub("gateway"), self.broker.port, port, self.speed, protocol)
        self.public_url = settings.http.public_base_url
        gw = Gateway(settings, clock=self.clock, channels=None)
        scale_ingest(gw.ingest, self.speed)
        for c in self.centers:  # names before the first birth (which carries them too)
            gw.state.set_center_name(c.id, c.name)
            gw.view.service_names[c.id] = {s.prefix: s.name_vi for s in c.services}
        self.gateway = gw
        gw.start()
        self.port = gw.server.port if gw.server is not None else port
        deadline = time.monotonic() + 15
        while not gw.ingest.wait_ready(0.5):
            self._check()
            if time.monotonic() > deadline:
                raise DemoError(f"the gateway could not subscribe on the broker at 127.0.0.1:{self.broker.port}")

    def _add_users(self) -> None:
        users = self.gateway.users
        ward = next((c for c in self.centers if c.kind == "ward"), self.centers[0])
        wanted = [Login("admin", _password(), "province_admin"),
                  Login("quanly", _password(), "center_manager", ward.id),
                  Login("kythuat", _password(), "technician")]
        if ward.counters:  # the clerk of the ward's first counter sees their own report and ratings
            wanted.append(Login("canbo", _password(), "clerk", ward.id, ward.clerk_of(ward.counters[0].id)[0]))
        for lg in wanted:
            users.add_user(lg.user, lg.password, lg.role, center=lg.center, clerk=lg.clerk)
        self.logins = wanted

    def _ticket_key_file(self, center_id: str, state: Path) -> Path:
        """What a technician does with `civiq gateway ticket-key CENTER`: the center's key in a 0600 file."""
        from civiq.gateway.service import load_secret
        from civiq.tickettoken import center_key

        key = center_key(load_secret(self._sub("gateway") / "secret.key"), center_id)
        path = state / "ticket-key"
        path.touch(mode=0o600)
        path.write_text(key.hex() + "\n", encoding="utf-8")
        return path

    def _start_center(self, center: DemoCenter) -> CenterRun:
        from civiq.edge.cli import make_agent
        from civiq.edge.config import load_config
        from civiq.edge.sim.api import sim_routes
        from civiq.edge.web import agent_routes
        from civiq.webthread import WebThread

        assert self.broker is not None
        state = self._sub(f"centers/{center.id}")
        path = self._sub("configs") / f"{center.id}.yaml"
        key_file = self._ticket_key_file(center.id, state)  # the ticket's QR opens the gateway's /t/ page
        # the rating window lasts at least ~2 real seconds whatever the speed (a pad is polled), at most 600 s
        window_s, reasons_s = min(600.0, max(30.0, 2 * self.speed)), min(60.0, max(8.0, self.speed / 2))
        path.write_text(center.config_yaml(self.broker.port, str(state), public_url=self.public_url,
                                           rating_window_s=window_s, reasons_wait_s=reasons_s,
                                           ticket_key_file=str(key_file)), encoding="utf-8")
        cfg = load_config(path, env={})
        agent = make_agent(cfg, True, clock=self.clock, state_dir=state)
        try:
            agent.start()
            server = WebThread(agent_routes(agent) + sim_routes(agent.sim), host="127.0.0.1", port=0).start()
        except BaseException:
            _stop_agent(agent, None)
            raise
        return CenterRun(center, path, agent, server)

    # ---------------------------------------------------------------------------------- watch
    def progress(self) -> Progress:
        """What the gateway (so the dashboard) knows now: tickets issued and served today, waiting, alerts."""
        assert self.clock is not None
        rows = self.gateway.view.overview() if self.gateway is not None else []
        try:
            alerts = len(self.gateway.alerts.active())
        except Exception:  # noqa: BLE001 - progress is best effort
            alerts = 0
        return Progress(local=self.clock.now().astimezone(self.tz),
                        issued=sum(r.get("issued_today") or 0 for r in rows),
                        served=sum(r.get("served_today") or 0 for r in rows),
                        waiting=sum(r.get("waiting") or 0 for r in rows), alerts=alerts, centers=len(rows))

    def banner(self) -> str:
        assert self.broker is not None
        width = max(len(lg.user) for lg in self.logins)
        roles = {"province_admin": "province admin: every center",
                 "center_manager": "center manager: {center}",
                 "technician": "technician: devices and alerts",
                 "clerk": "clerk: their own report and ratings, {center}"}
        names = {c.id: c.name for c in self.centers}
        lines = [f"civiq demo: {len(self.centers)} simulated centers, clock x{self.speed:g} from "
                 f"{START_LOCAL[0]:02d}:{START_LOCAL[1]:02d} {DEFAULT_TZ}", ""]
        if self.port_note:
            lines += [f"  note: {self.port_note}", ""]
        lines.append(f"  Dashboard  {self.url}")
        lines.append(f"  Reports    {self.url}reports   (per day/week/month, ratings, Excel)")
        for i, lg in enumerate(self.logins):
            role = roles[lg.role].format(center=names.get(lg.center or "", lg.center))
            lines.append(f"  {'Logins' if i == 0 else '':9}  {lg.user:<{width}} / {lg.password}   ({role})")
        lines += ["", "  Centers (each a real edge agent on simulated hardware; its local API is the simulator's)"]
        idw = max(len(r.center.id) for r in self.runs)
        nw = max(len(r.center.name) for r in self.runs)
        for r in self.runs:
            c = r.center
            story = ""
            if c.printer_faults:
                outs = ", ".join(f.out for f in c.printer_faults)
                story = f"  printer out of paper at {outs}"
            lines.append(f"    {c.id:<{idw}}  {c.name:<{nw}}  {len(c.services)} services, "
                         f"{len(c.counters)} counters  {r.api_url}{story}")
            lines.append(f"    {'':<{idw}}  hall TV {r.board_url}   touch kiosk {r.kiosk_url}")
            pages = [p.counter for p in getattr(r.agent.cfg, "ratingpads", []) if p.kind == "page"]
            lines.append(f"    {'':<{idw}}  ratings {r.api_url}api/rating" +
                         (f"   rating page {r.api_url}rate/{pages[0]}" if pages else ""))
        first = self.runs[0]
        lines += ["",
                  f"  Broker     {'Mosquitto' if self.broker_kind == 'mosquitto' else 'embedded amqtt'} "
                  f"on 127.0.0.1:{self.broker.port}",
                  f"  Files      {self.dir} (center configs, databases, demo.log)",
                  f"  By hand    curl -X POST {first.api_url}sim/press/{first.center.services[0].prefix}"
                  "   (docs/simulator.md)",
                  "",
                  "  Ctrl-C stops everything."]
        return "\n".join(lines)

    # ---------------------------------------------------------------------------------- stop
    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for r in self.runs:
            if r.people is not None:
                r.people.stop()
        for r in self.runs:
            if r.people is not None:
                r.people.join(5)
        threads = [threading.Thread(target=_stop_agent, args=(r.agent, r.server), daemon=True) for r in self.runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        if self.gateway is not None:
            try:
                self.gateway.stop()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                log.exception("stopping the gateway")
        if self.broker is not None:
            try:
                self.broker.stop()
            except Exception:  # noqa: BLE001
                log.exception("stopping the broker")

    def cleanup(self) -> None:
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _stop_agent(agent: Any, server: Any) -> None:
    try:
        agent.stop()  # publishes a clean death, closes devices and the store
    except Exception:  # noqa: BLE001
        log.exception("stopping agent %s", getattr(agent.cfg.center, "id", "?"))
    if server is not None:
        server.stop()
    sim = getattr(agent, "sim", None)
    if sim is not None:
        sim.stop()


def _password() -> str:
    return secrets.token_urlsafe(9)  # 12 characters, no shell-special ones


# ------------------------------------------------------------------------------------------ command
class _Terminal:
    """The progress line: rewritten in place on a terminal, one line every few seconds otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last_print = 0.0
        self._dirty = False
        self.gone = False

    def show(self, text: str) -> None:
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self._write("\r" + text[:width] + "\x1b[K")
            self._dirty = True
        elif time.monotonic() - self._last_print >= PROGRESS_EVERY_S:
            self._last_print = time.monotonic()
            self._write(text + "\n")

    def say(self, text: str) -> None:
        if self._dirty:
            self._write("\r\x1b[K")
            self._dirty = False
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        if self.gone:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):  # the terminal was closed (SIGHUP): carry on stopping, silently
            self.gone = True


def _log_to_file(path: Path, verbose: bool) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)

    def excepthook(a: threading.ExceptHookArgs) -> None:
        logging.getLogger("civiq.dev.demo").error("thread %s died", a.thread.name if a.thread else "?",
                                              exc_info=(a.exc_type, a.exc_value, a.exc_traceback))

    threading.excepthook = excepthook


def _open_browser(url: str) -> None:
    import webbrowser

    def run() -> None:
        try:
            webbrowser.open(url)
        except Exception:  # noqa: BLE001 - the URL is printed anyway
            log.info("could not open a browser", exc_info=True)

    threading.Thread(target=run, name="browser", daemon=True).start()


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``civiq demo``; returns the exit code: 0 after Ctrl-C, SIGTERM, SIGHUP or ``--duration``; 1 when it
    cannot start; 2 for bad arguments."""
    out = out or sys.stdout
    duration = getattr(args, "duration", None)
    if duration is not None and duration <= 0:
        print("civiq demo: --duration must be a number of seconds above 0", file=sys.stderr)
        return 2
    workdir = os.environ.get("CIVIQ_DEMO_DIR") or None
    stop = threading.Event()
    try:
        demo = Demo(centers=args.centers, speed=args.speed, port=args.port,
                    broker=os.environ.get("CIVIQ_DEMO_BROKER", "auto").strip().lower() or "auto",
                    workdir=Path(workdir) if workdir else None, should_stop=stop)
    except DemoError as e:
        print(f"civiq demo: {e}", file=sys.stderr)
        return 2
    signals = {"n": 0}

    def on_signal(signum: int, frame: object) -> None:
        signals["n"] += 1
        if signals["n"] > 2:  # a third Ctrl-C: the user really wants out now
            os._exit(130)
        stop.set()

    # SIGHUP: the terminal was closed; stop as cleanly as for Ctrl-C
    handled = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    old = {s: signal.signal(s, on_signal) for s in handled}
    _log_to_file(demo.dir / "demo.log", getattr(args, "verbose", False))
    term = _Terminal(out)
    try:
        code = _run(demo, term, stop, duration, browser=not getattr(args, "no_browser", False))
    finally:
        demo.stop()
        for s, h in old.items():
            signal.signal(s, h)
    if code == 0:
        term.say("civiq demo: stopped cleanly.")
        demo.cleanup()
    return code


def _run(demo: Demo, term: _Terminal, stop: threading.Event, duration: float | None, browser: bool) -> int:
    term.say(f"civiq demo: starting the broker, the gateway and {len(demo.centers)} centers ...")
    try:
        demo.start()
    except KeyboardInterrupt:
        term.say("civiq demo: interrupted before it was ready.")
        return 0
    except (DemoError, OSError, ValueError, TimeoutError) as e:
        log.exception("the demo did not start")
        term.say(f"civiq demo: cannot start: {e}\n  details in {demo.dir / 'demo.log'}")
        demo.keep_dir = True
        return 1
    term.say(demo.banner() + "\n")
    if browser and has_display():
        _open_browser(demo.url)
    t0 = time.monotonic()
    while not stop.wait(0.5):
        while demo.notes:  # what happened in the centers: printer out of paper, refilled
            term.say(f"  {demo.notes.popleft()}")
        term.show(demo.progress().line(demo.speed))
        if duration is not None and time.monotonic() - t0 >= duration:
            break
    term.say(demo.progress().line(demo.speed))
    term.say("civiq demo: stopping the centers, the gateway and the broker ...")
    return 0
