"""The one harness the tests and the benchmarks share: waiting on a condition, a real Mosquitto, an MQTT
recorder, VictoriaMetrics, a gateway (in this process or as ``civiq gateway run``) and a webhook receiver
standing in for on-call's chat bot. Everything is real and on free ports; nothing here mocks a part.

    broker = start_broker(tmp_path)
    gw = start_gateway(gateway_settings(tmp_path / "gw", broker.port, alerts={"webhooks": [hook.url]}))
    wait_for(lambda: hook.messages(kind="node_offline"), timeout=30, what="the offline alert")

``tests/conftest.py`` (fixtures), ``tests/e2e/system.py`` and ``bench/common.py`` import from here.

>>> wait_for(lambda: 42, what="the answer")
42
>>> try:
...     wait_for(lambda: None, timeout=0.05, what="nothing")
... except TimeoutError as e:
...     print(e)
timed out after 0.05s waiting for nothing
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from civiq.dev.broker import Mosquitto, free_port, wait_port
from civiq.dev.tsdb import VictoriaMetrics as _VictoriaMetrics
from civiq.errors import CiviqError
from civiq.mqttclient import make_client

if TYPE_CHECKING:
    from civiq.clock import Clock
    from civiq.gateway.service import Gateway
    from civiq.gateway.settings import GatewaySettings

REPO = Path(__file__).resolve().parents[2]
ADMIN = ("tinh", "mat-khau-tinh-1")  # a province admin of the in-process gateway
T = TypeVar("T")


# ============================================================================================ waiting
class WaitTimeout(CiviqError, AssertionError, TimeoutError):
    """A condition did not come true in time: a failed test (AssertionError) or a benchmark's TimeoutError."""


def wait_for(cond: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = "") -> T:
    """Poll ``cond`` until it returns something truthy (and return it); after ``timeout`` seconds raise
    :class:`WaitTimeout` naming ``what``. Never sleep-and-hope: wait on what a user would see."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what or cond}")
        time.sleep(interval)


wait_until = wait_for  # the benchmarks' name


# ============================================================================================ broker
def start_broker(workdir: Path | None = None, *, persistent: bool = False, extra_config: str = "") -> Mosquitto:
    """A started Mosquitto on a free port (``persistent``: sessions and retained messages survive
    ``stop()``/``start()``, as a production broker's). Its files go to ``workdir`` (else a temp dir that
    ``stop()`` leaves to the caller)."""
    return Mosquitto(workdir=workdir, persistent=persistent, extra_config=extra_config).start()


class Recorder:
    """A plain MQTT subscriber that records every message (topic, payload, retain) and its arrival time."""

    def __init__(self, host: str, port: int, topics: list[str] | str = "#", persistent: bool = False) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.arrivals: list[tuple[float, str]] = []  # (monotonic time, topic) of each message
        self.lock = threading.Lock()
        # persistent: a durable session, so the broker queues for us while we are disconnected
        self.client = make_client(f"rec-{id(self)}", clean_start=not persistent)
        self.client.reconnect_delay_set(0.1, 1)
        self.topics = [topics] if isinstance(topics, str) else topics
        self.connected = threading.Event()
        self.subscribed = threading.Event()

        def on_connect(c, u, f, rc, p=None):  # noqa: ANN001
            for t in self.topics:
                c.subscribe(t, qos=1)
            self.connected.set()

        def on_message(c, u, m):  # noqa: ANN001
            with self.lock:
                self.messages.append((m.topic, m.payload, bool(m.retain)))
                self.arrivals.append((time.monotonic(), m.topic))

        def on_subscribe(c, u, mid, rc, p=None):  # noqa: ANN001
            self.subscribed.set()

        self.client.on_subscribe = on_subscribe
        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.connected.wait(10), "recorder could not connect"
        assert self.subscribed.wait(10), "recorder's subscription was not acknowledged"

    def on(self, suffix: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# ============================================================================================ TSDB
class VictoriaMetrics(_VictoriaMetrics):
    """The VictoriaMetrics runner (civiq/dev/tsdb.py) with what tests and benchmarks read back."""

    def export_when(self, match: str, n_samples: int, timeout: float = 15.0) -> list[dict]:
        """Export once VictoriaMetrics shows at least ``n_samples`` and two reads in a row agree."""
        last: list[int | None] = [None]

        def ready() -> list[dict] | None:
            self.flush()  # recent samples reach search after a flush (otherwise within ~10 s)
            got = self.export(match)
            n = sum(len(s["timestamps"]) for s in got)
            stable = n >= n_samples and n == last[0]
            last[0] = n
            return got if stable else None

        return wait_for(ready, timeout=timeout, interval=0.2, what=f"{n_samples} samples of {match}")

    def samples(self, match: str, n_samples: int) -> Counter:
        """(name, sorted labels, timestamp ms) -> how many samples VictoriaMetrics holds."""
        out: Counter = Counter()
        for s in self.export_when(match, n_samples):
            labels = tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__"))
            for ts in s["timestamps"]:
                out[(s["metric"]["__name__"], labels, ts)] += 1
        return out

    def count_stable(self, match: str, expect: int, timeout: float = 30.0) -> int:
        """Count until it reaches ``expect`` or stops moving for two reads; returns the last count."""
        deadline = time.monotonic() + timeout
        last = -1
        while True:
            n = self.count(match)
            if n >= expect or (n == last and time.monotonic() > deadline - timeout / 2) or \
                    time.monotonic() > deadline:
                return n
            last = n
            time.sleep(0.3)


# ============================================================================================ gateway
def gateway_settings(data_dir: Path, broker_port: int, http_port: int | None = None, **over: Any) -> GatewaySettings:
    """Settings of a test gateway on ``broker_port`` (sections in ``over`` are merged, values replaced)."""
    from civiq.gateway.settings import GatewaySettings

    port = http_port or free_port()
    values: dict[str, Any] = {
        "gateway_id": "gw-e2e", "data_dir": data_dir,
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "keepalive": 5},
        "http": {"host": "127.0.0.1", "port": port, "public_base_url": f"http://127.0.0.1:{port}"},
        "alerts": {"mqtt": False},
    }
    for k, v in over.items():
        values[k] = {**values[k], **v} if isinstance(v, dict) and isinstance(values.get(k), dict) else v
    return GatewaySettings.load(**values)


def start_gateway(settings: GatewaySettings, *, clock: Clock | None = None, channels: list | None = None) -> Gateway:
    """A started gateway in this process, connected and subscribed, with the province admin ``ADMIN``."""
    from civiq.gateway.service import Gateway

    gw = Gateway(settings, clock=clock, channels=channels).start()
    assert gw.ingest.wait_ready(10), "the gateway did not connect to the broker"
    if gw.users.get(ADMIN[0]) is None:
        gw.users.add_user(ADMIN[0], ADMIN[1], "province_admin")
    return gw


def child_env(**extra: str) -> dict[str, str]:
    """Environment for civiq subprocesses: this source tree first on the path (works from a clean clone)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra)
    return env


class GatewayProc:
    """``python -m civiq gateway run --config`` in its own process, with a dashboard user.

    >>> gw = GatewayProc(mqtt_port, Path("/tmp/gw"), alerts={"webhooks": [url]}).start()  # doctest: +SKIP
    """

    USER, PASSWORD = "bench", "bench-password-123"
    extra_env: dict[str, str] = {}  # more environment for the process (e.g. NOTIFY_SOCKET)

    def __init__(self, mqtt_port: int, dir: Path, **settings: Any) -> None:
        import yaml

        self.dir = dir
        self.http_port = free_port()
        dir.mkdir(parents=True, exist_ok=True)
        cfg = {"gateway_id": "gw-bench", "data_dir": str(dir / "data"),
               "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
               "http": {"host": "127.0.0.1", "port": self.http_port,
                        "public_base_url": f"http://127.0.0.1:{self.http_port}"}}
        cfg.update(settings)
        self.config = dir / "gateway.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.http_port}"

    def start(self) -> GatewayProc:
        from civiq.gateway.web.auth import UserStore  # what `civiq gateway user` does, without a process

        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        users = UserStore(self.dir / "data" / "users.db")
        if users.get(self.USER) is None:  # a restart on the same data dir keeps its users
            users.add_user(self.USER, self.PASSWORD, "province_admin")
        users.close()
        with open(self.dir / "gateway.log", "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "civiq", "gateway", "run", "--config",
                                          str(self.config)], cwd=REPO, env=child_env(**self.extra_env),
                                         stdout=log, stderr=log)
        wait_port("127.0.0.1", self.http_port, 60)
        return self

    def metrics(self) -> dict[str, float]:
        """The gateway's /metrics, summed per metric name (labels dropped)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for ln in text.splitlines():
            if ln and not ln.startswith("#"):
                name, _, value = ln.rpartition(" ")
                name = name.split("{", 1)[0]
                try:
                    out[name] = out.get(name, 0.0) + float(value)
                except ValueError:
                    pass
        return out

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# ============================================================================================ on-call
class Webhook:
    """A real HTTP server on 127.0.0.1 that records every JSON body POSTed to it, with its arrival time
    (``time.monotonic()``): the receiver of a gateway's webhook alert channel."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.cond = threading.Condition()
        self.lock = self.cond  # older name
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                t = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    msg = json.loads(body)
                except ValueError:
                    msg = {"unparsable": body.decode("utf-8", "replace")}
                with hook.cond:
                    hook.received.append((t, msg))
                    hook.cond.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)
        self.thread.start()

    def messages(self, kind: str | None = None, state: str | None = None, key: str | None = None) -> list[dict]:
        with self.cond:
            return [m for _, m in self.received if (kind is None or m.get("kind") == kind)
                    and (state is None or m.get("state") == state) and (key is None or m.get("key") == key)]

    def times(self, key: str, state: str) -> list[float]:
        """When (time.monotonic()) each ``state`` message of alert ``key`` arrived."""
        with self.cond:
            return [t for t, m in self.received if m.get("key") == key and m.get("state") == state]

    def summary(self) -> list[tuple[str, str, str]]:
        with self.cond:
            return [(m.get("key", "?"), m.get("state", "?"), m.get("note", "")) for _, m in self.received]

    def first(self, node: str, after: float = 0.0, state: str = "firing", kind: str = "node_offline") -> float | None:
        """When the first ``kind``/``state`` alert of ``node`` arrived at or after ``after``; None if none."""
        with self.cond:
            for t, m in self.received:
                if t >= after and m.get("node") == node and m.get("state") == state and m.get("kind") == kind:
                    return t
        return None

    def early(self, node: str, before: float) -> int:
        """Firing alerts for ``node`` before ``before`` (false alarms: the node was fine then)."""
        with self.cond:
            return sum(1 for t, m in self.received if t < before and m.get("node") == node
                       and m.get("state") == "firing")

    def wait(self, node: str, after: float, timeout: float) -> float | None:
        """Block until :meth:`first` has an answer or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while (t := self.first(node, after)) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return t

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class NotifySocket:
    """A bound AF_UNIX datagram socket standing in for systemd's (``NOTIFY_SOCKET``): records (monotonic time,
    message) of every notification a process sends (``READY=1``, ``WATCHDOG=1``, ``EXTEND_TIMEOUT_USEC=...``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._recv, name="notify-socket", daemon=True)
        self._thread.start()

    def _recv(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))

    def times_of(self, assignment: str, after: float = 0.0) -> list[float]:
        """When messages containing the line ``assignment`` (e.g. ``WATCHDOG=1``) arrived, after ``after``."""
        with self.lock:
            return [t for t, m in self.messages if assignment in m.splitlines() and t > after]

    def max_interval(self, since: float, until: float, assignment: str = "WATCHDOG=1") -> float:
        """The longest time in ``[since, until]`` without ``assignment`` (silence at either end counts)."""
        ts = [t for t in self.times_of(assignment) if since <= t <= until]
        gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
        if ts:
            gaps += [ts[0] - since, until - ts[-1]]
        return max(gaps) if gaps else until - since

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
