"""Clerks at the counters in the queue engine: sign-in/out events, `clerk` on every counter-work event, the
automatic sign-outs (elsewhere, counter closed, day end), a restart that keeps who is signed in, a dossier
code on a completion, and a center without clerks that writes no `clerk` key at all."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from civiq.clock import FakeClock
from civiq.contract import EventType
from civiq.edge.queue import EdgeStore, QueueEngine, QueueError
from tests.edge.test_queue_engine import COUNTERS, SERVICES, events

CLERKS = ("lan", "minh", "hoa")
WORK = {"ticket.called", "ticket.recalled", "ticket.held", "ticket.no_show", "ticket.completed",
        "ticket.transferred", "counter.opened", "counter.closed", "counter.break"}


def make(tmp_path: Path, clock: FakeClock, **kw: object) -> QueueEngine:
    kw.setdefault("clerks", CLERKS)
    return QueueEngine(EdgeStore(tmp_path / "queue.db"), clock, SERVICES, COUNTERS, **kw)


def log(eng: QueueEngine, after: int = 0) -> list[tuple[str, dict]]:
    return [(str(e.type), e.data) for e in eng.store.events(after_seq=after)]


def test_sign_in_puts_the_clerk_on_every_counter_work_event_until_sign_out(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    for s in "AAAB":
        eng.issue(s)
    r = eng.sign_in("c1", "lan", by="keypad:k1")
    assert (r.counter, r.clerk, r.changed) == ("c1", "lan", True)
    assert eng.sign_in("c1", "lan", by="api").changed is False  # already there: nothing logged
    assert eng.clerk_at("c1") == "lan" and eng.signed_in() == {"c1": "lan"}
    start = eng.last_seq - 1
    eng.call_next("c1")
    eng.recall("c1")
    eng.hold("c1", by="api")
    eng.call_held("c1", by="api")
    eng.transfer("c1", to_service="B")
    eng.call_next("c1")
    eng.no_show("c1")
    eng.call_next("c1")
    eng.break_counter("c1")
    eng.call_next("c1")  # reopens it (counter.opened) and calls
    eng.complete("c1", dossier="  H29.22-241205-0001 ")
    eng.call_next("c2")  # nobody signed in at c2: no key
    got = log(eng, start)
    assert got[0] == ("clerk.signed_in", {"counter": "c1", "clerk": "lan", "by": "keypad:k1"})
    work = [(t, d) for t, d in got if t in WORK]
    assert {t for t, _ in work} == WORK - {"counter.closed"}
    assert all(d["clerk"] == "lan" for t, d in work if d["counter"] == "c1")
    assert [d for t, d in work if d["counter"] == "c2"] and all("clerk" not in d for t, d in work if d["counter"] == "c2")
    done = [d for t, d in got if t == "ticket.completed" and "dossier" in d]
    assert [d["dossier"] for d in done] == ["H29.22-241205-0001"]
    eng.issue("A")
    eng.call_next("c1")
    with pytest.raises(QueueError, match="dossier code"):
        eng.complete("c1", dossier="x" * 41)
    eng.complete("c1")

    eng.sign_out("c1", by="keypad:k1")
    seq = eng.last_seq
    eng.call_next("c1")
    assert log(eng, seq - 1)[0] == ("clerk.signed_out", {"counter": "c1", "clerk": "lan", "by": "keypad:k1",
                                                         "reason": "manual"})
    assert all("clerk" not in d for _t, d in log(eng, seq))
    with pytest.raises(QueueError, match="nobody is signed in"):
        eng.sign_out("c1", by="api")


def test_elsewhere_replaced_closed_and_day_end_sign_outs(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 1, 5, 1, 0, tzinfo=UTC))  # 08:00 local
    eng = make(tmp_path, clock, counter_clerks={"c3": ["hoa"]})
    eng.sign_in("c1", "lan", by="api")
    eng.sign_in("c2", "lan", by="api")  # moves: signed out of c1 first
    eng.sign_in("c2", "minh", by="api")  # another clerk takes c2: lan is signed out
    with pytest.raises(QueueError, match="may not sign in at counter c3"):
        eng.sign_in("c3", "lan", by="api")
    with pytest.raises(QueueError, match="unknown clerk 'tuan'"):
        eng.sign_in("c1", "tuan", by="api")
    eng.sign_in("c3", "hoa", by="api")
    eng.issue("B")
    eng.call_next("c2")
    seq = eng.last_seq
    eng.close_counter("c2", by="keypad:k2")  # completes B001, closes, then signs minh out
    assert log(eng, seq) == [
        ("ticket.completed", {"ticket": "B001", "service": "B", "counter": "c2", "day": "2026-01-05",
                              "service_s": 0.0, "clerk": "minh"}),
        ("counter.closed", {"counter": "c2", "clerk": "minh"}),
        ("clerk.signed_out", {"counter": "c2", "clerk": "minh", "by": "keypad:k2", "reason": "counter_closed"})]
    signs = [(t, d["counter"], d["clerk"], d.get("reason")) for t, d in log(eng) if t.startswith("clerk.")]
    assert signs[:5] == [("clerk.signed_in", "c1", "lan", None),
                         ("clerk.signed_out", "c1", "lan", "signed_in_elsewhere"),
                         ("clerk.signed_in", "c2", "lan", None),
                         ("clerk.signed_out", "c2", "lan", "manual"),
                         ("clerk.signed_in", "c2", "minh", None)]
    assert eng.signed_in() == {"c3": "hoa"}
    clock.advance(17 * 3600)  # 01:00 local, the next day: the first operation signs hoa out
    eng.issue("A")
    day_end = [d for t, d in log(eng) if t == "clerk.signed_out" and d["reason"] == "day_end"]
    assert day_end == [{"counter": "c3", "clerk": "hoa", "by": "system", "reason": "day_end"}]
    assert eng.signed_in() == {}


def test_a_restart_keeps_who_is_signed_in(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock)
    eng.sign_in("c1", "lan", by="api")
    eng.sign_in("c2", "minh", by="api")
    eng.sign_out("c2", by="api")
    eng.store.close()
    again = make(tmp_path, clock)  # rebuilt from the event log
    assert again.signed_in() == {"c1": "lan"} and again.replayed == 3
    again.issue("A")
    again.call_next("c1")
    assert events(again, EventType.ticket_called)[-1].data["clerk"] == "lan"
    again.checkpoint()
    again.store.close()
    third = make(tmp_path, clock)  # from the checkpoint, nothing replayed
    assert third.restored_from is not None and third.replayed == 0 and third.clerk_at("c1") == "lan"


def test_no_clerks_configured_no_clerk_key_anywhere(tmp_path: Path, clock: FakeClock) -> None:
    eng = make(tmp_path, clock, clerks=())
    with pytest.raises(QueueError, match="no clerks are configured"):
        eng.sign_in("c1", "lan", by="api")
    eng.issue("A")
    eng.call_next("c1")
    eng.complete("c1")
    eng.close_counter("c1")
    assert all("clerk" not in d for _t, d in log(eng))
