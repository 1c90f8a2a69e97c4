"""What every handler of the web layer shares: the app context, request helpers and API errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from civiq.clock import Clock
from civiq.errors import GatewayError
from civiq.gateway.web.auth import LoginLimiter, SessionCodec, User, UserStore
from civiq.gateway.web.view import GatewayView, ViewError

MAX_BODY = 64 * 1024
COOKIE = "civiq_session"
T = TypeVar("T")
B = TypeVar("B", bound=BaseModel)


class ApiError(GatewayError):
    """Answer an API request with ``{"error": message}`` and ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class WebContext:
    view: GatewayView
    users: UserStore
    codec: SessionCodec
    limiter: LoginLimiter
    clock: Clock
    secret: bytes
    public_base_url: str
    session_ttl_s: float
    secure_cookie: bool
    hub: Any = None  # live.LiveHub, set by the app factory


CTX: web.AppKey[WebContext] = web.AppKey("civiq_web", WebContext)
if hasattr(web, "RequestKey"):  # aiohttp >= 3.13
    USER_KEY: Any = web.RequestKey("civiq_user", User)
    SID_KEY: Any = web.RequestKey("civiq_sid", str)
else:  # pragma: no cover
    USER_KEY, SID_KEY = "civiq_user", "civiq_sid"


def ctx_of(request: web.Request) -> WebContext:
    return request.app[CTX]


def user_of(request: web.Request) -> User | None:
    return request.get(USER_KEY)


def sid_of(request: web.Request) -> str | None:
    return request.get(SID_KEY)


def require_user(request: web.Request) -> User:
    user = user_of(request)
    if user is None:
        raise ApiError(401, "log in first")
    return user


def require_center(request: web.Request, center: str) -> User:
    """The user, when allowed to read ``center`` (403 otherwise)."""
    user = require_user(request)
    if not user.sees(center):
        raise ApiError(403, f"user {user.name} may not access center {center}")
    return user


def scope_center(request: web.Request, center: str | None) -> str | None:
    """The center a listing is limited to: the asked one (if allowed) or the user's own."""
    user = require_user(request)
    if center:
        require_center(request, center)
        return center
    return user.center


async def call(fn: Callable[..., T], *args: Any) -> T:
    """Run a (possibly blocking) view method in a worker thread; ViewError becomes an API error."""
    try:
        return await asyncio.to_thread(fn, *args)
    except ViewError as e:
        raise ApiError(e.status, str(e)) from None


async def read_form(request: web.Request) -> Any:
    """``request.post()``, with a body that cannot be decoded (aiohttp raises ``UnicodeDecodeError`` on a
    form that is not UTF-8, ``ValueError`` on a broken multipart) as a 400 instead of a 500."""
    try:
        return await request.post()
    except (UnicodeDecodeError, ValueError) as e:
        raise ApiError(400, f"the form body cannot be read: {e}") from None


async def parse_body(request: web.Request, model: type[B], *, allow_empty: bool = False) -> B:
    """Validate a JSON body with ``model``; 400 with a readable reason otherwise, 413 when too large."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, f"body of {request.content_length} bytes is over the {MAX_BODY} byte limit")
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        # a plain HTML form (no JS): its fields, less the CSRF token, are the body
        form = await read_form(request)
        data: Any = {k: str(v) for k, v in form.items() if k != "csrf_token" and str(v) != ""}
        if not data and allow_empty:
            return model()
        try:
            return model.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            raise ApiError(400, f"field '{'.'.join(str(x) for x in first['loc']) or '(body)'}': "
                                f"{first['msg']}") from None
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, f"body is over the {MAX_BODY} byte limit") from None
    if not raw.strip():
        if allow_empty:
            return model()
        raise ApiError(400, "a JSON body is required")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "body is not UTF-8") from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise ApiError(400, f"body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"body must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(body)"
        raise ApiError(400, f"field '{where}': {first['msg']}") from None


def json_dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str, separators=(",", ":"))


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.json_response(obj, status=status, dumps=json_dumps)
