"""SeriesStore on a real SQLite file: de-duplication, gap tracking, minute series, queries, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from civiq.contract import Event, Health, QueueSnapshot
from civiq.gateway.store.series import SeqState, SeriesStore

T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)  # 08:00 in Ho Chi Minh City


def ev(seq: int, type: str = "ticket.issued", at: datetime | None = None, **data: object) -> Event:
    return Event(seq=seq, ts=at or T0 + timedelta(seconds=seq), type=type, data=data)


@pytest.fixture
def store(tmp_path):
    s = SeriesStore(tmp_path / "series.db", retention_days=30)
    yield s
    s.close()


def test_duplicates_ignored_and_remembered_across_restart(tmp_path) -> None:
    path = tmp_path / "series.db"
    s = SeriesStore(path)
    seqs = list(range(1, 51)) + [3, 7, 7, 50, 1]
    flags = s.add_events([("c1", "pi-1", ev(q, service="a")) for q in seqs], T0)
    assert flags == [True] * 50 + [False] * 5
    assert s.event_count("c1") == 50
    s.close()

    again = SeriesStore(path)
    assert again.add_event("c1", "pi-1", ev(25, service="a"), T0) is False
    assert again.add_event("c1", "pi-2", ev(25, service="a"), T0) is True  # another node: its own seqs
    assert again.event_count() == 51
    assert again.node_seq("c1", "pi-1") == SeqState(50, 50)
    again.close()


def test_gap_tracking_fills_and_survives_restart(tmp_path) -> None:
    path = tmp_path / "series.db"
    s = SeriesStore(path)
    for q in (1, 2, 3, 6, 8):
        s.add_event("c1", "pi-1", ev(q), T0)
    assert s.gaps() == {("c1", "pi-1"): SeqState(3, 8)}
    assert s.missing_seqs("c1", "pi-1") == [4, 5, 7]
    s.add_event("c1", "pi-1", ev(4), T0)
    s.close()

    s = SeriesStore(path)
    assert s.node_seq("c1", "pi-1") == SeqState(4, 8)
    s.add_event("c1", "pi-1", ev(5), T0)  # 5 joins 4 and the already stored 6
    assert s.node_seq("c1", "pi-1") == SeqState(6, 8)
    s.add_event("c1", "pi-1", ev(7), T0)
    assert s.gaps() == {}
    assert s.node_seq("c1", "pi-1") == SeqState(8, 8)
    s.close()


def test_first_sighting_sets_baseline_and_snapshot_reveals_tail_gap(store: SeriesStore) -> None:
    store.add_event("c1", "pi-1", ev(500), T0)
    assert store.gaps() == {}  # history from before the gateway knew the node is not claimed
    store.note_last_seq("c1", "pi-1", 503)  # the queue snapshot says the node wrote up to 503
    assert store.gaps() == {("c1", "pi-1"): SeqState(500, 503)}
    store.note_last_seq("c1", "pi-9", 10)  # never seen an event from pi-9: ignored
    assert ("c1", "pi-9") not in store.gaps()
    store.skip_gap("c1", "pi-1")
    assert store.gaps() == {}


def test_untrusted_event_data_is_stored_safely(store: SeriesStore) -> None:
    weird = Event(seq=1, ts=T0, type="ticket.called",
                  data={"service": ["not", "a", "string"], "wait_s": "abc", "counter": None, "x": {"y": 1}})
    assert store.add_event("c1", "pi-1", weird, T0)
    (got,) = store.events_between("c1", T0 - timedelta(seconds=1), T0 + timedelta(seconds=1))
    assert got.wait_s is None and got.counter is None and got.data["x"] == {"y": 1}
    # an edge clock stuck in 1970 is filed under the receive time
    store.add_event("c1", "pi-1", Event(seq=2, ts=datetime(1970, 1, 1, tzinfo=UTC), type="ticket.issued"), T0)
    assert [e.seq for e in store.events_between("c1", T0, T0 + timedelta(seconds=1))] == [1, 2]


def snap(at: datetime, waiting_a: int, oldest_a: float = 60.0, served_1: int = 4) -> QueueSnapshot:
    return QueueSnapshot(
        ts=at, day="2026-01-05",
        services={"a": {"waiting": waiting_a, "oldest_wait_s": oldest_a, "eta_s": 300},
                  "b": {"waiting": 1, "oldest_wait_s": 30}},
        counters={"1": {"state": "open", "ticket": "A001", "services": ["a"], "served_today": served_1},
                  "2": {"state": "closed"}},
    )


def test_minute_series_one_value_per_minute_last_wins(store: SeriesStore) -> None:
    store.record_queue("c1", "pi-1", snap(T0 + timedelta(seconds=5), 3), T0)
    store.record_queue("c1", "pi-1", snap(T0 + timedelta(seconds=50), 7, oldest_a=400), T0)  # same minute
    store.record_queue("c1", "pi-1", snap(T0 + timedelta(seconds=70), 2, served_1=5), T0)  # next minute
    waiting = store.series("c1", "waiting", since=T0, until=T0 + timedelta(hours=1))
    assert waiting == {"a": [(T0, 7.0), (T0 + timedelta(minutes=1), 2.0)],
                       "b": [(T0, 1.0), (T0 + timedelta(minutes=1), 1.0)]}
    assert store.series("c1", "longest_wait_s", key="") == {"": [(T0, 400.0), (T0 + timedelta(minutes=1), 60.0)]}
    assert store.series("c1", "served", key="1")["1"][-1] == (T0 + timedelta(minutes=1), 5.0)
    assert store.series("c1", "counters_open", key="")[""][0][1] == 1.0
    assert store.series("c1", "waiting", since=T0 + timedelta(minutes=1)) == {
        "a": [(T0 + timedelta(minutes=1), 2.0)], "b": [(T0 + timedelta(minutes=1), 1.0)]}
    assert store.series("c2", "waiting") == {}


def test_health_minutes_encode_device_state(store: SeriesStore) -> None:
    h = Health(ts=T0, host={"cpu_temp_c": 51.5},
               devices=[{"id": "printer-1", "kind": "printer", "state": "failed", "detail": "paper out"},
                        {"id": "led-1", "kind": "display", "state": "ok"}], outbox={"pending": 12})
    store.record_health("c1", "pi-1", h, T0)
    assert store.series("c1", "device_state", node="pi-1") == {"led-1": [(T0, 0.0)], "printer-1": [(T0, 2.0)]}
    assert store.series("c1", "outbox_pending", node="pi-1") == {"": [(T0, 12.0)]}
    assert store.series("c1", "cpu_temp_c") == {"": [(T0, 51.5)]}


def test_events_between_filters_by_type_and_uses_the_index(store: SeriesStore) -> None:
    items = []
    for i in range(1, 31):
        typ = ("ticket.issued", "ticket.called", "ticket.completed")[i % 3]
        items.append(("c1", "pi-1", ev(i, typ, service="a", counter="1", wait_s=10 * i, service_s=i)))
    items.append(("c2", "pi-1", ev(1, "ticket.issued", service="a")))
    store.add_events(items, T0)
    called = store.events_between("c1", T0, T0 + timedelta(minutes=5), types=["ticket.called"])
    assert [e.seq for e in called] == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]
    assert called[0].wait_s == 10.0 and called[0].service == "a" and called[0].ts == T0 + timedelta(seconds=1)
    window = store.events_between("c1", T0 + timedelta(seconds=10), T0 + timedelta(seconds=20))
    assert [e.seq for e in window] == list(range(10, 20))
    assert store.events_between("c1", T0, T0 + timedelta(hours=1), types=[]) == []

    plan = " ".join(str(r) for r in store._r().execute(
        "EXPLAIN QUERY PLAN SELECT * FROM events WHERE center=? AND ts>=? AND ts<? AND type IN (?)",
        ("c1", 0, 1, "ticket.called")))
    assert "events_center_type_ts" in plan or "events_center_ts" in plan, plan


def test_daily_summary_uses_local_day(store: SeriesStore) -> None:
    day_start = datetime(2026, 1, 4, 17, 0, tzinfo=UTC)  # 2026-01-05 00:00 in Asia/Ho_Chi_Minh
    evs = [
        ev(1, "ticket.issued", at=day_start - timedelta(minutes=1), service="a"),  # the day before
        ev(2, "ticket.issued", at=T0, service="a"),
        ev(3, "ticket.issued", at=T0, service="b"),
        ev(4, "ticket.called", at=T0 + timedelta(minutes=5), service="a", counter="1", wait_s=300),
        ev(5, "ticket.called", at=T0 + timedelta(minutes=6), service="b", counter="2", wait_s=100),
        ev(6, "ticket.completed", at=T0 + timedelta(minutes=9), service="a", counter="1", service_s=240),
        ev(7, "ticket.no_show", at=T0 + timedelta(minutes=9), service="b", counter="2"),
    ]
    store.add_events([("c1", "pi-1", e) for e in evs], T0)
    store.record_queue("c1", "pi-1", snap(T0, 9), T0)
    s = store.daily_summary("c1", "2026-01-05")
    assert (s["issued"], s["called"], s["served"], s["no_show"]) == (2, 2, 1, 1)
    assert s["avg_wait_s"] == 200 and s["max_wait_s"] == 300 and s["avg_service_s"] == 240
    assert s["services"]["a"] == {"issued": 1, "served": 1, "no_show": 0, "avg_wait_s": 300.0,
                                  "max_wait_s": 300.0, "avg_service_s": 240.0}
    assert s["counters"]["1"]["served"] == 1 and s["counters"]["1"]["busy_s"] == 240
    assert s["peak_waiting"] == 10  # 9 in a + 1 in b
    assert store.daily_summary("c1", "2026-01-04")["issued"] == 1
    assert store.daily_summary("c1", "2026-01-06")["avg_wait_s"] is None


def test_state_saved_and_prune_by_retention(store: SeriesStore) -> None:
    assert store.load_state() is None
    store.save_state('{"format": 1}')
    store.save_state('{"format": 1, "nodes": []}')
    assert store.load_state() == '{"format": 1, "nodes": []}'

    old = T0 - timedelta(days=40)
    store.add_events([("c1", "pi-1", ev(1, at=old)), ("c1", "pi-1", ev(2, at=T0))], T0)
    store.record_queue("c1", "pi-1", snap(old, 1), T0)
    store.record_queue("c1", "pi-1", snap(T0, 2), T0)
    assert store.prune(T0) > 0
    assert store.event_count("c1") == 1
    assert [t for t, _ in store.series("c1", "waiting", key="a")["a"]] == [T0]
    assert store.add_event("c1", "pi-1", ev(1, at=old), T0) is True  # pruned: stored again, no gap
    assert store.gaps() == {}
