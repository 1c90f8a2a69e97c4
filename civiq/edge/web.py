"""The agent's local HTTP server (127.0.0.1 by default): the QR page for an HDMI screen, read-only state for
``civiq edge doctor``, and, in simulation, the control API (docs/simulator.md).

aiohttp runs in its own thread with its own event loop; handlers call into the agent's thread-safe methods.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from civiq.edge.webbase import LOOPBACK, agent_app, json_response, local_changes_only

__all__ = ["LOOPBACK", "agent_app", "agent_routes", "json_response", "local_changes_only"]

log = logging.getLogger(__name__)


def agent_routes(agent) -> list[web.RouteDef]:  # noqa: ANN001
    from civiq.edge.devices.qrboard.page import QrItem, render_qr_page

    async def state(request: web.Request) -> web.Response:
        return json_response(agent.engine.snapshot().model_dump(mode="json"))

    async def health(request: web.Request) -> web.Response:
        return json_response(agent.health().model_dump(mode="json"))

    async def qr_page(request: web.Request) -> web.Response:
        snap = agent.engine.snapshot()
        items = [QrItem(title_vi=s.name_vi, title_en=s.name_en, url=s.portal_url) for s in agent.services.values()]
        waits = {p: (s.name_vi, s.name_en, snap.services[p].waiting if p in snap.services else 0,
                     snap.services[p].eta_s if p in snap.services else None) for p, s in agent.services.items()}
        html = render_qr_page(agent.cfg.center.name, items, waits, refresh_s=10)
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    async def test_print(request: web.Request) -> web.Response:
        printer = request.query.get("printer") or None
        try:
            await asyncio.to_thread(agent.test_print, printer)
        except KeyError:
            return json_response({"ok": False, "error": f"no printer {printer!r}"}, 404)
        except Exception as e:  # noqa: BLE001 - the technician reads the reason
            return json_response({"ok": False, "error": str(e)}, 503)
        return json_response({"ok": True, "printers": [printer] if printer else list(agent.hw.printers)})

    async def display_test(request: web.Request) -> web.Response:
        results = await asyncio.to_thread(agent.display_test)
        return json_response({"ok": all(v == "ok" for v in results.values()), "displays": results})

    async def voice_wav(request: web.Request) -> web.Response:
        ann = agent.announcer.get(request.match_info["id"]) if agent.announcer is not None else None
        if ann is None:
            return json_response({"ok": False, "error": "no such announcement (only recent ones are kept)"}, 404)
        return web.Response(body=ann.wav, content_type="audio/wav", headers={"Cache-Control": "max-age=3600"})

    async def voice_recent(request: web.Request) -> web.Response:
        if agent.announcer is None:
            return json_response([])
        return json_response([a.json() for a in agent.announcer.recent_list()])

    async def say_test(request: web.Request) -> web.Response:
        text = request.query.get("text") or None
        try:
            ann = await asyncio.to_thread(agent.say_test, text)
        except KeyError as e:
            return json_response({"ok": False, "error": str(e).strip("'\"")}, 404)
        except Exception as e:  # noqa: BLE001 - the technician reads the reason
            return json_response({"ok": False, "error": str(e)}, 503)
        return json_response({"ok": ann.error is None, "error": ann.error, "announcement": ann.json(),
                              "speaker": agent.announcer.health().model_dump(mode="json")})

    async def index(request: web.Request) -> web.Response:
        raise web.HTTPFound("/qr")

    from civiq.edge.counter_api import counter_routes
    from civiq.edge.hall import hall_routes
    from civiq.edge.rating_web import rating_routes

    return [web.get("/", index), web.get("/qr", qr_page), web.get("/api/state", state),
            web.get("/api/health", health), web.post("/api/test-print", test_print),
            web.post("/api/display-test", display_test), web.get(r"/api/voice/{id:[0-9a-z-]+}.wav", voice_wav),
            web.get("/api/voice", voice_recent), web.post("/api/say-test", say_test), *counter_routes(agent),
            *hall_routes(agent), *rating_routes(agent)]
