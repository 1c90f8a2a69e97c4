"""The rating window of a counter (civiq/edge/rating.py) on a real engine and SQLite, with a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from civiq.clock import FakeClock
from civiq.contract import Event, EventType, WorkProfile
from civiq.edge.config import RatingConfig
from civiq.edge.queue import EdgeStore, QueueEngine, QueueError, ServiceDef
from civiq.edge.rating import RatingDesk, RatingDevice

SERVICES = {"A": ServiceDef("A", "Đất đai", "Land"), "B": ServiceDef("B", "Hộ tịch", "Civil status")}
COUNTERS = {"c1": WorkProfile(services=["A", "B"]), "c2": WorkProfile(services=["B", "A"])}
DEVICES = {"r1": RatingDevice("r1", "c1", "gpio", False), "rp1": RatingDevice("rp1", "c1", "page", True),
           "r2": RatingDevice("r2", "c2", "serial", True)}


@pytest.fixture
def setup(tmp_path: Path, clock: FakeClock) -> tuple[QueueEngine, RatingDesk]:
    eng = QueueEngine(EdgeStore(tmp_path / "q.db"), clock, SERVICES, COUNTERS)
    desk = RatingDesk(RatingConfig(), clock=clock, commit=eng.rate, devices=DEVICES)
    eng.subscribe(desk.on_event)
    return eng, desk


def rated(eng: QueueEngine) -> list[Event]:
    return [e for e in eng.store.events() if e.type == EventType.ticket_rated]


def serve(eng: QueueEngine, counter: str = "c1", service: str = "A") -> str:
    label = eng.issue(service).label
    assert eng.call_next(counter).label == label
    eng.complete(counter)
    return label


def test_a_completion_opens_the_window_and_one_press_makes_one_event(setup, clock: FakeClock) -> None:
    eng, desk = setup
    assert desk.window("c1")["state"] == "idle"
    label = serve(eng)
    w = desk.window("c1")
    assert (w["state"], w["ticket"], w["seconds_left"]) == ("open", label, 30.0)
    clock.advance(12)
    out = desk.press("r1", 5)
    assert out.result == "recorded" and out.event is not None
    (ev,) = rated(eng)
    assert ev.seq == out.event.seq and ev.data == {
        "ticket": label, "service": "A", "counter": "c1", "day": "2026-01-05", "score": 5, "scale": 5,
        "reasons": [], "clerk": None, "by": "keys:r1"}
    # one rating per ticket: the second press (same pad or another at the counter) is ignored
    assert desk.press("r1", 1).result == "repeat"
    assert desk.press("rp1", 2).result == "repeat"
    assert len(rated(eng)) == 1
    assert desk.device_counts("r1") == {"ratings": 1, "outside_window": 0, "repeats": 1, "ignored_reasons": 0}
    # the engine refuses a second one too (a restart forgets the window, the log does not)
    with pytest.raises(QueueError, match="already rated"):
        eng.rate(label, "2026-01-05", "c1", "A", 3, 5)


def test_a_press_outside_any_window_is_ignored_and_counted(setup, clock: FakeClock) -> None:
    eng, desk = setup
    assert desk.press("r1", 4).result == "no_window"  # nobody was served yet
    serve(eng)
    clock.advance(30.5)  # the window is over
    assert desk.press("r1", 4).result == "no_window"
    assert desk.press("r2", 4).result == "no_window"  # another counter: its own window, none open
    assert rated(eng) == []
    assert desk.device_counts("r1")["outside_window"] == 2 and desk.device_counts("r2")["outside_window"] == 1
    assert "ignored outside a rating window 2" in desk.status_note("r1")
    assert desk.state()["devices"]["r1"]["outside_window"] == 2


def test_a_low_score_waits_for_reasons_then_records_them(setup, clock: FakeClock) -> None:
    eng, desk = setup
    label = serve(eng, "c2", "B")
    assert desk.press("r2", 2).result == "reasons"  # a pad with reason keys: wait for them
    assert desk.window("c2")["state"] == "reasons"
    clock.advance(3)
    assert desk.reason("r2", "wait").result == "reason"
    assert desk.reason("r2", "nonsense").result == "ignored"
    clock.advance(5)  # 5 s after the last reason key: still waiting (8 s)
    assert desk.tick() == [] and rated(eng) == []
    assert desk.reason("r2", "guidance").result == "reason"
    clock.advance(8)
    (out,) = desk.tick()
    assert out.result == "recorded"
    (ev,) = rated(eng)
    assert (ev.data["ticket"], ev.data["score"], ev.data["reasons"], ev.data["by"]) == (
        label, 2, ["wait", "guidance"], "pad:r2")


def test_a_pad_without_reason_keys_records_a_low_score_at_once(setup) -> None:
    eng, desk = setup
    serve(eng)
    assert desk.press("r1", 1).result == "recorded"
    assert rated(eng)[0].data["reasons"] == []


def test_the_page_sends_its_reasons_with_done(setup) -> None:
    eng, desk = setup
    serve(eng)
    assert desk.press("rp1", 3).result == "reasons"
    assert desk.finish("rp1", ["facilities", "unknown", "wait"]).result == "recorded"
    (ev,) = rated(eng)
    assert (ev.data["score"], ev.data["reasons"], ev.data["by"]) == (3, ["facilities", "wait"], "page")


def test_a_new_completion_closes_the_previous_window(setup, clock: FakeClock) -> None:
    eng, desk = setup
    first = serve(eng)
    clock.advance(5)
    second = serve(eng)  # the clerk served the next citizen quickly: the first can no longer rate
    assert desk.window("c1")["ticket"] == second
    assert desk.press("r1", 4).event.data["ticket"] == second
    # a low score still waiting for reasons is kept when the next completion comes (recorded at the next tick)
    third = serve(eng)
    assert desk.press("rp1", 1).result == "reasons"
    assert desk.reason("rp1", "attitude").result == "reason"
    fourth = serve(eng)
    assert desk.window("c1")["ticket"] == fourth
    (out,) = desk.tick()
    assert (out.result, out.ticket) == ("recorded", third)
    assert [(e.data["ticket"], e.data["score"], e.data["reasons"]) for e in rated(eng)] == [
        (second, 4, []), (third, 1, ["attitude"])]
    assert first not in [e.data["ticket"] for e in rated(eng)]


def test_clerk_and_dossier_of_the_completion_are_copied(setup, clock: FakeClock) -> None:
    """The clerk helper's engine puts ``clerk`` / ``dossier`` on ``ticket.completed``; the rating copies them."""
    eng, desk = setup
    label = eng.issue("A").label
    eng.call_next("c1")
    eng.complete("c1")
    completed = [e for e in eng.store.events() if e.type == EventType.ticket_completed][-1]
    data = dict(completed.data, clerk="lan", dossier="H29.22-241205-0001")
    desk.on_event(completed.model_copy(update={"data": data}))
    ev = desk.press("r1", 4).event
    assert ev is not None and (ev.data["ticket"], ev.data["clerk"], ev.data["dossier"]) == (
        label, "lan", "H29.22-241205-0001")


def test_a_four_level_scale_and_its_defaults() -> None:
    cfg = RatingConfig(scale=4)
    assert cfg.low_max() == 2 and [t.vi for t in cfg.level_texts()] == [
        "Rất không hài lòng", "Không hài lòng", "Hài lòng", "Rất hài lòng"]
    assert RatingConfig().low_max() == 3 and RatingConfig().level_texts()[2].vi == "Bình thường"
    assert list(RatingConfig().reasons) == ["wait", "attitude", "guidance", "appointments", "facilities"]


def test_the_engine_refuses_what_is_not_a_rating(tmp_path: Path, clock: FakeClock) -> None:
    eng = QueueEngine(EdgeStore(tmp_path / "q.db"), clock, SERVICES, COUNTERS)
    t = eng.issue("A")
    with pytest.raises(QueueError, match="not completed"):
        eng.rate(t.label, t.day, "c1", "A", 4, 5)
    eng.call_next("c1")
    eng.complete("c1")
    for score, scale in ((0, 5), (6, 5), (5, 4), (True, 5)):
        with pytest.raises(QueueError):
            eng.rate(t.label, t.day, "c1", "A", score, scale)  # type: ignore[arg-type]
    eng.rate(t.label, t.day, "c1", "A", 4, 4, reasons=["wait", "wait"], by="api")
    # the fold keeps "rated" across a restart (replayed from the log)
    again = QueueEngine(EdgeStore(tmp_path / "q.db"), clock, SERVICES, COUNTERS)
    with pytest.raises(QueueError, match="already rated"):
        again.rate(t.label, t.day, "c1", "A", 4, 4)
    (ev,) = [e for e in again.store.events() if e.type == EventType.ticket_rated]
    assert ev.data["reasons"] == ["wait"]


def test_a_four_level_desk(tmp_path: Path, clock: FakeClock) -> None:
    eng = QueueEngine(EdgeStore(tmp_path / "q.db"), clock, SERVICES, COUNTERS)
    desk = RatingDesk(RatingConfig(scale=4), clock=clock, commit=eng.rate, devices=DEVICES)
    eng.subscribe(desk.on_event)
    serve(eng)
    assert desk.press("rp1", 5).result == "error"  # no fifth level
    assert desk.press("rp1", 3).result == "recorded"  # 3 of 4 is satisfied: no reasons asked
    serve(eng)
    assert desk.press("rp1", 2).result == "reasons"  # 2 of 4 is not
    clock.advance(8)
    (out,) = desk.tick()
    assert [(e.data["score"], e.data["scale"]) for e in rated(eng)] == [(3, 4), (2, 4)] and out.result == "recorded"
