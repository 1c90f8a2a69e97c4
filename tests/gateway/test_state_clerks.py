"""Who works at each counter, at the gateway: LiveState applies clerk.signed_in/out and the `clerk` of counter-work
events (newest wins, a replayed old event changes nothing), names the clerk from the birth, survives a
restart; the counter command API relays sign_in (with `clerk`) and complete (with `dossier`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from civiq.contract import Event, QueueSnapshot, Status
from civiq.gateway.state import LiveState
from tests.gateway.test_web_api import Env, env, h  # noqa: F401 - env is the fixture

T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
C, N = "hcm-q1", "pi-1"


def ev(seq: int, type_: str, minutes: float = 0, **data: object) -> Event:
    return Event(seq=seq, ts=T0 + timedelta(minutes=minutes), type=type_, data=data)


def test_the_center_shows_who_is_signed_in_at_each_counter_by_name() -> None:
    s = LiveState()
    s.apply_status(C, N, Status(online=True, bdseq=1, ts=T0, counters={"c1": "Quầy 1", "c2": "Quầy 2"},
                                clerks={"lan": "Nguyễn Thị Lan", "minh": "Trần Văn Minh"}), T0)
    s.apply_queue(C, N, QueueSnapshot(ts=T0, day="2026-01-05", counters={
        "c1": {"state": "open"}, "c2": {"state": "open"}, "c3": {"state": "closed"}}), T0)
    c = s.center(C)
    assert c is not None and c["clerks"] == {"lan": "Nguyễn Thị Lan", "minh": "Trần Văn Minh"}
    assert all(x["clerk"] is None and x["clerk_name"] is None for x in c["counters"].values())
    signed_in = ev(1, "clerk.signed_in", 0, counter="c1", clerk="lan", by="keypad:k1")
    for e in [signed_in,
              ev(2, "ticket.called", 1, ticket="A001", service="A", counter="c1", clerk="lan"),
              ev(3, "clerk.signed_in", 2, counter="c2", clerk="minh", by="api"),
              ev(4, "counter.closed", 3, counter="c2", clerk="minh"),
              ev(5, "clerk.signed_out", 3, counter="c2", clerk="minh", by="api", reason="counter_closed")]:
        s.apply_event(C, N, e, T0)
    c = s.center(C)
    assert (c["counters"]["c1"]["clerk"], c["counters"]["c1"]["clerk_name"]) == ("lan", "Nguyễn Thị Lan")
    assert [x.get("clerk") for x in c["recent"]] == ["lan"]  # the recent calls say who called
    assert c["counters"]["c2"]["clerk"] is None and c["counters"]["c3"]["clerk"] is None
    s.apply_event(C, N, ev(5, "clerk.signed_in", -5, counter="c2", clerk="minh", by="api"), T0)  # old: ignored
    assert s.center(C)["counters"]["c2"]["clerk"] is None
    # a work event says who did it: an edge whose sign-in the gateway never saw is still shown right
    s.apply_event(C, N, ev(6, "ticket.called", 10, ticket="B001", service="B", counter="c3", clerk="minh"), T0)
    s.apply_event(C, N, ev(7, "ticket.completed", 11, ticket="A001", service="A", counter="c1"), T0)  # no key
    c = s.center(C)
    assert c["counters"]["c3"]["clerk_name"] == "Trần Văn Minh" and c["counters"]["c1"]["clerk"] is None
    again = LiveState.from_json(s.to_json())  # a gateway restart keeps it
    assert again.center(C)["counters"]["c3"]["clerk"] == "minh" and again.clerk_name(C, "lan") == "Nguyễn Thị Lan"


async def test_sign_in_and_dossier_are_relayed_to_the_edge(env: Env) -> None:  # noqa: F811
    tech, csrf = await env.client("tech")
    url = "/api/v1/centers/hcm-q1/counters/2"
    r = await tech.post(f"{url}/sign_in", json={"clerk": "lan"}, headers=h(csrf))
    assert r.status == 202
    r = await tech.post(f"{url}/complete", json={"dossier": "H29.22-241205-0001"}, headers=h(csrf))
    assert r.status == 202
    r = await tech.post(f"{url}/sign_out", headers=h(csrf))
    assert r.status == 202
    cmds = [(cmd.action, cmd.clerk, cmd.dossier) for _c, cmd, _u in env.view.commands]
    assert cmds == [("sign_in", "lan", None), ("complete", None, "H29.22-241205-0001"), ("sign_out", None, None)]
    r = await tech.post(f"{url}/sign_in", headers=h(csrf))
    assert r.status == 400 and "needs 'clerk'" in (await r.json())["error"]
    r = await tech.post(f"{url}/sign_in", json={"clerk": "Nguyễn"}, headers=h(csrf))
    assert r.status == 400 and "clerk" in (await r.json())["error"]
    r = await tech.post(f"{url}/next", json={"dossier": "H1"}, headers=h(csrf))
    assert r.status == 400 and "'dossier' goes with the action 'complete'" in (await r.json())["error"]
    r = await tech.post(f"{url}/complete", json={"dossier": "x" * 41}, headers=h(csrf))
    assert r.status == 400 and "dossier" in (await r.json())["error"]
    assert len(env.view.commands) == 3
