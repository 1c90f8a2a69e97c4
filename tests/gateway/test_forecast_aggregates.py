"""The forecast from the tallies kept at ingest equals the forecast from the events (a real SQLite store)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bench.loadsim import PROFILES, DaySim
from civiq.contract import Event
from civiq.gateway.balance import Forecast, build_forecast
from civiq.gateway.service import stored_event
from civiq.gateway.store.series import SeriesStore

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
TODAY = date(2026, 1, 20)  # a Tuesday
NOW = datetime(2026, 1, 20, 9, 40, tzinfo=HCM).astimezone(UTC)  # 09:40 local: today is a partial day


def history(days: int = 15) -> list[tuple[str, str, Event]]:
    """``days`` loadsim days before TODAY and TODAY until NOW (the real queue engine), plus the odd cases:
    a call back, a malformed counter time, an expiry, a no-show without its time, another center."""
    out: list[tuple[str, str, Event]] = []
    seq = 0
    for i, back in enumerate(range(days, -1, -1)):
        day = TODAY - timedelta(days=back)
        sim = DaySim(PROFILES[("balanced", "land_rush", "morning_surge")[i % 3]], "profiles", seed=i + 1,
                     on=day, keep_events=True).run()
        for ev in sim.events:
            if ev.ts <= NOW:
                seq += 1
                out.append(("c1", "pi-1", ev.model_copy(update={"seq": seq})))

    def add(ts: datetime, type: str, **data: object) -> None:
        nonlocal seq
        seq += 1
        out.append(("c1", "pi-1", Event(seq=seq, ts=ts, type=type, data=data)))

    t = NOW - timedelta(minutes=5)
    add(t, "ticket.called", service="A", counter="c1", from_hold=True, ticket="A900")  # not a new citizen
    add(t, "ticket.completed", service="A", counter="c1", service_s="slow")  # malformed time
    add(t, "ticket.no_show", service="B", counter="c2")  # no time: a no-show all the same
    add(t - timedelta(days=1), "ticket.no_show", service="D", counter=None)  # expired at day end
    add(t - timedelta(days=2), "ticket.issued", service="Z")  # a service seen once
    add(t - timedelta(days=3), "counter.opened", counter="c9")  # no service: only its day counts
    out.append(("c2", "pi-1", Event(seq=1, ts=t, type="ticket.issued", data={"service": "A"})))
    return out


def from_events(store: SeriesStore, center: str, history_days: int, **kw: object) -> Forecast:
    """What the gateway computed before: build_forecast over the events of the same whole local days."""
    first = (NOW.astimezone(HCM).date() - timedelta(days=history_days))
    since = datetime.combine(first, datetime.min.time(), HCM).astimezone(UTC)
    rows = store.events_between(center, since, NOW + timedelta(microseconds=1))
    return build_forecast([e for e in map(stored_event, rows) if e is not None], now=NOW, **kw)  # type: ignore[arg-type]


def assert_same(a: Forecast, b: Forecast) -> None:
    assert (a.tz, a.now, a.days, a.services, a.recent_min) == (b.tz, b.now, b.days, b.services, b.recent_min)
    assert a.hourly == b.hourly  # same counts through the same code: exactly equal
    assert a.weekday_hourly == b.weekday_hourly
    assert a.recent_per_h == b.recent_per_h and a.expired == b.expired
    assert a.no_show_rate == pytest.approx(b.no_show_rate)
    for x, y in ((a.service_time, b.service_time), (a.counter_time, b.counter_time),
                 (a.counter_service_time, b.counter_service_time)):
        assert x.keys() == y.keys()
        for k in x:  # sums of squares vs two passes
            assert (x[k].n, x[k].mean_s, x[k].var_s2) == (y[k].n, pytest.approx(y[k].mean_s, rel=1e-12),
                                                          pytest.approx(y[k].var_s2, rel=1e-9))


@pytest.fixture(scope="module")
def events() -> list[tuple[str, str, Event]]:
    return history()


@pytest.fixture
def store(tmp_path: Path, events: list[tuple[str, str, Event]]) -> SeriesStore:
    st = SeriesStore(tmp_path / "s.db")
    for i in range(0, len(events), 997):  # many write transactions, as the ingest's batches
        st.add_events(events[i:i + 997])
    st.add_events(events[100:300])  # re-sent: duplicates are not counted again
    yield st
    st.close()


@pytest.mark.parametrize(("history_days", "kw"), [(28, {}), (7, {}), (15, {"min_weekday_days": 2}),
                                                  (28, {"min_pair_samples": 5, "half_life_days": 3.0})])
def test_forecast_from_aggregates_equals_forecast_from_events(store: SeriesStore, history_days: int,
                                                              kw: dict) -> None:
    agg = store.forecast("c1", NOW, history_days, **kw)
    ev = from_events(store, "c1", history_days, **kw)
    assert_same(agg, ev)
    # the cases the comparison must cover are really there
    assert len(agg.days) == min(history_days, 15) + 1 and agg.days[-1] == TODAY.isoformat()
    assert agg.recent_per_h and sum(agg.recent_per_h.values()) > 0
    assert agg.service_time and agg.counter_time and agg.no_show_rate
    if history_days == 15:
        assert len(agg.weekday_hourly) == 7
    if "min_pair_samples" in kw:
        assert agg.counter_service_time
    if history_days == 28:
        assert agg.expired == {"D": 1} and "Z" in agg.services


def test_other_centers_and_rolled_back_writes_do_not_count(store: SeriesStore) -> None:
    before = store.forecast("c1", NOW)
    with pytest.raises(RuntimeError), store.batch():  # e.g. the writer failed half-way through a batch
        store.add_event("c1", "pi-1", Event(seq=10**6, ts=NOW, type="ticket.issued", data={"service": "A"}))
        raise RuntimeError("disk full")
    assert_same(store.forecast("c1", NOW), before)
    assert store.forecast("c2", NOW).recent_per_h == {"A": 1.0}
    assert store.ensure_forecast_aggregates() is None  # the tallies cover exactly the stored events


def test_an_older_store_is_rebuilt_from_its_events_once(store: SeriesStore, tmp_path: Path) -> None:
    expected = store.forecast("c1", NOW)
    with store.batch():  # what a store written by the previous version looks like
        for t in ("fc_days", "fc_arrivals", "fc_times"):
            store._w.execute(f"DELETE FROM {t}")
        store._w.execute("DELETE FROM meta WHERE key='fc_events'")
    assert store.forecast("c1", NOW).hourly == {}
    called = []
    assert store.ensure_forecast_aggregates(before=lambda: called.append(1)) == store.event_count()
    assert called == [1]
    assert_same(store.forecast("c1", NOW), expected)
    assert store.ensure_forecast_aggregates() is None  # idempotent: nothing to do the second time
    # an older version wrote more events meanwhile (the tallies miss them): rebuilt at the next start
    with store.batch():
        store._w.execute("INSERT INTO events SELECT center, node, seq + 1000000, ts, type, service, counter,"
                         " ticket, wait_s, service_s, data, received FROM events WHERE center='c2'")
    assert store.ensure_forecast_aggregates() == store.event_count()
    assert store.forecast("c2", NOW).recent_per_h == {"A": 2.0}


def test_prune_drops_old_days_and_keeps_the_tallies_consistent(store: SeriesStore) -> None:
    store.retention_days = 7
    assert store.prune(NOW) > 0
    assert store.ensure_forecast_aggregates() is None  # pruned events were taken off the tally count
    f = store.forecast("c1", NOW, 28)
    assert f.days[0] == (TODAY - timedelta(days=7)).isoformat()  # the cutoff's own day keeps its tallies


def test_a_failed_commit_leaves_neither_events_nor_tallies(store: SeriesStore) -> None:
    before, n = store.forecast("c1", NOW), store.event_count()
    store._w.execute("CREATE TRIGGER no_more BEFORE INSERT ON fc_arrivals BEGIN SELECT RAISE(ABORT, 'full'); END")
    with pytest.raises(sqlite3.IntegrityError):
        store.add_event("c1", "pi-1", Event(seq=10**6, ts=NOW, type="ticket.issued", data={"service": "A"}))
    store._w.execute("DROP TRIGGER no_more")
    assert store.event_count() == n and not store._w.in_transaction
    assert_same(store.forecast("c1", NOW), before)
    assert store.add_event("c1", "pi-1", Event(seq=10**6, ts=NOW, type="ticket.issued", data={"service": "A"}))
    assert store.ensure_forecast_aggregates() is None
