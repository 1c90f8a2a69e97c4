"""``hall.kiosk_allow``: a kiosk screen elsewhere on the LAN may issue tickets, nothing else may act.

The agent's real HTTP app (with its ``local_changes_only`` middleware) is called from real source addresses:
127.0.0.2 and 127.0.0.3 are not "this machine" for the middleware (only 127.0.0.1 and ::1 are), so they stand
for two devices on the center's LAN — one listed in ``hall.kiosk_allow``, one not.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from civiq.edge.sim.example import sim_center_yaml
from civiq.edge.web import agent_app, agent_routes
from civiq.webthread import WebThread

KIOSK, STRANGER = "127.0.0.3", "127.0.0.2"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Any, int]]:
    text = sim_center_yaml(free_port(), http_port=0, state_dir=tmp_path / "state")
    path = tmp_path / "center.yaml"
    path.write_text(text + f'hall: {{kiosk_allow: ["{KIOSK}"]}}\n', encoding="utf-8")
    agent = make_agent(load_config(path), simulate=True)
    agent.start()
    server = WebThread(agent_app(agent_routes(agent))).start()
    try:
        yield agent, server.port
    finally:
        agent.stop()
        server.stop()
        agent.sim.stop()


def post(port: int, path: str, body: dict, source: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def get(port: int, path: str, source: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def test_only_listed_addresses_issue_from_the_kiosk_and_nothing_else(served) -> None:  # noqa: ANN001
    agent, port = served
    status, body = post(port, "/api/kiosk/issue", {"service": "A"}, STRANGER)
    assert status == 403, body  # a LAN device not listed: no ticket
    assert agent.engine.snapshot().services["A"].issued_today == 0
    status, body = post(port, "/api/kiosk/issue", {"service": "A"}, KIOSK)
    assert status == 200 and body["ticket"] == "A001", body
    assert "A001" in agent.sim.emulator_of("p1").wait_tickets(1, timeout=10)[0].all_text()
    # the listed screen may issue, and only that: the counter API, tests and issuing by the API stay local
    assert post(port, "/api/counters/c1/next", {}, KIOSK)[0] == 403
    assert post(port, "/api/issue/A", {}, KIOSK)[0] == 403
    assert post(port, "/api/test-print", {}, KIOSK)[0] == 403
    assert agent.engine.counter("c1").ticket is None
    # every device on the LAN may read the pages (the TV in the hall)
    assert get(port, "/kiosk", STRANGER) == 200 and get(port, "/board", STRANGER) == 200
    # the Pi itself always may
    status, body = post(port, "/api/kiosk/issue", {"service": "B"}, "127.0.0.1")
    assert status == 200 and body["ticket"] == "B001", body
