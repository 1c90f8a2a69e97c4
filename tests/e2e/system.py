"""Whole-system parts for the gateway e2e tests: simulated centers (in-process or as ``civiq edge run --simulate``
processes) and the API as a logged-in user; the gateway starter and the webhook receiver come from the shared
harness (civiq/dev/harness.py), as the benchmarks' do.

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
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

from civiq.dev.broker import free_port
from civiq.dev.harness import ADMIN, Webhook, gateway_settings, start_gateway, wait_for
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from civiq.edge.sim.example import DEFAULT_NAME, write_sim_center
from civiq.gateway.service import Gateway

ROOT = Path(__file__).resolve().parents[2]
__all__ = ["ADMIN", "ApiClient", "EdgeProcess", "SimCenter", "Webhook", "base_url", "center_config",
           "gateway_settings", "start_gateway"]


# ------------------------------------------------------------------------------------------ gateway
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
