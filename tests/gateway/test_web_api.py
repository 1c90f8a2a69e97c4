"""The JSON API and live stream of the gateway's web layer, through aiohttp's real test server.

Users are real (scrypt hashes in a SQLite file), the view is a MemoryView over a real LiveState fed with
contract models. Every test asserts on what a client sees: status codes, bodies, pushed messages.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from civiq.clock import FakeClock, local_day
from civiq.contract import CounterState, QueueSnapshot, ServiceQueue
from civiq.gateway.web import UserStore, create_app, ticket_token
from civiq.gateway.web.memory import MemoryView, sample_view
from civiq.gateway.web.openapi import openapi_document

SECRET = b"test-secret-0123456789abcdef"
PASSWORDS = {"admin": "admin-pass-1", "lan": "lan-pass-123", "minh": "minh-pass-123", "tech": "tech-pass-123",
             "viewer": "viewer-pass-1"}


@dataclass
class Env:
    view: MemoryView
    users: UserStore
    server: TestServer
    clock: FakeClock

    async def client(self, user: str | None = None) -> tuple[TestClient, str]:
        """A client logged in as ``user`` (or anonymous) and its CSRF token."""
        c = TestClient(self.server)
        await c.start_server()
        if user is None:
            return c, ""
        r = await c.post("/login", data={"user": user, "password": PASSWORDS[user], "next": "/"},
                         allow_redirects=False)
        assert r.status == 303, await r.text()
        me = await (await c.get("/api/v1/me")).json()
        return c, me["csrf"]


@pytest.fixture
async def env(tmp_path, clock: FakeClock) -> AsyncIterator[Env]:
    users = UserStore(tmp_path / "users.db")
    users.add_user("admin", PASSWORDS["admin"], "province_admin")
    users.add_user("lan", PASSWORDS["lan"], "center_manager", center="hcm-q1")
    users.add_user("minh", PASSWORDS["minh"], "center_manager", center="hcm-q3")
    users.add_user("tech", PASSWORDS["tech"], "technician")
    users.add_user("viewer", PASSWORDS["viewer"], "viewer")
    view = sample_view(clock)
    app = create_app(view, users, secret=SECRET, public_base_url="http://gw.test", clock=clock,
                     live_interval_s=0.05)
    server = TestServer(app)
    await server.start_server()
    clients: list[TestClient] = []
    e = Env(view, users, server, clock)
    orig = e.client

    async def tracked(user: str | None = None) -> tuple[TestClient, str]:
        c, tok = await orig(user)
        clients.append(c)
        return c, tok

    e.client = tracked  # type: ignore[method-assign]
    try:
        yield e
    finally:
        for c in clients:
            await c.close()
        await server.close()
        users.close()


def h(csrf: str) -> dict[str, str]:
    return {"X-CSRF-Token": csrf}


# ------------------------------------------------------------------------------------------ reads
async def test_overview_lists_what_the_user_may_see(env: Env) -> None:
    admin, _ = await env.client("admin")
    rows = (await (await admin.get("/api/v1/overview")).json())["centers"]
    assert [r["center"] for r in rows] == ["hcm-q1", "hcm-q3"]
    q1 = rows[0]
    assert (q1["waiting"], q1["counters_open"], q1["counters_total"], q1["served_today"]) == (23, 3, 5, 147)

    lan, _ = await env.client("lan")
    rows = (await (await lan.get("/api/v1/overview")).json())["centers"]
    assert [r["center"] for r in rows] == ["hcm-q1"]


async def test_anonymous_gets_401_on_every_api_read(env: Env) -> None:
    anon, _ = await env.client()
    for path in ("/api/v1/overview", "/api/v1/centers/hcm-q1", "/api/v1/devices", "/api/v1/alerts",
                 "/api/v1/centers/hcm-q1/history", "/api/v1/centers/hcm-q1/advice", "/api/v1/me"):
        r = await anon.get(path)
        assert r.status == 401, path
        assert (await r.json())["error"] == "log in first"


async def test_center_detail_and_unknown_center(env: Env) -> None:
    admin, _ = await env.client("admin")
    c = await (await admin.get("/api/v1/centers/hcm-q1")).json()
    assert c["services"]["A"]["waiting"] == 12 and c["services"]["A"]["name"] == "Đất đai"
    assert c["counters"]["3"]["ticket"] == "B067"
    r = await admin.get("/api/v1/centers/nowhere")
    assert r.status == 404 and "nowhere" in (await r.json())["error"]


async def test_manager_of_a_cannot_read_or_change_b(env: Env) -> None:
    lan, csrf = await env.client("lan")  # manager of hcm-q1
    assert (await lan.get("/api/v1/centers/hcm-q1")).status == 200
    for path in ("/api/v1/centers/hcm-q3", "/api/v1/centers/hcm-q3/history", "/api/v1/centers/hcm-q3/advice",
                 "/api/v1/centers/hcm-q3/daily", "/api/v1/devices?center=hcm-q3", "/api/v1/alerts?center=hcm-q3",
                 "/api/v1/silences?center=hcm-q3", "/api/v1/centers/unknown-center"):
        r = await lan.get(path)
        assert r.status == 403, path
    # changes on B: counter command, alert ack, silence, advice
    r = await lan.post("/api/v1/centers/hcm-q3/counters/1/next", headers=h(csrf))
    assert r.status == 403
    r = await lan.post(f"/api/v1/alerts/{quote('hcm-q3/pi-2/node_offline', safe='')}/ack", headers=h(csrf))
    assert r.status == 403
    r = await lan.post("/api/v1/silences", json={"center": "hcm-q3", "minutes": 30, "reason": "x"}, headers=h(csrf))
    assert r.status == 403
    r = await lan.post("/api/v1/centers/hcm-q3/advice/apply", json={"advice_id": "adv-1"}, headers=h(csrf))
    assert r.status == 403
    assert env.view.commands == [] and env.view.silence_list == []
    assert env.view.active_alerts["hcm-q3/pi-2/node_offline"]["acked_by"] is None
    # and the pages
    r = await lan.get("/centers/hcm-q3")
    assert r.status == 403 and "không có quyền" in (await r.text())
    assert (await lan.get("/devices?center=hcm-q3")).status == 403
    # listings without a center are limited to the manager's own
    alerts = (await (await lan.get("/api/v1/alerts")).json())["alerts"]
    assert alerts == []
    nodes = (await (await lan.get("/api/v1/devices")).json())["nodes"]
    assert {n["center"] for n in nodes} == {"hcm-q1"}


async def test_history_window_and_bad_parameters(env: Env) -> None:
    admin, _ = await env.client("admin")
    now = env.clock.now()
    since = (now - timedelta(minutes=30)).isoformat()
    r = await admin.get("/api/v1/centers/hcm-q1/history", params={"metric": "waiting", "since": since})
    body = await r.json()
    assert r.status == 200 and body["metric"] == "waiting"
    assert 9 <= len(body["points"]) <= 11 and all(p[0] >= since for p in body["points"])
    for params, why in (({"metric": "temperature"}, "unknown metric"),
                        ({"since": "yesterday"}, "ISO 8601"),
                        ({"since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()}, "before"),
                        ({"since": (now - timedelta(days=40)).isoformat()}, "31 days")):
        r = await admin.get("/api/v1/centers/hcm-q1/history", params=params)
        assert r.status == 400, params
        assert why in (await r.json())["error"]
    days = (await (await admin.get("/api/v1/centers/hcm-q1/daily?days=3")).json())["days"]
    assert len(days) == 3 and days[-1]["day"] == local_day(now)
    assert (await admin.get("/api/v1/centers/hcm-q1/daily?days=x")).status == 400


async def test_advice_read_and_apply(env: Env) -> None:
    lan, csrf = await env.client("lan")
    adv = (await (await lan.get("/api/v1/centers/hcm-q1/advice")).json())["advice"]
    assert adv["id"] == "adv-1" and adv["changes"][0]["after"] == ["A", "B"]
    r = await lan.post("/api/v1/centers/hcm-q1/advice/apply", json={"advice_id": "old"}, headers=h(csrf))
    assert r.status == 409 and "no longer current" in (await r.json())["error"]
    r = await lan.post("/api/v1/centers/hcm-q1/advice/apply", json={"advice_id": "adv-1"}, headers=h(csrf))
    assert r.status == 200 and (await r.json())["policy_version"] == 1
    assert env.view.applied == [("hcm-q1", "adv-1", "lan")]
    tech, tcsrf = await env.client("tech")
    r = await tech.post("/api/v1/centers/hcm-q1/advice/apply", json={"advice_id": "adv-1"}, headers=h(tcsrf))
    assert r.status == 403


# ------------------------------------------------------------------------------------------ commands
async def test_counter_command_is_relayed_as_a_countercmd(env: Env) -> None:
    tech, csrf = await env.client("tech")
    r = await tech.post("/api/v1/centers/hcm-q1/counters/2/next", headers=h(csrf))
    assert r.status == 202
    body = await r.json()
    assert body["node"] == "pi-1" and body["action"] == "next"
    (center, cmd, user), = env.view.commands
    assert (center, cmd.counter, cmd.action, user) == ("hcm-q1", "2", "next", "tech")
    assert cmd.id == body["id"]
    r = await tech.post("/api/v1/centers/hcm-q1/counters/2/transfer", json={"to_service": "B"}, headers=h(csrf))
    assert r.status == 202 and env.view.commands[-1][1].to_service == "B"


async def test_counter_command_errors(env: Env) -> None:
    tech, csrf = await env.client("tech")
    url = "/api/v1/centers/hcm-q1/counters/2"
    r = await tech.post(f"{url}/explode", headers=h(csrf))
    assert r.status == 400 and "unknown action 'explode'" in (await r.json())["error"]
    r = await tech.post("/api/v1/centers/hcm-q1/counters/99/next", headers=h(csrf))
    assert r.status == 404 and "no counter '99'" in (await r.json())["error"]
    r = await tech.post(f"{url}/transfer", headers=h(csrf))
    assert r.status == 400 and "to_service" in (await r.json())["error"]
    r = await tech.post(f"{url}/next", data=b"{not json", headers={**h(csrf), "Content-Type": "application/json"})
    assert r.status == 400 and "not valid JSON" in (await r.json())["error"]
    r = await tech.post(f"{url}/next", json=[1, 2], headers=h(csrf))
    assert r.status == 400 and "JSON object" in (await r.json())["error"]
    r = await tech.post(f"{url}/next", json={"color": "red"}, headers=h(csrf))
    assert r.status == 400 and "field 'color'" in (await r.json())["error"]
    r = await tech.post(f"{url}/next", data=b"{" + b" " * 70_000 + b"}",
                        headers={**h(csrf), "Content-Type": "application/json"})
    assert r.status == 413 and "limit" in (await r.json())["error"]
    assert env.view.commands == []


async def test_viewer_is_read_only(env: Env) -> None:
    viewer, csrf = await env.client("viewer")
    assert (await viewer.get("/api/v1/centers/hcm-q3")).status == 200
    r = await viewer.post("/api/v1/centers/hcm-q1/counters/1/next", headers=h(csrf))
    assert r.status == 403 and "viewer" in (await r.json())["error"]
    r = await viewer.post(f"/api/v1/alerts/{quote('hcm-q3/pi-2/node_offline', safe='')}/ack", headers=h(csrf))
    assert r.status == 403
    r = await viewer.post("/api/v1/silences", json={"center": "hcm-q3", "minutes": 5, "reason": "x"},
                          headers=h(csrf))
    assert r.status == 403


async def test_acknowledge_and_silence(env: Env) -> None:
    minh, csrf = await env.client("minh")  # manager of hcm-q3, where the alerts are
    key = "hcm-q3/pi-1/printer-1/printer_paper_out"
    r = await minh.post(f"/api/v1/alerts/{quote(key, safe='')}/ack", headers=h(csrf))
    assert r.status == 200 and (await r.json())["acked_by"] == "minh"
    alerts = (await (await minh.get("/api/v1/alerts")).json())["alerts"]
    assert {a["key"]: a["acked_by"] for a in alerts}[key] == "minh"
    r = await minh.post("/api/v1/alerts/hcm-q3%2Fnothing/ack", headers=h(csrf))
    assert r.status == 404

    r = await minh.post("/api/v1/silences", headers=h(csrf),
                        json={"center": "hcm-q3", "node": "pi-2", "minutes": 90, "reason": "thay nguồn"})
    assert r.status == 201
    s = await r.json()
    assert s["until"] == (env.clock.now() + timedelta(minutes=90)).isoformat() and s["user"] == "minh"
    listed = (await (await minh.get("/api/v1/silences")).json())["silences"]
    assert [x["reason"] for x in listed] == ["thay nguồn"]
    for body, why in (({"center": "hcm-q3", "reason": "x"}, "exactly one"),
                      ({"center": "hcm-q3", "minutes": 5, "until": "2030-01-01T00:00:00Z", "reason": "x"},
                       "exactly one"),
                      ({"center": "hcm-q3", "until": "2020-01-01T00:00:00Z", "reason": "x"}, "future"),
                      ({"center": "hcm-q3", "minutes": 5, "reason": ""}, "reason"),
                      ({"center": "HCM Q3!", "minutes": 5, "reason": "x"}, "center")):
        r = await minh.post("/api/v1/silences", json=body, headers=h(csrf))
        assert r.status == 400, body
        assert why in (await r.json())["error"], body


# ------------------------------------------------------------------------------------------ public
async def test_public_ticket_shows_only_whitelisted_fields(env: Env) -> None:
    anon, _ = await env.client()
    day = local_day(env.clock.now())
    env.view.put_ticket("hcm-q1", day, "B070", service="B", state="waiting", ahead=3, eta_s=None,
                        phone="0909 123 456", citizen="Nguyễn Văn A")
    tok = ticket_token(SECRET, "hcm-q1", day, "B070")
    r = await anon.get(f"/api/v1/public/tickets/{tok}")
    body = await r.json()
    assert r.status == 200 and body["ticket"] == "B070" and body["ahead"] == 3 and body["eta_s"] is None
    assert "phone" not in body and "citizen" not in body
    page = await (await anon.get(f"/t/{tok}")).text()
    assert "B070" in page and "0909" not in page and "Nguyễn Văn A" not in page
    forged = ticket_token(b"another secret, not ours", "hcm-q1", day, "B070")
    assert (await anon.get(f"/api/v1/public/tickets/{forged}")).status == 404
    assert (await anon.get(f"/t/{forged}")).status == 404
    unknown = ticket_token(SECRET, "hcm-q1", day, "Z999")
    assert (await (await anon.get(f"/api/v1/public/tickets/{unknown}")).json())["found"] is False


async def test_openapi_documents_every_api_route(env: Env) -> None:
    anon, _ = await env.client()
    doc = await (await anon.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.") and "SilenceBody" in doc["components"]["schemas"]
    documented = set(doc["paths"]) | {"/api/v1/openapi.json"}
    served = {r.resource.canonical for r in env.server.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/v1")}
    assert served == documented
    assert openapi_document()["paths"]["/api/v1/silences"]["post"]["responses"]["201"]


async def test_pages_escape_device_and_config_text(env: Env) -> None:
    evil = '<script>alert("x")</script>'
    env.view.state.set_center_name("hcm-q1", evil)
    admin, _ = await env.client("admin")
    page = await (await admin.get("/centers/hcm-q1")).text()
    assert evil not in page
    assert "&lt;script&gt;" in page  # the title and heading, escaped by the server
    assert "\\u003cscript\\u003e" in page  # the boot JSON, which can never close its <script> element


# ------------------------------------------------------------------------------------------ live stream
async def _next_json(ws, timeout: float = 2.0) -> dict:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def test_live_pushes_a_change_within_a_second_and_only_the_users_center(env: Env) -> None:
    lan, _ = await env.client("lan")
    async with lan.ws_connect("/api/v1/live?watch=overview") as ws:
        first = await _next_json(ws)
        assert first["type"] == "overview" and [r["center"] for r in first["centers"]] == ["hcm-q1"]
        now = env.clock.now()
        snap = QueueSnapshot(ts=now + timedelta(seconds=1), day=local_day(now),
                             services={"A": ServiceQueue(waiting=31, oldest_wait_s=60)},
                             counters={"1": CounterState(state="open", services=["A"])})
        t0 = time.monotonic()
        env.view.state.apply_queue("hcm-q1", "pi-1", snap, now)
        msg = await _next_json(ws, timeout=1.0)
        assert time.monotonic() - t0 < 1.0
        assert msg["centers"][0]["waiting"] == 31
        # a change in another center does not reach lan at all (the filtered message is the same)
        env.view.state.apply_queue("hcm-q3", "pi-1", QueueSnapshot(ts=now + timedelta(seconds=2),
                                   day=local_day(now), services={"A": ServiceQueue(waiting=99)}), now)
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.4)


async def test_live_center_and_ticket_authorization(env: Env) -> None:
    lan, _ = await env.client("lan")
    r = await lan.get("/api/v1/live?watch=center&center=hcm-q3")
    assert r.status == 403
    anon, _ = await env.client()
    assert (await anon.get("/api/v1/live?watch=overview")).status == 401
    assert (await anon.get("/api/v1/live?watch=ticket&token=bogus.token")).status == 404
    async with lan.ws_connect("/api/v1/live?watch=center&center=hcm-q1") as ws:
        msg = await _next_json(ws)
        assert msg["type"] == "center" and msg["center"]["counters"]["1"]["ticket"] == "A042"
        assert msg["advice"]["id"] == "adv-1"

    day = local_day(env.clock.now())
    tok = ticket_token(SECRET, "hcm-q1", day, "A051")
    async with anon.ws_connect(f"/api/v1/live?watch=ticket&token={tok}") as ws:
        assert (await _next_json(ws))["ticket"]["ahead"] == 8
        env.view.put_ticket("hcm-q1", day, "A051", service="A", state="called", ahead=0, counter="2")
        msg = await _next_json(ws, timeout=1.0)
        assert msg["ticket"]["state"] == "called" and msg["ticket"]["counter"] == "2"
