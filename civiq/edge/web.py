"""The agent's local HTTP server (127.0.0.1 by default): the QR page for an HDMI screen, read-only state for
``civiq edge doctor``, and, in simulation, the control API (docs/simulator.md).

aiohttp runs in its own thread with its own event loop; handlers call into the agent's thread-safe methods.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, ensure_ascii=False, default=str), status=status,
                        content_type="application/json")


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

    async def index(request: web.Request) -> web.Response:
        raise web.HTTPFound("/qr")

    return [web.get("/", index), web.get("/qr", qr_page), web.get("/api/state", state),
            web.get("/api/health", health)]


class LocalServer:
    """Serve aiohttp routes from a background thread. ``port=0`` picks a free port (see ``.port``)."""

    def __init__(self, routes: list[web.RouteDef], host: str = "127.0.0.1", port: int = 0,
                 on_started: Callable[[int], None] | None = None) -> None:
        self.routes, self.host, self.port = routes, host, port
        self.on_started = on_started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> LocalServer:
        self._thread = threading.Thread(target=self._run, name="edge-http", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("local HTTP server did not start")
        if self.error:
            raise self.error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as e:  # noqa: BLE001 - reported to start()
            self.error = e
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
        loop.close()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024)
        app.add_routes(self.routes)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # noqa: SLF001 - aiohttp exposes no port
        if sockets:
            self.port = sockets[0].getsockname()[1]
        if self.on_started:
            self.on_started(self.port)

    def stop(self) -> None:
        if self._loop and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)
