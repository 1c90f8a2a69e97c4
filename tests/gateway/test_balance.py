"""The load-balancing advisor: forecast from events, advice with hysteresis, and its effect on a simulated day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bench.loadsim import PROFILES, history_for, simulate
from civiq.clock import local_day
from civiq.contract import CounterState, Event, PriorityRule, QueueSnapshot, ServiceQueue, WorkProfile
from civiq.gateway.balance import AdviceError, Forecast, advise, build_forecast, erlang_c, predict, time_stats

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def local(day: int, hh: int, mm: int) -> datetime:
    return datetime(2026, 1, day, hh, mm, tzinfo=HCM).astimezone(UTC)


class Log:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, ts: datetime, type: str, **data: object) -> None:
        self.events.append(Event(seq=len(self.events) + 1, ts=ts, type=type, data=data))


# ============================================================================================ forecast
@pytest.fixture
def history() -> Log:
    log = Log()
    for mm in (5, 15, 25, 35):  # Monday 5 Jan: 4 land tickets in the 8 o'clock hour, 1 civil-status at 14h
        log.add(local(5, 8, mm), "ticket.issued", ticket="A", service="A")
    log.add(local(5, 14, 10), "ticket.issued", service="B")
    for mm in (10, 20):  # Tuesday: 2
        log.add(local(6, 8, mm), "ticket.issued", service="A")
    log.add(local(7, 8, 40), "ticket.issued", service="A")  # Wednesday, the current hour
    for i, secs in enumerate((300, 600, 900)):
        log.add(local(6, 9, i), "ticket.called", service="A", counter="c1", wait_s=60)
        log.add(local(6, 10, i), "ticket.completed", service="A", counter="c1", service_s=secs)
    for i in range(2):
        log.add(local(6, 11, i), "ticket.called", service="A", counter="c1", wait_s=60)
    log.add(local(6, 11, 5), "ticket.no_show", service="A", counter="c1", service_s=90)  # absent citizen
    log.add(local(6, 23, 59), "ticket.no_show", service="A", counter=None, service_s=None)  # day-end expiry
    log.add(local(6, 11, 6), "ticket.completed", service="A", counter="c1", service_s="slow")  # malformed
    log.add(local(6, 11, 7), "ticket.completed", service="A", counter="c1", service_s=-5)  # malformed
    log.add(local(6, 11, 8), "ticket.completed")  # no data at all
    return log


def test_arrival_rate_by_local_hour_weighted_towards_recent_days(history: Log) -> None:
    now = local(7, 8, 50)
    f = build_forecast(history.events, now=now)
    w_mon, w_tue = 0.5 ** (2 / 7), 0.5 ** (1 / 7)
    # today's 8 o'clock hour is not over: it is not used (Monday 4, Tuesday 2, Tuesday weighs more)
    assert f.arrivals_per_hour("A", local(8, 8, 30)) == pytest.approx((4 * w_mon + 2 * w_tue) / (w_mon + w_tue))
    assert f.arrivals_per_hour("A", local(8, 7, 30)) == 0.0  # 7 o'clock observed on three days: all zero
    assert f.arrivals_per_hour("B", local(8, 14, 0)) == pytest.approx(w_mon / (w_mon + w_tue))
    half = f.mean_arrivals_per_hour("A", local(8, 8, 30), local(8, 9, 30))
    assert half == pytest.approx(f.arrivals_per_hour("A", local(8, 8, 0)) / 2)
    assert f.recent_per_h["A"] == pytest.approx(1.0)  # one ticket in the last hour
    assert f.days == ("2026-01-05", "2026-01-06", "2026-01-07")
    assert f.weekday_hourly == {}  # one day per weekday is not enough for a weekday curve


def test_weekday_curve_when_enough_days(history: Log) -> None:
    f = build_forecast(history.events, now=local(7, 8, 50), min_weekday_days=1)
    assert f.arrivals_per_hour("A", local(12, 8, 0)) == pytest.approx(4.0)  # a Monday: Monday's curve
    assert f.arrivals_per_hour("A", local(13, 8, 0)) == pytest.approx(2.0)  # a Tuesday: Tuesday's


def test_service_times_no_shows_and_expiry(history: Log) -> None:
    f = build_forecast(history.events, now=local(7, 8, 50), min_pair_samples=3)
    a = f.service_time["A"]
    assert (a.n, a.mean_s, a.var_s2) == (3, 600.0, pytest.approx(60000.0))
    assert f.counter_time["A"].n == 4  # the no-show's recall time is counter time too
    assert f.counter_time["A"].mean_s == pytest.approx((300 + 600 + 900 + 90) / 4)
    assert f.no_show_rate["A"] == pytest.approx(1 / 5)
    assert f.expired == {"A": 1}
    assert f.time_for("A", "c1") is f.counter_service_time[("c1", "A")]
    assert f.time_for("A", "c9") is f.counter_time["A"]
    assert time_stats([]) is None


def test_forecast_of_nothing_is_empty_not_an_error() -> None:
    f = build_forecast([])
    assert f.arrivals_per_hour("A", local(5, 8, 0)) is None and f.service_time == {}


# ============================================================================================ queueing
def test_queueing_formulas() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    p = predict(lam=0.0, q0=3, c=0, mean_s=300, scv_s=1, horizon_s=3600)
    assert p.wait_now_s >= 3600  # nobody serves it: charged as very long, never infinite
    drained = predict(lam=0.0, q0=6, c=2, mean_s=300, scv_s=1, horizon_s=3600)
    assert drained.wait_now_s == pytest.approx(900)  # 6 ahead, 2 counters of 5 min


# ============================================================================================ advisor
def forecast(rates_h: dict[str, float], mean_s: dict[str, float], now: datetime) -> Forecast:
    """A flat history: the same rate every hour, a known mean counter time with exponential variance."""
    ts = {s: time_stats([m * 0.5, m * 1.5] * 10) for s, m in mean_s.items()}
    return Forecast(tz="Asia/Ho_Chi_Minh", now=None, days=("2026-01-05",),
                    hourly={s: (r,) * 24 for s, r in rates_h.items()}, weekday_hourly={},
                    service_time=ts, counter_time=ts, counter_service_time={}, no_show_rate={}, expired={},
                    recent_per_h={}, services=tuple(rates_h))


def snapshot(now: datetime, waiting: dict[str, int], counters: dict[str, str]) -> QueueSnapshot:
    return QueueSnapshot(ts=now, day="2026-01-05",
                         services={s: ServiceQueue(waiting=n) for s, n in waiting.items()},
                         counters={c: CounterState(state=st) for c, st in counters.items()})


PROFILES4 = {"c1": WorkProfile(services=["A"]), "c2": WorkProfile(services=["A"]),
             "c3": WorkProfile(services=["B"]), "c4": WorkProfile(services=["B"])}
SKILLS = {"c1": ["A", "B"], "c2": ["A"], "c3": ["B", "A"], "c4": ["B"]}
NOW = local(5, 9, 0)
OPEN4 = dict.fromkeys(PROFILES4, "open")


def test_quiet_center_gets_no_change() -> None:
    stats = forecast({"A": 2, "B": 4}, {"A": 600, "B": 300}, NOW)
    a = advise(snapshot(NOW, {"A": 0, "B": 0}, OPEN4), PROFILES4, stats, NOW, skills=SKILLS, version=3)
    assert a.change is False and a.policy is None and a.actions == []
    assert a.profiles == PROFILES4
    assert a.mean_wait_s_recommended == a.mean_wait_s_current < 120
    assert a.reasons and all(r.vi and r.en for r in a.reasons)
    assert "Giữ phân công" in a.reasons[-1].vi and "Keep the current profiles" in a.reasons[-1].en
    assert {"keep", "skills"} <= set(a.scores)  # "leave as is" and "longest wait first over skills" always tried


def test_skewed_center_gets_help_within_skills_and_does_not_flap() -> None:
    stats = forecast({"A": 14, "B": 6}, {"A": 600, "B": 300}, NOW)
    snap = snapshot(NOW, {"A": 12, "B": 0}, OPEN4)
    a = advise(snap, PROFILES4, stats, NOW, skills=SKILLS, version=7)
    assert a.change is True and a.policy is not None
    assert a.policy.version == 7 and a.policy.issued_at == NOW
    assert set(a.policy.counters) == set(PROFILES4)  # an edge policy replaces the previous one: name them all
    c3 = a.policy.counters["c3"]
    assert "A" in c3.services or any(r.service == "A" for r in c3.rules)  # c3's staff can do land: it helps
    c4 = a.policy.counters["c4"]
    assert "A" not in c4.services and all(r.service != "A" for r in c4.rules)  # c4 cannot: never assigned
    assert a.recommended["A"].p95_wait_s < a.current["A"].p95_wait_s
    assert a.p95_wait_s_recommended < a.p95_wait_s_current
    assert any("c3" in r.en and "A" in r.en for r in a.reasons) and any("Quầy c3" in r.vi for r in a.reasons)
    again = advise(snap, a.profiles, stats, NOW, skills=SKILLS, version=8)  # applied: asking again keeps it
    assert again.change is False and again.policy is None


def test_a_dropped_service_comes_back() -> None:
    """An earlier policy took land (A) from c3; land is now overloaded: c3 (skilled for A) takes it again,
    also when the only record of that skill is its configured (home) profile."""
    home = {**PROFILES4, "c3": WorkProfile(services=["B", "A"])}
    in_force = {**PROFILES4, "c3": WorkProfile(services=["B"])}
    stats = forecast({"A": 14, "B": 4}, {"A": 600, "B": 300}, NOW)
    snap = snapshot(NOW, {"A": 14, "B": 0}, OPEN4)
    for kw in ({"skills": SKILLS}, {"home": home}):
        a = advise(snap, in_force, stats, NOW, **kw)  # type: ignore[arg-type]
        assert a.policy is not None, kw
        c3 = a.policy.counters["c3"]
        assert "A" in c3.services or any(r.service == "A" for r in c3.rules), kw


def test_rules_survive_a_push() -> None:
    """The rules of the profiles in force (and of the configured ones) are in every profile the advisor
    pushes: an edge policy replaces the profiles whole, so a rule left out would be erased."""
    rule_c4 = PriorityRule(service="B", over_minutes=25)
    rule_c2 = PriorityRule(service="A", over_minutes=40)
    in_force = {**PROFILES4, "c4": WorkProfile(services=["B"], rules=[rule_c4])}
    home = {**PROFILES4, "c2": WorkProfile(services=["A"], rules=[rule_c2])}
    stats = forecast({"A": 14, "B": 6}, {"A": 600, "B": 300}, NOW)
    a = advise(snapshot(NOW, {"A": 12, "B": 0}, OPEN4), in_force, stats, NOW, skills=SKILLS, home=home)
    assert a.policy is not None
    assert rule_c4 in a.policy.counters["c4"].rules
    assert rule_c2 in a.policy.counters["c2"].rules


def test_no_waiting_service_is_left_without_a_counter() -> None:
    """The profiles in force leave B (people waiting) to nobody: the advice gives it to a skilled counter even
    though that costs A, and says why."""
    in_force = {"c1": WorkProfile(services=["A"]), "c2": WorkProfile(services=["A"]),
                "c3": WorkProfile(services=["A"]), "c4": WorkProfile(services=["A"])}
    stats = forecast({"A": 20, "B": 1}, {"A": 600, "B": 300}, NOW)
    a = advise(snapshot(NOW, {"A": 20, "B": 3}, OPEN4), in_force, stats, NOW, skills=SKILLS)
    assert a.change is True and a.policy is not None
    assert any("B" in p.services for k, p in a.policy.counters.items() if k in ("c1", "c3", "c4"))
    assert any("Nobody serves B" in r.en for r in a.reasons)
    assert a.recommended["B"].counters > 0 and a.recommended["B"].p95_wait_s < 3600
    assert "c2" not in [k for k, p in a.policy.counters.items() if "B" in p.services]  # c2 cannot do B


def test_the_gateway_passes_skills_from_the_birth_and_keeps_rules(tmp_path) -> None:  # noqa: ANN001
    """End to end on the gateway side: the birth names each counter's skills and configured profile, the queue
    snapshot the rules in force; :meth:`Gateway.advise` uses them all (a rule survives the push, the skill of c3
    for land is used although no profile in force lists it)."""
    from civiq.contract import Status
    from civiq.dev.broker import free_port
    from civiq.gateway.service import Gateway
    from civiq.gateway.settings import GatewaySettings

    settings = GatewaySettings.load(data_dir=tmp_path / "gw", http={"port": free_port()},
                                    mqtt={"host": "127.0.0.1", "port": free_port()})
    gw = Gateway(settings, channels=[])
    now = gw.clock.now()
    rule = PriorityRule(service="B", over_minutes=25)
    pushed = PriorityRule(service="B", over_minutes=15)
    gw.state.apply_status("q1", "pi-1", Status(
        online=True, bdseq=1, ts=now, counters={k: k for k in PROFILES4},
        counter_skills=SKILLS, counter_profiles={**PROFILES4, "c4": WorkProfile(services=["B"], rules=[rule])}),
        now)
    snap = QueueSnapshot(ts=now, day=local_day(now), services={"A": ServiceQueue(waiting=25, oldest_wait_s=1500),
                                                               "B": ServiceQueue(waiting=0)},
                         counters={k: CounterState(state="open", services=p.services,
                                                   rules=[pushed] if k == "c1" else [])
                                   for k, p in PROFILES4.items()})
    gw.state.apply_queue("q1", "pi-1", snap, now)
    a = gw.advise("q1")
    assert a is not None and a.policy is not None
    assert rule in a.policy.counters["c4"].rules  # configured, from the birth
    assert pushed in a.policy.counters["c1"].rules  # in force (an earlier policy), from the snapshot
    c3 = a.policy.counters["c3"]
    assert "A" in c3.services or any(r.service == "A" for r in c3.rules)
    assert "A" not in a.policy.counters["c4"].services


def test_staff_actions_open_a_closed_counter_or_move_a_clerk() -> None:
    profiles = {**PROFILES4, "c5": WorkProfile(services=["A"])}
    stats = forecast({"A": 16, "B": 6}, {"A": 600, "B": 300}, NOW)
    snap = snapshot(NOW, {"A": 15, "B": 0}, {**OPEN4, "c5": "closed"})
    a = advise(snap, profiles, stats, NOW, skills=SKILLS)
    opens = [x for x in a.actions if x.kind == "open"]
    assert opens and opens[0].counter == "c5" and a.open_counter is not None
    assert opens[0].p95_wait_s_after <= opens[0].p95_wait_s_before - 120
    assert "Mở quầy c5" in opens[0].reason.vi and "Open counter c5" in opens[0].reason.en
    assert "phút" in opens[0].reason.vi and "min" in opens[0].reason.en
    # nothing to open, and land short of skilled counters: put a land clerk at a counter that can spare time
    b = advise(snap, profiles, stats, NOW, skills=SKILLS, open_counters_possible=[])
    assert b.open_counter is None and all(x.kind != "open" for x in b.actions)
    moves = [x for x in b.actions if x.kind == "move"]
    assert moves and moves[0].service == "A" and moves[0].counter == "c4"
    assert moves[0].p95_wait_s_after < moves[0].p95_wait_s_before
    assert "c4" in moves[0].reason.en and "A" in moves[0].reason.vi


def test_bad_input_is_a_clear_error() -> None:
    stats = forecast({"A": 6}, {"A": 600}, NOW)
    snap = snapshot(NOW, {"A": 0}, {"c1": "open"})
    with pytest.raises(AdviceError, match="horizon_min"):
        advise(snap, {"c1": WorkProfile(services=["A"])}, stats, NOW, horizon_min=0)
    with pytest.raises(AdviceError, match="unknown service"):
        advise(snap, {"c1": WorkProfile(services=["A"])}, stats, NOW, skills={"c1": ["Z"]})
    with pytest.raises(AdviceError, match="version"):
        advise(snap, {"c1": WorkProfile(services=["A"])}, stats, NOW, version=0)
    with pytest.raises(AdviceError, match="replications"):
        advise(snap, {"c1": WorkProfile(services=["A"])}, stats, NOW, replications=0)


# ============================================================================================ acceptance
@pytest.mark.parametrize("seed", [1, 2])
def test_advice_lowers_the_simulated_p95_on_a_skewed_day(seed: int) -> None:
    """The land-office rush, same citizens, with and without the advisor's policies pushed to the engine."""
    day = PROFILES["land_rush"]
    without = simulate(day, "profiles", seed=seed)
    advised = simulate(day, "advisor", seed=seed, history=history_for(day, seed))
    assert advised.tickets == without.tickets
    assert advised.policies_applied >= 1
    assert advised.p95_wait_s < 0.8 * without.p95_wait_s
    assert advised.mean_wait_s < without.mean_wait_s


def test_history_days_are_earlier_days() -> None:
    ev = history_for(PROFILES["balanced"], seed=1, days=1)
    f = build_forecast(ev)
    assert f.days == ("2026-01-05",)
    assert sum(f.hourly["A"]) > 10 and f.service_time["A"].mean_s > 0
    assert (ev[-1].ts - ev[0].ts) < timedelta(hours=16)


def test_the_center_page_gets_the_staff_actions_in_both_languages_once() -> None:
    from civiq.gateway.adapter import advice_json

    profiles = {**PROFILES4, "c5": WorkProfile(services=["A"])}
    stats = forecast({"A": 16, "B": 6}, {"A": 600, "B": 300}, NOW)
    a = advise(snapshot(NOW, {"A": 15, "B": 0}, {**OPEN4, "c5": "closed"}), profiles, stats, NOW, skills=SKILLS)
    j = advice_json("q1", a, {k: list(p.services) for k, p in profiles.items()})
    opened = [x for x in j["actions"] if x["kind"] == "open"]
    assert opened and opened[0]["counter"] == "c5" and opened[0]["p95_after_s"] < opened[0]["p95_before_s"]
    assert opened[0]["text_vi"].startswith("Mở quầy c5") and opened[0]["text_en"].startswith("Open counter c5")
    assert "Mở quầy" not in j["reason_vi"] and "Open counter" not in j["reason_en"]  # said once, in the list
