"""Reports and ratings on the web: ``/reports`` (page), ``/reports/download`` (.xlsx / .csv),
``/api/v1/reports`` and ``/api/v1/ratings`` (JSON; docs/api.md, docs/reports.md).

Who sees what (the same on the page, in the files and on the API):

* ``province_admin``: every center; ``center_manager``: their center; both see everything of it;
* ``viewer``: their center (or all), satisfaction numbers, but no per-clerk rows and no rating rows;
* ``technician``: operational numbers only (no satisfaction, no per-clerk rows, no rating rows);
* ``clerk``: their center, only their own work and ratings (the report is computed from their events).
"""

from __future__ import annotations

import html
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from civiq.clock import DEFAULT_TZ, local_day
from civiq.gateway.reports import PERIODS, PeriodError, period_of
from civiq.gateway.reports.export import (
    Scope,
    province_csv,
    province_xlsx,
    ratings_csv,
    report_csv,
    report_xlsx,
)
from civiq.gateway.reports.periods import parse_day
from civiq.gateway.web.auth import User
from civiq.gateway.web.context import ApiError, call, ctx_of, json_response, require_center, require_user
from civiq.gateway.web.i18n import t

routes = web.RouteTableDef()
MAX_RATING_DAYS = 92
SAT_KEYS = ("ratings", "satisfied", "satisfied_share", "score_mean_5", "reasons", "coverage")
BY = ("service", "counter", "clerk")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REFRESH_S = 60.0  # a report page whose period holds today re-reads its numbers this often


def scope_of(user: User) -> Scope:
    return Scope(satisfaction=user.sees_satisfaction, clerks=user.sees_clerks,
                 ratings=user.sees_clerks and user.sees_satisfaction)


def scoped(report: dict[str, Any], user: User) -> dict[str, Any]:
    """The report as ``user`` may see it: no satisfaction numbers for a technician, no per-clerk rows for a
    viewer or technician (a clerk's report is already computed from their own events only)."""
    if not user.sees_satisfaction:
        for row in [report["total"], *report["services"], *report["counters"], *report["clerks"],
                    *report["timeline"]]:
            for k in SAT_KEYS:
                row.pop(k, None)
        report["scores"], report["reasons"] = {}, {}
    if not user.sees_clerks:
        report["clerks"] = []
    report["scope"] = {"satisfaction": user.sees_satisfaction, "clerks": user.sees_clerks,
                       "clerk": user.clerk if user.role == "clerk" else None}
    return report


def _today(request: web.Request) -> str:
    view = ctx_of(request).view
    clock = getattr(view, "clock", None) or ctx_of(request).clock
    return local_day(clock.now())


def _center(request: web.Request, user: User) -> str:
    center = request.query.get("center") or user.center
    if not center:
        raise ApiError(400, "'center' is required (a center id such as hcm-q1)")
    require_center(request, center)
    return center


async def _report(request: web.Request, lang: str = "vi") -> tuple[User, dict[str, Any]]:
    user = require_user(request)
    center = _center(request, user)
    period, day = _period_query(request)
    clerk = user.clerk if user.role == "clerk" else None
    view = ctx_of(request).view
    await _known(request, center)
    rep = await call(view.report, center, period, day, clerk, lang)
    return user, scoped(rep, user)


async def _known(request: web.Request, center: str) -> None:
    """404 for a center the gateway has never heard of (a typo must not look like an empty report)."""
    if center not in {r["center"] for r in await call(ctx_of(request).view.overview)}:
        raise ApiError(404, f"no center {center!r}")


def _rating_range(request: web.Request) -> tuple[datetime, datetime, str, str]:
    today = _today(request)
    first = request.query.get("from") or today
    last = request.query.get("to") or first
    try:
        d0, d1 = parse_day(first), parse_day(last)
    except PeriodError as e:
        raise ApiError(400, f"'from' / 'to': {e}") from None
    if d1 < d0:
        raise ApiError(400, "'to' must not be before 'from'")
    if (d1 - d0).days >= MAX_RATING_DAYS:
        raise ApiError(400, f"at most {MAX_RATING_DAYS} days per request")
    tz = _tz(request)
    since = period_of("day", d0).bounds(tz)[0]
    until = period_of("day", d1).bounds(tz)[1]
    return since, until, d0.isoformat(), d1.isoformat()


def _tz(request: web.Request) -> str:
    view = ctx_of(request).view
    store = getattr(view, "report_store", None)
    state = getattr(view, "state", None)
    return store.tz if store is not None else getattr(state, "tz", DEFAULT_TZ)


async def _ratings(request: web.Request, user: User, center: str, since: datetime,
                   until: datetime) -> list[dict[str, Any]]:
    if not (user.sees_clerks and user.sees_satisfaction):
        raise ApiError(403, f"role {user.role} may not see rating rows")
    clerk = user.clerk if user.role == "clerk" else None
    return await call(ctx_of(request).view.ratings, center, since, until, clerk)


# ------------------------------------------------------------------------------------------ API
def _period_query(request: web.Request) -> tuple[str, str]:
    period = request.query.get("period") or "day"
    day = request.query.get("date") or _today(request)
    if period not in PERIODS:
        raise ApiError(400, f"'period' must be one of {', '.join(PERIODS)}")
    try:
        parse_day(day)
    except PeriodError as e:
        raise ApiError(400, str(e)) from None
    return period, day


async def _province(request: web.Request, user: User, lang: str = "vi") -> dict[str, Any]:
    """Every center the user may see, one row each (the center's ``total``), for the same period."""
    period, day = _period_query(request)
    ctx = ctx_of(request)
    centers = [r["center"] for r in await call(ctx.view.overview) if user.sees(r["center"])]
    rows, first = [], None
    for c in centers:
        rep = scoped(await call(ctx.view.report, c, period, day, None, lang), user)
        first = first or rep
        rows.append({**rep["total"], "key": c, "name": rep["center_name"]})
    per = first["period"] if first else period_of(period, day).to_json(_tz(request))
    return {"period": per, "centers": rows, "scope": {"satisfaction": user.sees_satisfaction,
                                                      "clerks": user.sees_clerks, "clerk": None}}


def _wants_province(request: web.Request, user: User) -> bool:
    return not request.query.get("center") and user.center is None


@routes.get("/api/v1/reports")
async def api_report(request: web.Request) -> web.Response:
    """One center's report (``center``, ``period`` day|week|month, ``date`` any day in it, default today);
    without ``center``, a user of every center gets one row per center (``centers``)."""
    user = require_user(request)
    lang = request.query.get("lang") or "vi"
    if _wants_province(request, user):
        return json_response(await _province(request, user, lang))
    _, rep = await _report(request, lang)
    return json_response(rep)


@routes.get("/api/v1/ratings")
async def api_ratings(request: web.Request) -> web.Response:
    """Every rating of a center from local day ``from`` to ``to`` (inclusive); ``format=csv`` for the CSV."""
    user = require_user(request)
    center = _center(request, user)
    await _known(request, center)
    since, until, d0, d1 = _rating_range(request)
    rows = await _ratings(request, user, center, since, until)
    if request.query.get("format") == "csv":
        return _file(ratings_csv(rows, _tz(request)), f"ratings-{center}-{d0}_{d1}.csv", "text/csv")
    return json_response({"center": center, "from": d0, "to": d1, "count": len(rows), "ratings": rows})


def _file(data: bytes, name: str, ctype: str) -> web.Response:
    resp = web.Response(body=data, content_type=ctype, charset="utf-8" if ctype.startswith("text/") else None)
    resp.headers["Content-Disposition"] = f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"
    resp.headers["Cache-Control"] = "no-store"
    return resp


# ------------------------------------------------------------------------------------------ page
@routes.get("/reports/download")
async def download(request: web.Request) -> web.Response:
    from civiq.gateway.web.pages import page_user

    user = page_user(request)
    fmt = request.query.get("format") or "xlsx"
    if _wants_province(request, user):
        prov = await _province(request, user)
        base = f"bao-cao-cac-trung-tam-{prov['period']['label']}"
        if fmt == "csv":
            return _file(province_csv(prov, scope_of(user)), base + ".csv", "text/csv")
        if fmt != "xlsx":
            raise ApiError(400, "'format' must be xlsx or csv for every center (ratings: choose a center)")
        return _file(await call(province_xlsx, prov, scope_of(user)), base + ".xlsx", XLSX)
    _, rep = await _report(request)
    who = f"-{user.clerk}" if user.role == "clerk" and user.clerk else ""
    base = f"bao-cao-{rep['center']}-{rep['period']['label']}{who}"
    scope = scope_of(user)
    if fmt == "csv":
        return _file(report_csv(rep, scope), base + ".csv", "text/csv")
    if fmt == "ratings.csv":
        since, until = rep["period"]["since"], rep["period"]["until"]
        rows = await _ratings(request, user, rep["center"], datetime.fromisoformat(since),
                              datetime.fromisoformat(until))
        return _file(ratings_csv(rows, rep["period"]["tz"]), f"danh-gia-{rep['center']}-{rep['period']['label']}"
                     f"{who}.csv", "text/csv")
    if fmt != "xlsx":
        raise ApiError(400, "'format' must be xlsx, csv or ratings.csv")
    rows = None
    if scope.ratings:
        rows = await _ratings(request, user, rep["center"], datetime.fromisoformat(rep["period"]["since"]),
                              datetime.fromisoformat(rep["period"]["until"]))
    data = await call(report_xlsx, rep, rows, scope)
    return _file(data, base + ".xlsx", XLSX)


@routes.get("/reports")
async def reports_page(request: web.Request) -> web.Response:
    from civiq.gateway.web.pages import lang_of, page_user, render

    user = page_user(request)
    lang = lang_of(request)
    ctx = ctx_of(request)
    centers = [(r["center"], r.get("name") or r["center"]) for r in await call(ctx.view.overview)
               if user.sees(r["center"])]
    if _wants_province(request, user):
        return await _province_page(request, user, lang, centers)
    _, rep = await _report(request, lang)
    by = request.query.get("by") or "service"
    if by not in BY or (by == "clerk" and not user.sees_clerks):
        by = "service"
    center = rep["center"]
    if center not in [c for c, _ in centers]:
        centers.append((center, rep["center_name"]))
    period = rep["period"]
    kind = period["kind"]
    day, prev_day, next_day = _days(request, period)

    def href(path: str, **q: str) -> str:
        return html.escape(f"{path}?{urlencode({'center': center, 'period': kind, 'date': day, **q})}")

    bys = [(b, t(lang, f"by_{b}")) for b in BY if b != "clerk" or user.sees_clerks]
    scope = scope_of(user)
    dl_ratings = (f'<a class="button" id="dl-ratings" href="{href("/reports/download", format="ratings.csv")}" '
                  f'download>{html.escape(t(lang, "dl_ratings"))}</a>') if scope.ratings else ""
    all_centers = [("", t(lang, "all_centers"))] if user.center is None else []
    return render(request, "reports", "reports.html", title=f"{t(lang, 'reports')} — {rep['center_name']}",
                  fields={"center_options": _opts(all_centers + centers, center),
                          "period_options": _opts([(k, t(lang, f"p_{k}")) for k in PERIODS], kind),
                          "by_options": _opts(bys, by), "date": html.escape(day),
                          "prev_href": href("/reports", date=prev_day, by=by),
                          "next_href": href("/reports", date=next_day, by=by),
                          "dl_xlsx": href("/reports/download", format="xlsx"),
                          "dl_csv": href("/reports/download", format="csv"), "dl_ratings": dl_ratings},
                  boot={"center": center, "data": {"report": rep, "by": by, "period": kind, "refresh_s": REFRESH_S,
                                                   "can": {"ratings": scope.ratings}}})


def _opts(items: list[tuple[str, str]], cur: str) -> str:
    """``<option>`` elements, ``cur`` selected."""
    return "".join(f'<option value="{html.escape(v)}"{" selected" if v == cur else ""}>{html.escape(n)}</option>'
                   for v, n in items)


def _days(request: web.Request, period: dict) -> tuple[str, str, str]:
    """The asked date, the day before the period and the day after it (the page's arrows)."""
    day = request.query.get("date") or _today(request)
    prev_day = (date.fromisoformat(period["first"]) - timedelta(days=1)).isoformat()
    next_day = (date.fromisoformat(period["last"]) + timedelta(days=1)).isoformat()
    return day, prev_day, next_day


async def _province_page(request: web.Request, user: User, lang: str,
                         centers: list[tuple[str, str]]) -> web.Response:
    """``/reports`` without a center, for a user of every center: one row per center, each a link."""
    from civiq.gateway.web.pages import render

    prov = await _province(request, user, lang)
    period = prov["period"]
    kind = period["kind"]
    day, prev_day, next_day = _days(request, period)

    def href(path: str, **q: str) -> str:
        return html.escape(f"{path}?{urlencode({'period': kind, 'date': day, **q})}")

    return render(request, "reports", "reports.html", title=f"{t(lang, 'reports')} — {t(lang, 'all_centers')}",
                  fields={"center_options": _opts([("", t(lang, "all_centers")), *centers], ""),
                          "period_options": _opts([(k, t(lang, f"p_{k}")) for k in PERIODS], kind),
                          "by_options": _opts([("center", t(lang, "rep_center"))], "center"),
                          "date": html.escape(day), "prev_href": href("/reports", date=prev_day),
                          "next_href": href("/reports", date=next_day),
                          "dl_xlsx": href("/reports/download", format="xlsx"),
                          "dl_csv": href("/reports/download", format="csv"), "dl_ratings": ""},
                  boot={"center": None, "data": {"province": prov, "by": "center", "period": kind,
                                                 "refresh_s": REFRESH_S, "can": {"ratings": False}}})
