"""The live stream: a WebSocket at ``/api/v1/live`` that pushes what a page shows whenever the view changes.

One :class:`LiveHub` per app polls ``view.version()`` every 200 ms. When it moves, the hub drops its memo
and wakes every connection; each connection asks the hub for what it watches (the hub computes each piece
once per change, however many browsers watch it) and sends a message only when its JSON differs from the
last one sent. So a change reaches the browser within ~0.2 s plus the time to compute the view.

Query parameters: ``watch=overview`` (default), ``watch=center&center=<id>``, ``watch=devices[&center=<id>]``
(all need a session; a center manager only ever gets their center), or ``watch=ticket&token=<t>`` (public:
the ticket token is the proof). Messages are JSON objects with ``type`` = overview, center, devices or ticket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from civiq.gateway.web.api import public_ticket_payload
from civiq.gateway.web.auth import User
from civiq.gateway.web.context import ApiError, ctx_of, json_dumps, require_center, require_user, sid_of
from civiq.gateway.web.view import GatewayView
from civiq.tickettoken import verify_ticket_token

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SESSION_RECHECK_S = 60.0


class LiveHub:
    """Watches the view's version and memoizes what connections ask for, once per change."""

    def __init__(self, view: GatewayView, interval: float = 0.2) -> None:
        self.view = view
        self.interval = interval
        self.version: int | None = None
        self._changed = asyncio.Event()
        self._memo: dict[Any, asyncio.Future[Any]] = {}

    async def run(self) -> None:
        while True:
            try:
                v = self.view.version()
            except Exception:  # noqa: BLE001 - a broken view must not stop the stream
                log.exception("view.version() failed")
                v = self.version
            if v != self.version:
                self.version = v
                self._memo = {}
                ev, self._changed = self._changed, asyncio.Event()
                ev.set()
            await asyncio.sleep(self.interval)

    def changed(self) -> asyncio.Event:
        """An event set at the next change (take it *before* reading, to miss nothing)."""
        return self._changed

    async def get(self, key: Any, fn: Callable[..., Any], *args: Any) -> Any:
        memo = self._memo
        fut = memo.get(key)
        if fut is None:
            fut = asyncio.ensure_future(asyncio.to_thread(fn, *args))
            memo[key] = fut

            def _forget_failure(f: asyncio.Future[Any], key: Any = key) -> None:
                if f.cancelled() or f.exception() is not None:
                    memo.pop(key, None)

            fut.add_done_callback(_forget_failure)
        return await asyncio.shield(fut)


async def build_messages(hub: LiveHub, user: User | None, watch: str, center: str | None,
                         ticket: tuple[str, str, str] | None) -> list[dict[str, Any]]:
    view = hub.view
    if watch == "ticket":
        assert ticket is not None
        t = await hub.get(("ticket", ticket), view.public_ticket, *ticket)
        return [{"type": "ticket", "ticket": public_ticket_payload(t, ticket[2])}]
    assert user is not None
    if watch == "overview":
        rows = await hub.get("overview", view.overview)
        return [{"type": "overview", "centers": [r for r in rows if user.sees(r["center"])]}]
    if watch == "center":
        assert center is not None
        c = await hub.get(("center", center), view.center, center)
        adv = await hub.get(("advice", center), view.advice, center)
        return [{"type": "center", "center": c, "advice": adv}]
    nodes = await hub.get(("devices", center), view.devices, center)
    alerts = await hub.get(("alerts", center), view.alerts, center)
    silences = await hub.get(("silences", center), view.silences, center)
    return [{"type": "devices", "center": center, "nodes": nodes, "alerts": alerts, "silences": silences}]


@routes.get("/api/v1/live")
async def live(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    watch = request.query.get("watch", "overview")
    center = request.query.get("center") or None
    user: User | None = None
    ticket: tuple[str, str, str] | None = None
    if watch == "ticket":
        ref = verify_ticket_token(ctx.secret, request.query.get("token", ""))
        if ref is None:
            raise ApiError(404, "no such ticket")
        ticket = (ref.center, ref.day, ref.label)
    elif watch in ("overview", "center", "devices"):
        user = require_user(request)
        if watch == "center" and center is None:
            raise ApiError(400, "watch=center needs center=<id>")
        if center is not None:
            require_center(request, center)
        elif watch == "devices":
            center = user.center
    else:
        raise ApiError(400, f"unknown watch {watch!r}; one of overview, center, devices, ticket")

    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    await ws.prepare(request)

    async def reader() -> None:
        async for msg in ws:  # the client sends nothing we need; this only notices the close
            if msg.type == WSMsgType.ERROR:
                break

    reading = asyncio.ensure_future(reader())
    last: dict[str, str] = {}
    sid = sid_of(request)
    checked = ctx.clock.monotonic()
    hub: LiveHub = ctx.hub
    try:
        while not ws.closed:
            changed = hub.changed()
            try:
                messages = await build_messages(hub, user, watch, center, ticket)
            except Exception:  # noqa: BLE001 - keep the connection; the next change may work
                log.exception("building live messages failed")
                messages = []
            for m in messages:
                text = json_dumps(m)
                if last.get(m["type"]) != text:
                    await ws.send_str(text)
                    last[m["type"]] = text
            waiter = asyncio.ensure_future(changed.wait())
            done, _ = await asyncio.wait({reading, waiter}, timeout=SESSION_RECHECK_S,
                                         return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if reading in done:
                break
            if sid is not None and ctx.clock.monotonic() - checked >= SESSION_RECHECK_S:
                checked = ctx.clock.monotonic()
                if await asyncio.to_thread(ctx.users.session, sid, ctx.clock.now().timestamp()) is None:
                    await ws.close(code=4401, message=b"session ended")
                    break
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        reading.cancel()
        with contextlib.suppress(Exception):
            await ws.close()
    return ws
