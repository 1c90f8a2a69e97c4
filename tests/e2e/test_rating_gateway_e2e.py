"""Ratings from a real simulated agent to a real gateway across a broker outage: citizens rate on GPIO keys,
an RS-485 pad (with reasons) and the page, some while the broker is down; when it is back, every
``ticket.rated`` of the agent's log is in the gateway once (its ratings rows, its day report), with the
clerk who served and the dossier code; the press outside any window never became an event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civiq.contract import EventType, satisfied
from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from tests.conftest import wait_for
from tests.e2e.rating_center import write_rating_center
from tests.e2e.system import gateway_settings, start_gateway

CENTER = "test-xa"


@pytest.fixture
def system(tmp_path: Path, broker) -> Iterator[tuple[Any, Any]]:  # noqa: ANN001
    gw = start_gateway(gateway_settings(tmp_path / "gw", broker.port))
    agent = make_agent(load_config(write_rating_center(tmp_path, broker.port, http_port=free_port())),
                       simulate=True)
    agent.start()
    try:
        wait_for(lambda: agent.link.connected, timeout=10, what="the agent connected")
        yield agent, gw
    finally:
        agent.stop()
        agent.sim.stop()
        gw.stop()


def serve_and_rate(agent: Any, counter: str, service: str, pad: str, score: int, reasons: tuple = (),
                   dossier: str | None = None) -> str:
    t = agent.on_dispenser_press(service)
    assert agent.counter_action(counter, "next").label == t.label
    before = agent.rating.device_counts(pad)["ratings"]
    agent.counter_action(counter, "complete", dossier=dossier)
    agent.sim.rate(pad, score, list(reasons))
    wait_for(lambda: agent.rating.device_counts(pad)["ratings"] > before, timeout=15,
             what=f"the rating of {t.label} on {pad}")
    return t.label


def test_every_rating_reaches_the_gateway_once_through_a_broker_outage(system, broker) -> None:  # noqa: ANN001
    agent, gw = system
    agent.counter_action("c2", "sign_in", clerk="lan")
    agent.sim.rate("r1", 5)  # nobody served yet at c1: ignored, counted, never an event
    labels = [serve_and_rate(agent, "c1", "A", "r1", 5), serve_and_rate(agent, "c2", "B", "rp2", 4)]
    broker.stop()  # the network is down: the center goes on, the ratings wait in the outbox
    labels += [serve_and_rate(agent, "c2", "B", "r2", 2, ("wait", "attitude"), dossier="H29.22-241205-0007"),
               serve_and_rate(agent, "c1", "A", "rp1", 1, ("guidance",)),
               serve_and_rate(agent, "c1", "B", "r1", 4)]
    assert agent.link.pending_stats().pending > 0
    broker.start()
    logged = [e for e in agent.store.events() if e.type == EventType.ticket_rated]
    assert [e.data["ticket"] for e in logged] == labels
    wait_for(lambda: gw.store.event_count(CENTER) == agent.engine.last_seq, timeout=30, interval=0.1,
             what="every event of the agent in the gateway")

    day = agent.engine.day
    rows = gw.view.ratings(CENTER, *gw.store.day_bounds(day))
    assert sorted((r["ticket"], r["score"], tuple(r["reasons"])) for r in rows) == sorted(
        (e.data["ticket"], e.data["score"], tuple(e.data["reasons"])) for e in logged)  # each once
    by_ticket = {r["ticket"]: r for r in rows}
    assert by_ticket[labels[2]]["clerk"] == "lan" and by_ticket[labels[2]]["dossier"] == "H29.22-241205-0007"
    assert by_ticket[labels[2]]["clerk_name"] == "Nguyễn Thị Lan" and by_ticket[labels[0]]["clerk"] is None
    rep = gw.view.report(CENTER, "day", day)
    assert rep["total"]["ratings"] == len(logged) == 5
    assert rep["total"]["satisfied"] == sum(satisfied(e.data["score"], e.data["scale"]) for e in logged)
    assert agent.rating.device_counts("r1")["outside_window"] == 1
