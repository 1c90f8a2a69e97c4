"""Whole-system parts for the gateway e2e tests: a gateway on a real broker, simulated centers (in-process or
as ``civiq edge run --simulate`` processes) and a webhook receiver that stands in for on-call's chat bot.

    gw = start_gateway(tmp_path / "gw", broker.port, alerts={"webhooks": [hook.url]})
    center = SimCenter(tmp_path, broker.port, "xa-a").start()
    center.agent.sim.press_button("A")
    wait_for(lambda: gw.view.center("xa-a")["services"]["A"]["waiting"] == 1)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from civiq.edge.sim.example import DEFAULT_NAME, write_sim_center
from civiq.gateway.service import Gateway
from civiq.gateway.settings import GatewaySettings
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
ADMIN = ("tinh", "mat-khau-tinh-1")  # a province admin


# ------------------------------------------------------------------------------------------ gateway
def gateway_settings(data_dir: Path, broker_port: int, http_port: int | None = None, **over: Any) -> GatewaySettings:
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


def start_gateway(settings: GatewaySettings) -> Gateway:
    """A started gateway, connected and subscribed, with the province admin ``ADMIN`` able to log in."""
    gw = Gateway(settings).start()
    assert gw.ingest.wait_ready(10), "the gateway did not connect to the broker"
    if gw.users.get(ADMIN[0]) is None:
        gw.users.add_user(ADMIN[0], ADMIN[1], "province_admin")
    return gw


def base_url(gw: Gateway) -> str:
    return f"http://127.0.0.1:{gw.server.port}"


class ApiClient:
    """The gateway's JSON API as a logged-in user sees it (session cookie, CSRF token on writes)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.csrf = ""

    def login(self, user: str = ADMIN[0], password: str = ADMIN[1]) -> ApiClient:
        form = urllib.parse.urlencode({"user": user, "password": password, "next": "/"}).encode()
        with self.opener.open(f"{self.url}/login", data=form, timeout=10) as r:
            assert r.status == 200, r.status
        self.csrf = self.get("/api/v1/me")["csrf"]
        return self

    def get(self, path: str) -> Any:
        with self.opener.open(f"{self.url}{path}", timeout=10) as r:
            return json.loads(r.read())

    def post(self, path: str, body: object) -> Any:
        req = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-CSRF-Token": self.csrf})
        with self.opener.open(req, timeout=10) as r:
            return json.loads(r.read())


# ------------------------------------------------------------------------------------------ edges
def center_config(workdir: Path, broker_port: int, center: str, node: str, http_port: int,
                  name: str | None = None) -> Path:
    """The simulated example center (civiq/edge/sim/example.py), with the display name of your choice."""
    return write_sim_center(workdir, broker_port, center=center, node=node, http_port=http_port,
                            name=name or DEFAULT_NAME)


class SimCenter:
    """One simulated center: an in-process :class:`EdgeAgent` on emulated hardware (``agent.sim``)."""

    def __init__(self, workdir: Path, broker_port: int, center: str, node: str = "pi-1",
                 name: str | None = None) -> None:
        self.center, self.node = center, node
        self.config = center_config(workdir, broker_port, center, node, free_port(), name)
        self.agent = make_agent(load_config(self.config), simulate=True)

    def start(self) -> SimCenter:
        self.agent.start()
        wait_for(lambda: self.agent.link.connected, timeout=10, what=f"{self.center} connected")
        return self

    def stop(self) -> None:
        try:
            self.agent.stop()
        finally:
            self.agent.sim.stop()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class EdgeProcess:
    """``python -m civiq edge run CONFIG --simulate`` as a real process, driven over its local HTTP API."""

    def __init__(self, workdir: Path, broker_port: int, center: str, node: str = "pi-1",
                 name: str | None = None) -> None:
        self.center, self.node = center, node
        self.http_port = free_port()
        self.config = center_config(workdir, broker_port, center, node, self.http_port, name)
        self.proc: subprocess.Popen | None = None
        self.log = workdir / f"edge-{center}-{node}.log"

    def start(self, timeout: float = 20) -> EdgeProcess:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "civiq", "edge", "run", str(self.config), "--simulate"],
                                     env=_env(), stdout=out, stderr=subprocess.STDOUT)
        out.close()

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                return bool(self.http("/api/state"))
            except OSError:
                return False

        wait_for(up, timeout=timeout, interval=0.05, what=f"local API of {self.center}")
        return self

    def http(self, path: str, method: str = "GET", body: object | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", method=method, data=data,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ------------------------------------------------------------------------------------------ on-call
class Webhook:
    """A real HTTP server on 127.0.0.1 that records every JSON body POSTed to it (with arrival time)."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    msg = json.loads(body)
                except ValueError:
                    msg = {"unparsable": body.decode("utf-8", "replace")}
                with hook.lock:
                    hook.received.append((time.monotonic(), msg))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)
        self.thread.start()

    def messages(self, kind: str | None = None, state: str | None = None, key: str | None = None) -> list[dict]:
        with self.lock:
            return [m for _, m in self.received if (kind is None or m.get("kind") == kind)
                    and (state is None or m.get("state") == state) and (key is None or m.get("key") == key)]

    def times(self, key: str, state: str) -> list[float]:
        """When (time.monotonic()) each ``state`` message of alert ``key`` arrived."""
        with self.lock:
            return [t for t, m in self.received if m.get("key") == key and m.get("state") == state]

    def summary(self) -> list[tuple[str, str, str]]:
        with self.lock:
            return [(m.get("key", "?"), m.get("state", "?"), m.get("note", "")) for _, m in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
