"""The aiohttp application of the gateway's web layer.

>>> from civiq.gateway.web import MemoryView, UserStore, create_app
>>> users = UserStore(":memory:")
>>> app = create_app(MemoryView(), users, secret=b"0123456789abcdef0123", public_base_url="http://gw.local")

Middlewares, outermost first:

1. ``errors_and_headers``: API errors become ``{"error": ...}`` JSON (also 401/403/404/405/413 raised by
   aiohttp on ``/api/``), pages get an HTML error page; every response gets a strict Content-Security-Policy
   (scripts and styles only from this origin, no inline script), ``nosniff``, ``same-origin`` referrers (a ticket URL
   must not leak) and ``frame-ancestors 'none'``.
2. ``session``: the signed session cookie -> ``user_of(request)``, ``sid_of(request)``; renews a session past
   half its life.
3. ``clerk_scope``: a user with role ``clerk`` reaches only their report (``/reports``, ``/api/v1/reports``,
   ``/api/v1/ratings``) and what every session needs; anything else is 403.
4. ``csrf``: POST/PUT/PATCH/DELETE by a logged-in user need the session's token (``X-CSRF-Token`` header or
   ``csrf_token`` form field) -> 403 otherwise; a cross-site ``Origin`` is refused everywhere (login too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from urllib.parse import urlparse

from aiohttp import web

from civiq.clock import Clock, SystemClock
from civiq.gateway.web import api, live, pages, reports
from civiq.gateway.web.auth import LoginLimiter, SessionCodec, UserStore
from civiq.gateway.web.context import (
    COOKIE,
    CTX,
    MAX_BODY,
    SID_KEY,
    USER_KEY,
    ApiError,
    WebContext,
    ctx_of,
    json_response,
    read_form,
    sid_of,
    user_of,
)
from civiq.gateway.web.i18n import t
from civiq.gateway.web.openapi import openapi_document
from civiq.gateway.web.view import GatewayView

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _headers(resp: web.StreamResponse) -> None:
    if resp.prepared:  # a WebSocket or a stream that already went out
        return
    h = resp.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("X-Frame-Options", "DENY")
    if resp.content_type in ("application/json", "text/html"):
        h.setdefault("Cache-Control", "no-store")


@web.middleware
async def errors_and_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        resp = await handler(request)
    except ApiError as e:
        if _is_api(request):
            resp = json_response({"error": e.message}, status=e.status)
        else:
            resp = pages.error_page(request, e.status, e.message)
    except pages.PageForbidden:
        resp = pages.error_page(request, 403, t(pages.lang_of(request), "forbidden"))
    except web.HTTPException as e:
        if e.status >= 400 and _is_api(request):
            resp = json_response({"error": e.reason if e.text is None or e.text.startswith(str(e.status))
                                  else e.text}, status=e.status)
        elif e.status in (403, 404) and request.method == "GET" and not request.path.startswith("/static/"):
            resp = pages.error_page(request, e.status, t(pages.lang_of(request),
                                                          "forbidden" if e.status == 403 else "not_found"))
        else:
            _headers(e)
            raise
    _headers(resp)
    return resp


@web.middleware
async def session(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = ctx_of(request)
    raw = request.cookies.get(COOKIE)
    renew: tuple[str, int] | None = None
    if raw:
        now = ctx.clock.now().timestamp()
        decoded = ctx.codec.decode(raw, now)
        if decoded is not None:
            sid, _ = decoded
            found = ctx.users.session(sid, now)
            if found is not None:
                user, expires = found
                request[USER_KEY], request[SID_KEY] = user, sid
                if expires - now < ctx.session_ttl_s / 2:
                    renew = (sid, int(now + ctx.session_ttl_s))
    resp = await handler(request)
    if renew is not None and not resp.prepared and sid_of(request) == renew[0]:
        ctx.users.extend_session(*renew)
        pages.set_session_cookie(ctx, resp, *renew)
    return resp


def _origin_ok(request: web.Request, public_base_url: str) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    host = urlparse(origin).netloc
    return bool(host) and host in (request.host, urlparse(public_base_url).netloc)


@web.middleware
async def csrf(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in UNSAFE:
        ctx = ctx_of(request)
        if not _origin_ok(request, ctx.public_base_url):
            raise ApiError(403, "cross-site request refused (Origin does not match)")
        sid = sid_of(request)
        if sid is not None and request.path != "/login":
            token = request.headers.get("X-CSRF-Token")
            if token is None and request.content_type in ("application/x-www-form-urlencoded",
                                                          "multipart/form-data"):
                form = await read_form(request)
                token = str(form.get("csrf_token", "")) or None
            if not ctx.codec.check_csrf(sid, token):
                raise ApiError(403, "missing or wrong CSRF token (send X-CSRF-Token from GET /api/v1/me)")
    return await handler(request)


# what a ``clerk`` user may open: their own report and ratings, and what every session needs
CLERK_PATHS = ("/reports", "/api/v1/reports", "/api/v1/ratings", "/api/v1/me", "/api/v1/openapi.json", "/logout",
               "/login", "/static/", "/t/", "/api/v1/public/")


@web.middleware
async def clerk_scope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A clerk sees only their own report: ``/`` leads there, every live page and API answers 403."""
    user = user_of(request)
    if user is not None and not user.live:
        if request.path == "/":
            raise web.HTTPSeeOther("/reports")
        if not request.path.startswith(CLERK_PATHS):
            raise ApiError(403, f"user {user.name} (clerk) sees only their own report: /reports")
    return await handler(request)


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document(ctx_of(request).public_base_url))


def create_app(view: GatewayView, users: UserStore, *, secret: bytes, public_base_url: str,
               clock: Clock | None = None, session_ttl_s: float = 12 * 3600,
               limiter: LoginLimiter | None = None, live_interval_s: float = 0.2) -> web.Application:
    """The gateway's web application: pages, ``/api/v1``, the live WebSocket and ``/static``.

    ``secret`` (>= 16 bytes) signs session cookies, CSRF tokens and public ticket tokens; keep it stable
    across restarts, or every session and every printed QR code becomes invalid. ``public_base_url`` is
    where citizens reach the gateway (the QR codes point there); an ``https`` URL makes cookies ``Secure``.
    """
    clock = clock or SystemClock()
    ctx = WebContext(
        view=view, users=users, codec=SessionCodec(secret), clock=clock,
        limiter=limiter or LoginLimiter(clock), secret=secret, public_base_url=public_base_url.rstrip("/"),
        session_ttl_s=session_ttl_s, secure_cookie=public_base_url.startswith("https://"),
        hub=live.LiveHub(view, live_interval_s),
    )
    app = web.Application(middlewares=[errors_and_headers, session, clerk_scope, csrf], client_max_size=MAX_BODY)
    app[CTX] = ctx
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.add_routes(api.routes)
    app.add_routes(live.routes)
    app.add_routes(pages.routes)
    app.add_routes(reports.routes)
    app.router.add_static("/static/", str(resources.files("civiq.gateway.web").joinpath("static")),
                          append_version=False)

    async def run_hub(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(ctx.hub.run(), name="civiq-live-hub")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(run_hub)
    return app
