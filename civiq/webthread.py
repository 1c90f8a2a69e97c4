"""An aiohttp server in a background thread (shared by the edge agent and the gateway)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from aiohttp import web


class WebThread:
    """Serve an aiohttp application (or a list of routes) from a background thread with its own event
    loop, so threaded code (the edge agent, the gateway) can have a web server. ``port=0`` picks a free
    port (see ``.port`` after :meth:`start`)."""

    def __init__(self, app: web.Application | list[web.RouteDef], host: str = "127.0.0.1", port: int = 0,
                 on_started: Callable[[int], None] | None = None, max_body: int = 64 * 1024) -> None:
        self.app, self.host, self.port = app, host, port
        self.max_body = max_body
        self.on_started = on_started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> WebThread:
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
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
        app = self.app
        if not isinstance(app, web.Application):
            app = web.Application(client_max_size=self.max_body)
            app.add_routes(self.app)
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
