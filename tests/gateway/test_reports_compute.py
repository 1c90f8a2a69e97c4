"""The report numbers against the event log: every number recomputed here from the raw events by a second,
deliberately plain code path (filters and statistics.fmean, no shared helper) must equal the report's exactly.

The events go through the real store (SQLite, JSON round trip), each one twice (an edge re-sending its
outbox): the report must count each once.
"""

from __future__ import annotations

import math
import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from civiq.contract import Event
from civiq.gateway.reports import compute, period_of, report_from_store, sample
from civiq.gateway.reports.periods import PeriodError
from civiq.gateway.store.series import SeriesStore

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CENTER = "hcm-q1"
DAYS = [date(2026, 11, 29) + timedelta(days=i) for i in range(9)]  # Sun 29 Nov .. Mon 7 Dec 2026


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[SeriesStore, list[tuple[str, Event]]]:
    evs = sample.sample_events(DAYS, per_day=90, seed=11)
    store = SeriesStore(Path(tmp_path_factory.mktemp("rep")) / "series.db")
    store.add_events([(CENTER, n, e) for n, e in evs])
    store.add_events([(CENTER, n, e) for n, e in evs[::3]])  # re-sent: duplicates by (center, node, seq)
    return store, evs


# ------------------------------------------------------------------------------------------ the oracle
def _local_day(e: Event) -> date:
    return e.ts.astimezone(TZ).date()


def _nearest_rank(values: list[float], p: int) -> float | None:
    if not values:
        return None
    return sorted(values)[math.ceil(p * len(values) / 100) - 1]


def expected(evs: list[tuple[str, Event]], first: date, last: date, keep: Any) -> dict[str, Any]:
    """The numbers of one row, straight from the raw events: ``keep(node, event)`` says which belong to it."""
    mine = [(n, e) for n, e in evs if first <= _local_day(e) <= last and keep(n, e)]
    of = lambda t: [(n, e) for n, e in mine if e.type == t]  # noqa: E731
    waits = [e.data["wait_s"] for _, e in of("ticket.called") if e.data.get("wait_s") is not None
             and not e.data.get("from_hold")]
    svc = [e.data["service_s"] for _, e in of("ticket.completed") if e.data.get("service_s") is not None]
    prio = {(n, e.data["day"], e.data["ticket"]) for n, e in evs
            if e.type in ("ticket.issued", "ticket.called") and e.data.get("priority")}
    ratings, seen = [], set()
    for n, e in of("ticket.rated"):
        key = (n, e.data["day"], e.data["ticket"])
        ok = e.data["scale"] in (4, 5) and 1 <= e.data["score"] <= e.data["scale"]
        if ok and key not in seen:
            ratings.append(e.data)
        if ok:
            seen.add(key)
    happy = [r for r in ratings if (r["scale"] == 5 and r["score"] >= 4) or (r["scale"] == 4 and r["score"] >= 3)]
    on5 = [r["score"] if r["scale"] == 5 else 1 + (r["score"] - 1) * 4 / 3 for r in ratings]
    reasons: dict[str, int] = {}
    for r in ratings:
        for x in r["reasons"]:
            reasons[x] = reasons.get(x, 0) + 1
    served = len(of("ticket.completed"))
    return {
        "issued": len(of("ticket.issued")), "served": served, "no_show": len(of("ticket.no_show")),
        "transferred": len(of("ticket.transferred")),
        "priority_served": sum(1 for n, e in of("ticket.completed") if (n, e.data["day"], e.data["ticket"]) in prio),
        "waits": len(waits), "wait_mean_s": statistics.fmean(waits) if waits else None,
        "wait_p50_s": _nearest_rank(waits, 50), "wait_p90_s": _nearest_rank(waits, 90),
        "wait_over_15m": sum(w > 900 for w in waits), "wait_over_30m": sum(w > 1800 for w in waits),
        "wait_over_15m_share": sum(w > 900 for w in waits) / len(waits) if waits else None,
        "wait_over_30m_share": sum(w > 1800 for w in waits) / len(waits) if waits else None,
        "service_n": len(svc), "service_mean_s": statistics.fmean(svc) if svc else None,
        "service_p50_s": _nearest_rank(svc, 50), "service_p90_s": _nearest_rank(svc, 90),
        "ratings": len(ratings), "satisfied": len(happy),
        "satisfied_share": len(happy) / len(ratings) if ratings else None,
        "score_mean_5": statistics.fmean(on5) if on5 else None,
        "reasons": dict(sorted(reasons.items())), "coverage": len(ratings) / served if served else None,
    }


def numbers(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("key", "name", "bucket")}


def check_report(rep: dict[str, Any], evs: list[tuple[str, Event]], first: date, last: date) -> None:
    assert numbers(rep["total"]) == expected(evs, first, last, lambda n, e: True)
    for row in rep["services"]:
        want = expected(evs, first, last, lambda n, e, k=row["key"]: e.data.get("service") == k)
        assert numbers(row) == want, row["key"]
    for row in rep["counters"]:
        want = expected(evs, first, last, lambda n, e, k=row["key"]: e.type != "ticket.issued"
                        and e.data.get("counter") == k)
        assert numbers(row) == dict(want, issued=None), row["key"]
    for row in rep["clerks"]:
        want = expected(evs, first, last, lambda n, e, k=row["key"]: e.type != "ticket.issued"
                        and e.data.get("counter") is not None and e.data.get("clerk") == k)
        assert numbers(row) == dict(want, issued=None), row["key"]
    # every group that has events has its row
    assert {r["key"] for r in rep["services"]} == {"A", "B", "C"}
    assert {r["key"] for r in rep["counters"]} == {"1", "2", "3", "4"}
    assert {r["key"] for r in rep["clerks"]} == {"c01", "c02", "c03", None}


# ------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("kind, first, last", [
    ("day", date(2026, 12, 5), date(2026, 12, 5)),
    ("week", date(2026, 11, 30), date(2026, 12, 6)),   # ISO week 49: Monday to Sunday
    ("month", date(2026, 12, 1), date(2026, 12, 31)),
])
def test_report_equals_the_event_log(log, kind: str, first: date, last: date) -> None:  # noqa: ANN001
    store, evs = log
    rep = report_from_store(store, CENTER, period_of(kind, "2026-12-05"), sample.names())
    assert (rep["period"]["first"], rep["period"]["last"]) == (first.isoformat(), last.isoformat())
    check_report(rep, evs, first, last)
    t = rep["total"]
    # the generated log really exercises every path the report counts
    assert t["issued"] > 0 and t["no_show"] > 0 and t["transferred"] > 0 and t["priority_served"] > 0
    assert t["ratings"] > 0 and 0 < t["satisfied"] < t["ratings"] and t["reasons"]
    assert t["wait_over_30m"] > 0
    assert rep["ratings_ignored"] > 0 if kind == "month" else True  # broken and repeated ratings skipped
    # the timeline adds up to the total for counts
    assert sum(b["served"] for b in rep["timeline"]) == t["served"]
    assert sum(b["ratings"] for b in rep["timeline"]) == t["ratings"]
    assert rep["clerks"][-1]["name"] == "(chưa đăng nhập)"
    assert [r["name"] for r in rep["services"]] == ["Đất đai", "Hộ tịch", "Kinh doanh"]


def test_mixed_scales_and_the_satisfied_rule() -> None:
    """One 5-level and one 4-level rating of each level: satisfied = top two levels; mean on the 5 scale."""
    t0 = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    rows = []
    for i, (score, scale) in enumerate([(5, 5), (4, 5), (3, 5), (2, 5), (1, 5), (4, 4), (3, 4), (2, 4), (1, 4)]):
        rows.append(_row("pi-1", i + 1, t0 + timedelta(minutes=i), "ticket.rated",
                         {"ticket": f"A{i:03d}", "day": "2026-12-05", "service": "A", "counter": "1",
                          "score": score, "scale": scale, "reasons": ["slow"] if score <= scale - 2 else [],
                          "clerk": "c01"}))
    rep = compute(rows, period_of("day", "2026-12-05"), {}, center="x", tz="Asia/Ho_Chi_Minh")
    t = rep["total"]
    assert (t["ratings"], t["satisfied"]) == (9, 4)
    assert t["score_mean_5"] == pytest.approx((15 + 5 + 1 + 11 / 3 + 7 / 3) / 9, abs=1e-12)
    assert t["reasons"] == {"slow": 5}
    assert rep["scores"] == {"4": {"1": 1, "2": 1, "3": 1, "4": 1}, "5": {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1}}
    assert t["coverage"] is None  # nothing served in this log: no coverage to speak of


def test_what_a_broken_device_sends_is_skipped_not_miscounted() -> None:
    t0 = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    bad = [{"score": 5, "scale": 5, "reasons": "slow"}, {"score": "5", "scale": 5}, {"score": True, "scale": 5},
           {"score": 3, "scale": 3}, {"score": 0, "scale": 4}, {"scale": 5}]
    rows = [_row("pi-2", i + 1, t0, "ticket.rated", {"ticket": f"B{i:03d}", "day": "2026-12-05", **b})
            for i, b in enumerate(bad)]
    rep = compute(rows, period_of("day", "2026-12-05"), {}, center="x", tz="Asia/Ho_Chi_Minh")
    # the first is a valid 5 whose reasons are not a list (no reason counted, not "s", "l", "o", "w")
    assert (rep["total"]["ratings"], rep["total"]["reasons"], rep["ratings_ignored"]) == (1, {}, 5)


def test_period_bounds_are_local_midnights() -> None:
    p = period_of("month", "2026-12-31")
    since, until = p.bounds("Asia/Ho_Chi_Minh")
    assert since == datetime(2026, 11, 30, 17, 0, tzinfo=UTC) and until == datetime(2026, 12, 31, 17, 0, tzinfo=UTC)
    assert period_of("week", "2027-01-01").label == "2026-W53"  # ISO week years
    assert period_of("week", "2027-01-03").first == date(2026, 12, 28)
    assert period_of("month", "2026-12-15").end == date(2027, 1, 1)
    with pytest.raises(PeriodError):
        period_of("year", "2026-12-05")
    with pytest.raises(PeriodError):
        period_of("day", "05/12/2026")
    # an event one second before local midnight is in the 30 November, the next one in December
    last_nov = datetime(2026, 11, 30, 16, 59, 59, tzinfo=UTC)
    rows = [_row("pi-1", 1, last_nov, "ticket.issued", {"ticket": "A001", "service": "A", "day": "2026-11-30"}),
            _row("pi-1", 2, last_nov + timedelta(seconds=1), "ticket.issued",
                 {"ticket": "A001", "service": "A", "day": "2026-12-01"})]
    month = compute(rows, period_of("month", "2026-12-01"), {}, center="x", tz="Asia/Ho_Chi_Minh")
    week = compute(rows, period_of("week", "2026-12-01"), {}, center="x", tz="Asia/Ho_Chi_Minh")
    nov = compute(rows, period_of("day", "2026-11-30"), {}, center="x", tz="Asia/Ho_Chi_Minh")
    assert (month["total"]["issued"], week["total"]["issued"], nov["total"]["issued"]) == (1, 2, 1)
    assert nov["timeline"][0]["bucket"] == "23" and month["timeline"][0]["bucket"] == "2026-12-01"


def test_a_clerks_report_is_their_row_and_nothing_of_others(log) -> None:  # noqa: ANN001
    store, evs = log
    p = period_of("week", "2026-12-05")
    full = report_from_store(store, CENTER, p, sample.names())
    mine = report_from_store(store, CENTER, p, sample.names(), clerk="c02")
    c02 = next(r for r in full["clerks"] if r["key"] == "c02")
    assert numbers(mine["total"]) == numbers(c02)
    assert [r["key"] for r in mine["clerks"]] == ["c02"] and mine["clerk_name"] == "Trần Văn Minh"
    assert mine["total"]["issued"] is None
    # c02 works only at counter 2 (and at 4? no: 4 has nobody): their counters are theirs alone
    assert [r["key"] for r in mine["counters"]] == ["2"]
    assert sum(r["served"] for r in mine["services"]) == c02["served"]


def test_a_month_of_a_busy_center_is_fast(tmp_path: Path) -> None:
    """31 days x 400 tickets (~47 000 events): well under two seconds on this machine (2 shared cores)."""
    import time

    days = [date(2026, 12, 1) + timedelta(days=i) for i in range(31)]
    store = SeriesStore(tmp_path / "s.db")
    evs = sample.sample_events(days, per_day=400, seed=3)
    store.add_events([(CENTER, n, e) for n, e in evs])
    t0 = time.perf_counter()
    rep = report_from_store(store, CENTER, period_of("month", "2026-12-05"), sample.names())
    took = time.perf_counter() - t0
    assert rep["total"]["issued"] == 31 * 400
    assert took < 4.0, f"a month took {took:.2f} s"  # generous: ~0.5 s measured alone


class _row:  # noqa: N801 - a StoredEvent-like row
    def __init__(self, node: str, seq: int, ts: datetime, type: str, data: dict[str, Any]) -> None:
        self.node, self.seq, self.ts, self.type, self.data = node, seq, ts, type, data
        self.wait_s, self.service_s = data.get("wait_s"), data.get("service_s")
