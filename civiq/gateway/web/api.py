"""The JSON API under ``/api/v1`` (documented in docs/api.md and served as OpenAPI at /api/v1/openapi.json).

Every route checks who is asking: 401 without a session, 403 when the user's role or center does not allow
it. State-changing routes also need the session's CSRF token (checked by the app's middleware).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, get_args
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from civiq.clock import DEFAULT_TZ, local_day
from civiq.contract import ID_RE, CounterCmd
from civiq.gateway.web.context import (
    ApiError,
    call,
    ctx_of,
    json_response,
    parse_body,
    require_center,
    require_user,
    scope_center,
    sid_of,
)
from civiq.gateway.web.view import HISTORY_METRICS
from civiq.tickettoken import verify_ticket_token

COUNTER_ACTIONS: tuple[str, ...] = get_args(CounterCmd.model_fields["action"].annotation)
MAX_HISTORY = timedelta(days=31)
PUBLIC_TICKET_KEYS = ("ticket", "service", "service_name", "center_name", "state", "ahead", "eta_s", "counter",
                      "counter_name")

routes = web.RouteTableDef()


# ------------------------------------------------------------------------------------------ bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SilenceBody(_Body):
    """Silence a center's (or one node's) alerts for maintenance: give ``minutes`` or ``until``."""

    center: str = Field(pattern=ID_RE)
    node: str | None = Field(None, pattern=ID_RE)
    minutes: float | None = Field(None, gt=0, le=30 * 24 * 60)
    until: AwareDatetime | None = None
    reason: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_end(self) -> SilenceBody:
        if (self.minutes is None) == (self.until is None):
            raise ValueError("give exactly one of 'minutes' or 'until'")
        return self


class CounterBody(_Body):
    to_service: str | None = Field(None, min_length=1, max_length=64)
    to_counter: str | None = Field(None, min_length=1, max_length=64)
    ticket: str | None = Field(None, pattern=r"^[A-Za-z]{1,2}[0-9]{1,4}$",
                               description="call: the ticket to call out of order; call_held: which held ticket "
                               "(absent: the oldest held at the counter)")
    clerk: str | None = Field(None, pattern=ID_RE, description="sign_in: the id of the clerk who works at the "
                              "counter from now on")
    dossier: str | None = Field(None, min_length=1, max_length=40, description="complete: the one-stop "
                                "system's dossier code, written in the ticket.completed event")


class ApplyAdviceBody(_Body):
    advice_id: str = Field(min_length=1, max_length=64)


# ------------------------------------------------------------------------------------------ helpers
def _parse_time(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"'{name}' must be an ISO 8601 time such as 2026-01-05T08:00:00+07:00") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def start_of_local_day(now: datetime, tz: str = DEFAULT_TZ) -> datetime:
    local = now.astimezone(ZoneInfo(tz))
    return datetime.combine(local.date(), time(0), ZoneInfo(tz)).astimezone(UTC)


async def _center_or_404(request: web.Request, center: str) -> dict[str, Any]:
    require_center(request, center)
    c = await call(ctx_of(request).view.center, center)
    if c is None:
        raise ApiError(404, f"no center {center!r}")
    return c


def public_ticket_payload(ticket: dict[str, Any] | None, ref_label: str) -> dict[str, Any]:
    """Only the whitelisted, non-personal fields of a ticket."""
    if ticket is None:
        return {"ticket": ref_label, "found": False}
    out = {k: ticket.get(k) for k in PUBLIC_TICKET_KEYS}
    out["found"] = True
    return out


# ------------------------------------------------------------------------------------------ reads
@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    """Who am I, what may I do, and the CSRF token for state-changing requests."""
    user = require_user(request)
    return json_response({**user.public(), "csrf": ctx_of(request).codec.csrf(sid_of(request))})


@routes.get("/api/v1/overview")
async def overview(request: web.Request) -> web.Response:
    user = require_user(request)
    rows = await call(ctx_of(request).view.overview)
    return json_response({"centers": [r for r in rows if user.sees(r["center"])]})


@routes.get("/api/v1/centers/{center}")
async def center(request: web.Request) -> web.Response:
    return json_response(await _center_or_404(request, request.match_info["center"]))


@routes.get("/api/v1/centers/{center}/history")
async def history(request: web.Request) -> web.Response:
    cid = request.match_info["center"]
    await _center_or_404(request, cid)
    ctx = ctx_of(request)
    metric = request.query.get("metric", "waiting")
    if metric not in HISTORY_METRICS:
        raise ApiError(400, f"unknown metric {metric!r}; one of {', '.join(HISTORY_METRICS)}")
    now = ctx.clock.now()
    until = _parse_time(request.query.get("until"), "until") or now
    since = _parse_time(request.query.get("since"), "since") or start_of_local_day(now)
    if since >= until:
        raise ApiError(400, "'since' must be before 'until'")
    if until - since > MAX_HISTORY:
        raise ApiError(400, f"at most {MAX_HISTORY.days} days per request")
    points = await call(ctx.view.history, cid, metric, since, until)
    return json_response({"center": cid, "metric": metric, "since": since.isoformat(),
                          "until": until.isoformat(), "points": [[t, v] for t, v in points]})


@routes.get("/api/v1/centers/{center}/daily")
async def daily(request: web.Request) -> web.Response:
    cid = request.match_info["center"]
    await _center_or_404(request, cid)
    try:
        days = int(request.query.get("days", "7"))
    except ValueError:
        raise ApiError(400, "'days' must be a whole number") from None
    if not 1 <= days <= 90:
        raise ApiError(400, "'days' must be between 1 and 90")
    return json_response({"center": cid, "days": await call(ctx_of(request).view.daily, cid, days)})


@routes.get("/api/v1/centers/{center}/advice")
async def advice(request: web.Request) -> web.Response:
    cid = request.match_info["center"]
    await _center_or_404(request, cid)
    return json_response({"center": cid, "advice": await call(ctx_of(request).view.advice, cid)})


@routes.get("/api/v1/centers/{center}/audit")
async def audit(request: web.Request) -> web.Response:
    """The day's actions out of the line's order: out-of-order calls, holds, call backs, priority tickets."""
    cid = request.match_info["center"]
    await _center_or_404(request, cid)
    ctx = ctx_of(request)
    day = request.query.get("day") or local_day(ctx.clock.now())
    try:
        date.fromisoformat(day)
    except ValueError:
        raise ApiError(400, "'day' must be a date like 2026-01-05") from None
    return json_response({"center": cid, "day": day, "actions": await call(ctx.view.audit, cid, day)})


@routes.get("/api/v1/centers/{center}/commands/{id}")
async def command_result(request: web.Request) -> web.Response:
    """The edge's answer to a counter command: ``{"pending": true}`` until it comes."""
    cid = request.match_info["center"]
    require_center(request, cid)
    r = await call(ctx_of(request).view.command_result, cid, request.match_info["id"])
    return json_response(r if r is not None else {"id": request.match_info["id"], "pending": True})


@routes.get("/api/v1/devices")
async def devices(request: web.Request) -> web.Response:
    cid = scope_center(request, request.query.get("center"))
    return json_response({"center": cid, "nodes": await call(ctx_of(request).view.devices, cid)})


@routes.get("/api/v1/alerts")
async def alerts(request: web.Request) -> web.Response:
    cid = scope_center(request, request.query.get("center"))
    return json_response({"center": cid, "alerts": await call(ctx_of(request).view.alerts, cid)})


@routes.get("/api/v1/silences")
async def silences(request: web.Request) -> web.Response:
    cid = scope_center(request, request.query.get("center"))
    return json_response({"center": cid, "silences": await call(ctx_of(request).view.silences, cid)})


@routes.get("/api/v1/public/tickets/{token}")
async def public_ticket(request: web.Request) -> web.Response:
    """No login: the token itself is the proof (see tokens.py)."""
    ctx = ctx_of(request)
    ref = verify_ticket_token(ctx.secret, request.match_info["token"])
    if ref is None:
        raise ApiError(404, "no such ticket")
    t = await call(ctx.view.public_ticket, ref.center, ref.day, ref.label)
    return json_response(public_ticket_payload(t, ref.label))


# ------------------------------------------------------------------------------------------ changes
@routes.post("/api/v1/alerts/{key:.+}/ack")
async def ack(request: web.Request) -> web.Response:
    user = require_user(request)
    key = request.match_info["key"]
    ctx = ctx_of(request)
    found = [a for a in await call(ctx.view.alerts, None) if a["key"] == key]
    if not found:
        raise ApiError(404, f"no active alert {key!r}")
    require_center(request, found[0]["center"])
    if not user.can_maintain:
        raise ApiError(403, f"role {user.role} may not acknowledge alerts")
    if not await call(ctx.view.acknowledge, key, user.name):
        raise ApiError(404, f"no active alert {key!r}")
    return json_response({"key": key, "acked_by": user.name})


@routes.post("/api/v1/silences")
async def add_silence(request: web.Request) -> web.Response:
    user = require_user(request)
    body = await parse_body(request, SilenceBody)
    require_center(request, body.center)
    if not user.can_maintain:
        raise ApiError(403, f"role {user.role} may not silence alerts")
    ctx = ctx_of(request)
    now = ctx.clock.now()
    until = body.until if body.until is not None else now + timedelta(minutes=body.minutes or 0)
    if until <= now:
        raise ApiError(400, "field 'until': must be in the future")
    if until - now > timedelta(days=30):
        raise ApiError(400, "field 'until': at most 30 days ahead")
    s = await call(ctx.view.silence, body.center, body.node, until.astimezone(UTC), body.reason, user.name)
    return json_response(s, status=201)


@routes.post("/api/v1/centers/{center}/counters/{counter}/{action}")
async def counter_command(request: web.Request) -> web.Response:
    cid, counter, action = (request.match_info[k] for k in ("center", "counter", "action"))
    user = require_center(request, cid)
    if not user.can_command:
        raise ApiError(403, f"role {user.role} may not send counter commands")
    if action not in COUNTER_ACTIONS:
        raise ApiError(400, f"unknown action {action!r}; one of {', '.join(COUNTER_ACTIONS)}")
    body = await parse_body(request, CounterBody, allow_empty=True)
    if action == "transfer" and not (body.to_service or body.to_counter):
        raise ApiError(400, "a transfer needs 'to_service' or 'to_counter'")
    if action == "call" and not body.ticket:
        raise ApiError(400, "calling a specific ticket needs 'ticket' (e.g. \"B012\")")
    if action == "sign_in" and not body.clerk:
        raise ApiError(400, "signing in needs 'clerk' (a clerk id of the center, e.g. \"lan\")")
    if body.dossier is not None and action != "complete":
        raise ApiError(400, "'dossier' goes with the action 'complete'")
    cmd = CounterCmd(id=uuid.uuid4().hex[:16], counter=counter, action=action,  # type: ignore[arg-type]
                     to_service=body.to_service, to_counter=body.to_counter,
                     ticket=body.ticket.upper() if body.ticket else None, clerk=body.clerk,
                     dossier=body.dossier)
    sent = await call(ctx_of(request).view.send_counter_command, cid, cmd, user.name)
    return json_response({"center": cid, "counter": counter, "action": action, **sent}, status=202)


@routes.post("/api/v1/centers/{center}/advice/apply")
async def apply_advice(request: web.Request) -> web.Response:
    cid = request.match_info["center"]
    user = require_center(request, cid)
    if not user.can_apply_advice:
        raise ApiError(403, f"role {user.role} may not apply advice")
    body = await parse_body(request, ApplyAdviceBody)
    out = await call(ctx_of(request).view.apply_advice, cid, body.advice_id, user.name)
    return json_response({"center": cid, **out})
