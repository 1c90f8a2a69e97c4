"""A simulated day with ratings, through a broker outage, from the counter to the report a center is scored on.

One simulated center (clerks signed in at two counters, a GPIO rating pad at c1 and an RS-485 rating pad with
reason keys at c2), a real Mosquitto stopped for part of the day, a real gateway, and the documented CLI
``civiq gateway report --format json`` at the end. Every rating is on the gateway once, and every number of the
report equals what the agent's own event log says, recomputed here in the simplest way.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from civiq.contract import EventType, satisfied
from civiq.dev.broker import free_port
from civiq.edge.cli import make_agent
from civiq.edge.config import load_config
from civiq.gateway.service import Gateway
from civiq.gateway.settings import GatewaySettings
from tests.conftest import wait_for
from tests.e2e.rating_center import write_rating_center
from tests.e2e.test_edge_agent import _env

CENTER = "test-xa"
PAD_OF = {"c1": "r1", "c2": "r2"}  # r1: GPIO score keys; r2: RS-485 pad with reason keys (wait, attitude)
SERVICE_OF = {"c1": "A", "c2": "B"}


def logged(agent, kind: EventType) -> list[dict[str, Any]]:  # noqa: ANN001
    return [e.data for e in agent.store.events() if e.type == kind]


def serve(agent, counter: str, rng: random.Random, outcome: str) -> None:  # noqa: ANN001
    """One citizen at ``counter``: a ticket, the call, then done (and a rating or not) or a no-show."""
    sim = agent.sim
    issued = len(logged(agent, EventType.ticket_issued))
    sim.press_button(SERVICE_OF[counter])
    wait_for(lambda: len(logged(agent, EventType.ticket_issued)) > issued, what="the ticket issued")
    agent.counter_action(counter, "next")
    if outcome == "no_show":
        agent.counter_action(counter, "no_show")
        return
    dossier = f"H29.22-261205-{rng.randrange(10000):04d}" if rng.random() < 0.5 else None
    agent.counter_action(counter, "complete", dossier=dossier)
    if outcome == "rated":
        rated = len(logged(agent, EventType.ticket_rated))
        score = rng.choice([5, 5, 4, 4, 4, 3, 2, 1])
        reasons = ["wait"] if counter == "c2" and score <= 3 else []
        sim.rate(PAD_OF[counter], score, reasons)
        wait_for(lambda: len(logged(agent, EventType.ticket_rated)) > rated, timeout=15, what="the rating logged")


def expected_from_log(agent, day: str) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    """The report's numbers, per counter and in total, straight from the agent's event log."""
    out: dict[str, dict[str, Any]] = {}
    events = [e for e in agent.store.events() if e.ts.astimezone(agent.tz).date().isoformat() == day]
    for key in ("c1", "c2", None):
        mine = [e for e in events if key is None or e.data.get("counter") == key]
        kinds = Counter(e.type for e in mine)
        waits = [e.data["wait_s"] for e in mine if e.type == EventType.ticket_called]
        ratings = [e.data for e in mine if e.type == EventType.ticket_rated]
        out[key or "total"] = {
            "served": kinds[EventType.ticket_completed],
            "no_show": kinds[EventType.ticket_no_show],
            "waits": len(waits),
            "wait_mean_s": statistics.fmean(waits) if waits else None,
            "ratings": len(ratings),
            "satisfied": sum(satisfied(r["score"], r["scale"]) for r in ratings),
            "score_mean_5": statistics.fmean(r["score"] for r in ratings) if ratings else None,
            "reasons": dict(Counter(x for r in ratings for x in r["reasons"])),
        }
        if key is None:
            out["total"]["issued"] = kinds[EventType.ticket_issued]
    return out


def test_a_day_of_ratings_through_a_broker_outage_matches_the_report(tmp_path: Path, broker) -> None:  # noqa: ANN001
    gw_yaml = tmp_path / "gateway.yaml"
    gw_yaml.write_text(f"gateway_id: gw-test\ndata_dir: {tmp_path / 'gw'}\n"
                       f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n"
                       f"http: {{host: 127.0.0.1, port: {free_port()}}}\n", encoding="utf-8")
    gateway = Gateway(GatewaySettings.from_file(gw_yaml), channels=[]).start()
    cfg = load_config(write_rating_center(tmp_path / "edge", broker.port, http_port=free_port()))
    agent = make_agent(cfg, simulate=True)
    agent.start()
    rng = random.Random(11)
    try:
        agent.counter_action("c1", "sign_in", clerk="lan")  # c2: nobody signed in until lan moves there
        agent.sim.rate("r1", 5)  # nobody served yet: ignored (counted by the pad), no event
        plan = ["rated"] * 7 + ["unrated", "no_show"]
        for i, outcome in enumerate(plan):
            if i == 5:
                agent.counter_action("c2", "sign_in", clerk="lan")  # signed out of c1 (signed in elsewhere)
            if i == 3:
                broker.stop()  # the center goes on while the province's broker is down
            serve(agent, "c1" if i % 2 == 0 else "c2", rng, outcome)
            serve(agent, "c2" if i % 2 == 0 else "c1", rng, rng.choice(["rated", "rated", "unrated"]))
            if i == 6:
                assert gateway.store.event_count(CENTER) < agent.store.last_seq()  # the outage held some back
                broker.start()
        last = agent.store.last_seq()
        assert gateway.ingest.wait_ready(30)

        def all_stored() -> bool:
            return gateway.store.event_count(CENTER) >= last

        wait_for(all_stored, timeout=60, interval=0.2, what="every event of the day on the gateway")
        assert gateway.store.event_count(CENTER) == last  # once each
        day = logged(agent, EventType.ticket_issued)[0]["day"]
        r = subprocess.run([sys.executable, "-m", "civiq", "gateway", "report", "--config", str(gw_yaml),
                            "--center", CENTER, "--period", "day", "--date", day, "--format", "json", "--out", "-"],
                           env=_env(), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        want = expected_from_log(agent, day)
        lan = [e.data for e in agent.store.events() if e.type == EventType.ticket_rated and e.data["clerk"] == "lan"]
    finally:
        agent.stop()
        agent.sim.stop()
        gateway.stop()

    rows = {row["key"]: row for row in report["counters"]}
    for key, exp in want.items():
        got = report["total"] if key == "total" else rows[key]
        for field, value in exp.items():
            if isinstance(value, float):
                assert got[field] is not None and abs(got[field] - value) < 1e-9, (key, field, got[field], value)
            else:
                assert got[field] == value, (key, field, got[field], value)
    assert want["total"]["ratings"] >= 7 and want["total"]["no_show"] >= 1
    clerks = {row["key"]: row for row in report["clerks"]}
    assert clerks["lan"]["name"] == "Nguyễn Thị Lan" and clerks[None]["name"] == "(chưa đăng nhập)"
    assert clerks["lan"]["ratings"] == len(lan) > 0
    assert sum(row["ratings"] for row in report["clerks"]) == want["total"]["ratings"]
