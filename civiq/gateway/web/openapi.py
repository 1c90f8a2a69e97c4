"""The OpenAPI 3 description of ``/api/v1``, served at ``/api/v1/openapi.json`` (docs/api.md is the prose).

Request bodies come from the same pydantic models that validate them, so the two cannot drift apart.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from civiq.gateway.web.api import COUNTER_ACTIONS, ApplyAdviceBody, CounterBody, SilenceBody
from civiq.gateway.web.view import HISTORY_METRICS

_ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_OBJ = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}


def _p(name: str, where: str = "path", schema: dict[str, Any] | None = None, required: bool | None = None,
       desc: str = "") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path" if required is None else required,
            "schema": schema or {"type": "string"}, "description": desc}


def _op(summary: str, *, params: list[dict[str, Any]] | None = None, body: str | None = None,
        ok: str = "200", errors: tuple[str, ...] = ("401", "403"), public: bool = False,
        desc: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "description": desc, "parameters": params or [],
                          "responses": {ok: _OBJ, **{e: _ERR for e in errors}}}
    if body:
        op["requestBody"] = {"required": body != "CounterBody",
                             "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
        op["parameters"] = op["parameters"] + [_p("X-CSRF-Token", "header", required=True,
                                                    desc="the session's CSRF token (GET /api/v1/me)")]
    if public:
        op["security"] = []
    return op


CENTER = _p("center", desc="center id")
CENTER_Q = _p("center", "query", required=False, desc="limit to one center (a center-bound user gets theirs)")


@cache
def _paths() -> dict[str, Any]:
    return {
        "/api/v1/me": {"get": _op("The logged-in user, their permissions and CSRF token", errors=("401",))},
        "/api/v1/overview": {"get": _op("One summary row per visible center", errors=("401",))},
        "/api/v1/centers/{center}": {"get": _op("A center's live queues, counters, nodes and devices",
                                                params=[CENTER], errors=("401", "403", "404"))},
        "/api/v1/centers/{center}/history": {"get": _op(
            "A metric's time series", errors=("400", "401", "403", "404"),
            params=[CENTER, _p("metric", "query", {"type": "string", "enum": list(HISTORY_METRICS),
                                                   "default": "waiting"}),
                    _p("since", "query", {"type": "string", "format": "date-time"},
                       desc="default: local midnight today"),
                    _p("until", "query", {"type": "string", "format": "date-time"}, desc="default: now")],
            desc="At most 31 days per request; times without a zone are UTC.")},
        "/api/v1/centers/{center}/daily": {"get": _op(
            "Per-day totals", errors=("400", "401", "403", "404"),
            params=[CENTER, _p("days", "query", {"type": "integer", "minimum": 1, "maximum": 90, "default": 7})])},
        "/api/v1/centers/{center}/advice": {"get": _op("The load-balancing advisor's current advice",
                                                       params=[CENTER], errors=("401", "403", "404"))},
        "/api/v1/centers/{center}/advice/apply": {"post": _op(
            "Push the advice as the center's policy (province_admin, center_manager)", params=[CENTER],
            body="ApplyAdviceBody", errors=("400", "401", "403", "409"))},
        "/api/v1/centers/{center}/counters/{counter}/{action}": {"post": _op(
            "Relay a counter command (CounterCmd) to the edge (province_admin, center_manager, technician)",
            params=[CENTER, _p("counter"), _p("action", schema={"type": "string", "enum": list(COUNTER_ACTIONS)})],
            body="CounterBody", ok="202", errors=("400", "401", "403", "404", "413"),
            desc="`call` needs `ticket` (a waiting or held ticket, called out of order); `hold` parks the ticket "
                 "in hand; `call_held` calls back `ticket` or the oldest held at the counter. The answer has the "
                 "command `id`: the edge's result (done, or refused and why) is at `commands/{id}`. The events "
                 "carry `by: gateway:<id>` (audit).")},
        "/api/v1/centers/{center}/commands/{id}": {"get": _op(
            "The edge's answer to a counter command: {ok, error, data} or {pending: true}",
            params=[CENTER, _p("id", desc="the id returned by the counter command")], errors=("401", "403"))},
        "/api/v1/centers/{center}/audit": {"get": _op(
            "The day's actions out of the line's order: out-of-order calls, holds, call backs, priority tickets",
            params=[CENTER, _p("day", "query", {"type": "string", "format": "date"}, required=False,
                               desc="local day, default today")], errors=("400", "401", "403", "404"))},
        "/api/v1/reports": {"get": _op(
            "A center's report for a day, ISO week or month (docs/reports.md defines every number)",
            errors=("400", "401", "403"),
            params=[_p("center", "query", required=False, desc="center id (a center-bound user: theirs)"),
                    _p("period", "query", {"type": "string", "enum": ["day", "week", "month"], "default": "day"}),
                    _p("date", "query", {"type": "string", "format": "date"}, required=False,
                       desc="any local day in the period, default today"),
                    _p("lang", "query", {"type": "string", "enum": ["vi", "en"]}, required=False,
                       desc="language of the generated names, e.g. the row of work done with no clerk signed in")],
            desc="`total`, `services`, `counters`, `clerks` rows (issued, served, no_show, transferred, "
                 "priority_served, waits, wait_mean_s/p50/p90, wait_over_15m(_share), wait_over_30m(_share), "
                 "service_n, service_mean_s/p50/p90, ratings, satisfied, satisfied_share, score_mean_5, reasons, "
                 "coverage), `timeline`, `scores`, `reasons`. Seconds, shares 0..1, unrounded. A technician gets "
                 "no satisfaction keys; a viewer or technician no `clerks` rows; a clerk only their own work.")},
        "/api/v1/ratings": {"get": _op(
            "Every rating of a center between two local days, for the one-stop system",
            errors=("400", "401", "403"),
            params=[_p("center", "query", required=False, desc="center id (a center-bound user: theirs)"),
                    _p("from", "query", {"type": "string", "format": "date"}, required=False,
                       desc="first local day, default today"),
                    _p("to", "query", {"type": "string", "format": "date"}, required=False,
                       desc="last local day (inclusive), default `from`; at most 92 days"),
                    _p("format", "query", {"type": "string", "enum": ["json", "csv"]}, required=False,
                       desc="csv: the same rows as the daily CSV drop (UTF-8 with BOM)")],
            desc="Each rating: id, ts, center, center_name, ticket, day, service, service_name, counter, "
                 "counter_name, clerk, clerk_name, score, scale, satisfied, reasons, reason_names, dossier. "
                 "province_admin, center_manager (their center), clerk (their own ratings) only.")},
        "/api/v1/devices": {"get": _op("Nodes and their devices", params=[CENTER_Q])},
        "/api/v1/alerts": {"get": _op("Active alerts", params=[CENTER_Q])},
        "/api/v1/alerts/{key}/ack": {"post": _op(
            "Acknowledge an alert (not viewers)", params=[_p("key", desc="alert key, URL-encoded")],
            errors=("401", "403", "404"))},
        "/api/v1/silences": {
            "get": _op("Maintenance silences in force", params=[CENTER_Q]),
            "post": _op("Silence a center's or node's alerts for maintenance (not viewers)",
                        body="SilenceBody", ok="201", errors=("400", "401", "403", "413")),
        },
        "/api/v1/public/tickets/{token}": {"get": _op(
            "A ticket as its holder may see it (no login; the token is printed as a QR)", public=True,
            params=[_p("token")], errors=("404",))},
        "/api/v1/live": {"get": _op(
            "WebSocket: pushes the watched state on every change", ok="101", errors=("400", "401", "403", "404"),
            params=[_p("watch", "query", {"type": "string", "enum": ["overview", "center", "devices", "ticket"]}),
                    _p("center", "query", required=False), _p("token", "query", required=False)],
            desc="Messages are JSON objects with `type` = overview, center, devices or ticket.")},
    }


def openapi_document(base_url: str = "") -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    }
    for model in (SilenceBody, CounterBody, ApplyAdviceBody):
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {
        "openapi": "3.0.3",
        "info": {"title": "civiq gateway API", "version": "1",
                 "description": "Live queue loads, history, advice, devices and alerts of public-administration "
                                "service centers. See docs/api.md."},
        "servers": [{"url": base_url or "/"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "civiq_session"}},
        },
        "security": [{"session": []}],
        "paths": _paths(),
    }
