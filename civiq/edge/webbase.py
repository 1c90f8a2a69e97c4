"""The plumbing of the agent's local HTTP server (:mod:`civiq.edge.web` holds its routes): JSON answers and the
rule that anything that acts answers only to this machine (or to the LAN addresses a route lists).

    >>> json_response({"ok": True}).text
    '{"ok": true}'
"""

from __future__ import annotations

import json

from aiohttp import web


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, ensure_ascii=False, default=str), status=status,
                        content_type="application/json")


LOOPBACK = ("127.0.0.1", "::1")


@web.middleware
async def local_changes_only(request: web.Request, handler):  # noqa: ANN001, ANN201
    """The QR page may be served to the LAN (``http.host: 0.0.0.0`` for an HDMI screen elsewhere); anything
    that acts (test print, display test, the simulator's buttons) answers only to this machine."""
    if request.method != "GET" and request.remote not in LOOPBACK and not _allowed(request):
        return json_response({"ok": False, "error": "only from this machine"}, 403)
    return await handler(request)


def _allowed(request: web.Request) -> bool:
    """A route may list LAN addresses it also answers to (the touch kiosk: ``hall.kiosk_allow``)."""
    handler = getattr(request.match_info, "handler", None)
    return request.remote in getattr(handler, "allow_from", ())


def agent_app(routes: list[web.RouteDef]) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=[local_changes_only])
    app.add_routes(routes)
    return app
