"""HTML pages: login, province overview, center, devices and the public ticket page.

Pages are ``string.Template`` files in ``templates/`` (package data). The server fills in texts (escaped
with :func:`html.escape`) and a JSON boot document (in a non-executed ``<script type="application/json">``,
with ``<``, ``>`` and ``&`` escaped) holding the initial data; ``static/app.js`` renders the data with
``textContent`` only and keeps it live over the WebSocket.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import quote

from aiohttp import web

from civiq.errors import GatewayError
from civiq.gateway.web.api import public_ticket_payload, start_of_local_day
from civiq.gateway.web.auth import User
from civiq.gateway.web.context import COOKIE, ApiError, call, ctx_of, read_form, sid_of, user_of
from civiq.gateway.web.i18n import DETAIL_PHRASES_VI, STRINGS, pick_lang, t
from civiq.tickettoken import verify_ticket_token

routes = web.RouteTableDef()
LANG_COOKIE = "lang"


@cache
def template(name: str) -> Template:
    return Template(resources.files("civiq.gateway.web").joinpath("templates", name).read_text("utf-8"))


def lang_of(request: web.Request) -> str:
    return pick_lang(request.query.get("lang"), request.cookies.get(LANG_COOKIE))


def boot_json(obj: Any) -> str:
    """JSON that is safe inside a ``<script type="application/json">`` element."""
    text = json.dumps(obj, ensure_ascii=False, default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _texts(lang: str) -> dict[str, str]:
    return {f"t_{k}": html.escape(t(lang, k)) for k in STRINGS["vi"]}


def view_clock(request: web.Request):  # noqa: ANN201
    """The clock of the data shown (the gateway's), which sessions do not use: a demo speeds it up."""
    ctx = ctx_of(request)
    return getattr(ctx.view, "clock", None) or ctx.clock


def render(request: web.Request, page: str, body_tpl: str, *, title: str, boot: dict[str, Any] | None = None,
           fields: dict[str, str] | None = None, status: int = 200, chrome: bool = True) -> web.Response:
    """A whole page. ``fields`` values must already be escaped (use :func:`html.escape`)."""
    lang = lang_of(request)
    user = user_of(request)
    texts = _texts(lang)
    body = template(body_tpl).substitute(texts, **(fields or {}))
    other = "en" if lang == "vi" else "vi"
    csrf = ctx_of(request).codec.csrf(sid_of(request)) if user is not None else ""
    header = ""
    if chrome:
        who = ""
        if user is not None:
            who = template("_user.html").substitute(
                texts, name=html.escape(user.name), role=html.escape(user.role), csrf=html.escape(csrf))
        links = [("/", "overview", texts["t_overview"]), ("/devices", "devices", texts["t_devices"]),
                 ("/reports", "reports", texts["t_reports"])]
        if user is not None and not user.live:  # a clerk: their report only
            links = links[2:]
        current = ' aria-current="page"'
        nav = "".join(f'<a href="{href}"{current if page == key else ""}>{text}</a>' for href, key, text in links)
        header = template("_header.html").substitute(texts, who=who, other_lang=other, nav=nav)
    vclock = view_clock(request)
    doc = {
        "page": page, "lang": lang, "csrf": csrf,
        # the data's clock (a demo runs it faster than real time): pages show and chart its time
        "server_now": vclock.now().isoformat(), "clock_rate": float(getattr(vclock, "speed", 1.0)),
        "user": user.public() if user else None,
        "i18n": STRINGS[lang], "detail_phrases": DETAIL_PHRASES_VI if lang == "vi" else [], **(boot or {}),
    }
    out = template("base.html").substitute(
        lang=lang, title=html.escape(title), page=page, header=header, body=body, boot=boot_json(doc),
        t_language=texts["t_language"])
    resp = web.Response(text=out, content_type="text/html", status=status)
    if request.query.get("lang") in STRINGS:
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Strict", httponly=True)
    return resp


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    lang = lang_of(request)
    return render(request, "error", "error.html", title=t(lang, "error"), status=status,
                  fields={"message": html.escape(message), "status": str(status)})


def page_user(request: web.Request) -> User:
    user = user_of(request)
    if user is None:
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='')}")
    return user


class PageForbidden(GatewayError):
    pass


def check_center(request: web.Request, user: User, center: str) -> None:
    if not user.sees(center):
        raise PageForbidden(center)


def _safe_next(value: str | None) -> str:
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


# ------------------------------------------------------------------------------------------ login
def _login_page(request: web.Request, message: str = "", status: int = 200) -> web.Response:
    nxt = _safe_next(request.query.get("next"))
    err = f'<p class="flash error" role="alert">{html.escape(message)}</p>' if message else ""
    return render(request, "login", "login.html", title=t(lang_of(request), "login"), status=status,
                  fields={"error": err, "next": html.escape(nxt)}, chrome=False)


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    return _login_page(request)


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    lang = lang_of(request)
    form = await read_form(request)
    name = str(form.get("user", ""))[:64].strip()
    password = str(form.get("password", ""))[:1024]
    nxt = _safe_next(str(form.get("next", "/")))
    ip = request.remote or "?"
    wait = ctx.limiter.retry_after(name, ip)
    if wait > 0:
        resp = _login_page(request, t(lang, "too_many").format(s=int(wait) + 1), status=429)
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    user = await call(ctx.users.verify, name, password) if name and password else None
    if user is None:
        ctx.limiter.fail(name, ip)
        return _login_page(request, t(lang, "bad_login"), status=401)
    ctx.limiter.success(name)
    expires = int(ctx.clock.now().timestamp() + ctx.session_ttl_s)
    sid = await call(ctx.users.create_session, user.name, expires)
    resp = web.HTTPSeeOther(nxt)
    set_session_cookie(ctx, resp, sid, expires)
    raise resp


def set_session_cookie(ctx: Any, resp: web.StreamResponse, sid: str, expires: int) -> None:
    resp.set_cookie(COOKIE, ctx.codec.encode(sid, expires), max_age=int(ctx.session_ttl_s), httponly=True,
                    samesite="Strict", secure=ctx.secure_cookie, path="/")


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    sid = sid_of(request)
    if sid:
        await call(ctx_of(request).users.delete_session, sid)
    resp = web.HTTPSeeOther("/login")
    resp.del_cookie(COOKIE, path="/")
    raise resp


# ------------------------------------------------------------------------------------------ pages
@routes.get("/")
async def overview_page(request: web.Request) -> web.Response:
    user = page_user(request)
    ctx = ctx_of(request)
    rows = [r for r in await call(ctx.view.overview) if user.sees(r["center"])]
    lang = lang_of(request)
    return render(request, "overview", "overview.html", title=t(lang, "province_overview"),
                  boot={"data": {"centers": rows}})


@routes.get("/centers/{center}")
async def center_page(request: web.Request) -> web.Response:
    user = page_user(request)
    cid = request.match_info["center"]
    check_center(request, user, cid)
    ctx = ctx_of(request)
    c = await call(ctx.view.center, cid)
    if c is None:
        return error_page(request, 404, t(lang_of(request), "not_found"))
    now = view_clock(request).now()
    since = start_of_local_day(now)
    try:
        hist = await call(ctx.view.history, cid, "waiting", since, now) if since < now else []
    except ApiError:
        hist = []
    days = await call(ctx.view.daily, cid, 7)
    adv = await call(ctx.view.advice, cid)
    name = c.get("name") or cid
    return render(request, "center", "center.html", title=str(name),
                  fields={"name": html.escape(str(name)), "center": html.escape(cid)},
                  boot={"center": cid, "data": {"center": c, "advice": adv, "days": days,
                                                 "history": [[a, b] for a, b in hist],
                                                 "since": since.isoformat(), "now": now.isoformat()}})


@routes.get("/devices")
async def devices_page(request: web.Request) -> web.Response:
    user = page_user(request)
    ctx = ctx_of(request)
    cid = request.query.get("center") or user.center
    if cid:
        check_center(request, user, cid)
    centers = [r["center"] for r in await call(ctx.view.overview) if user.sees(r["center"])]
    data = {"nodes": await call(ctx.view.devices, cid), "alerts": await call(ctx.view.alerts, cid),
            "silences": await call(ctx.view.silences, cid), "centers": centers}
    return render(request, "devices", "devices.html", title=t(lang_of(request), "devices"),
                  boot={"center": cid, "data": data})


@routes.get("/t/{token}")
async def ticket_page(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    token = request.match_info["token"]
    ref = verify_ticket_token(ctx.secret, token)
    lang = lang_of(request)
    if ref is None:
        return render(request, "ticket", "error.html", title=t(lang, "your_ticket"), status=404, chrome=False,
                      fields={"message": html.escape(t(lang, "ticket_unknown")), "status": "404"})
    tk = public_ticket_payload(await call(ctx.view.public_ticket, ref.center, ref.day, ref.label), ref.label)
    return render(request, "ticket", "ticket.html", title=f"{ref.label} — {t(lang, 'your_ticket')}",
                  fields={"label": html.escape(ref.label), "other_lang": "en" if lang == "vi" else "vi"},
                  boot={"token": token, "data": {"ticket": tk}}, chrome=False)
