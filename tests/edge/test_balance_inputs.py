"""What the edge tells the gateway's load-balancing advisor: each counter's skills and configured profile in the
birth (from the config), and the rules of the profiles in force in the queue snapshot (so a pushed policy never
erases them)."""

from __future__ import annotations

from pathlib import Path

from civiq.clock import FakeClock
from civiq.contract import Policy, PriorityRule, WorkProfile
from civiq.edge.config import load_config
from civiq.edge.queue import EdgeStore, QueueEngine, ServiceDef
from tests.conftest import wait_for
from tests.edge.test_config import BASE, NO_ENV, errors_of, only, write
from tests.edge.test_link import make_link, statuses  # noqa: F401 - make_link is a fixture

SKILLED = BASE.replace("    profile: {services: [A, B]}\n", "    profile: {services: [A, B]}\n    skills: [C]\n")


def test_skills_come_from_the_config_and_are_checked(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, SKILLED), NO_ENV)
    assert cfg.counter_skills() == {"c1": ["A", "B", "C"], "c2": ["C", "A"]}
    assert cfg.counter_profiles()["c2"] == WorkProfile(services=["C", "A"])
    bad = SKILLED.replace("    skills: [C]\n", "    skills: [C, Z]\n")
    assert "service 'Z' is not defined" in only(errors_of(write(tmp_path, bad)), "counters[0].skills[1]").message


def test_the_birth_carries_skills_and_configured_profiles(make_link, recorder, tmp_path: Path) -> None:  # noqa: ANN001, F811
    cfg = load_config(write(tmp_path, SKILLED), NO_ENV)
    link = make_link(EdgeStore(tmp_path / "edge.db"), counter_skills=cfg.counter_skills(),
                     counter_profiles=cfg.counter_profiles())
    link.start()
    wait_for(lambda: link.connected, what="link connected")
    rec = recorder("civiq/v1/+/+/status")
    birth = wait_for(lambda: statuses(rec.on("/status")), what="retained birth")[-1]
    assert birth.counter_skills == {"c1": ["A", "B", "C"], "c2": ["C", "A"]}
    assert birth.counter_profiles["c1"].services == ["A", "B"]


def test_the_snapshot_names_the_rules_in_force(tmp_path: Path) -> None:
    rule = PriorityRule(service="B", over_minutes=20)
    eng = QueueEngine(EdgeStore(":memory:"), FakeClock(), {"A": ServiceDef("A", "A"), "B": ServiceDef("B", "B")},
                      {"c1": WorkProfile(services=["A"], rules=[rule]), "c2": WorkProfile(services=["B"])})
    snap = eng.snapshot()
    assert snap.counters["c1"].rules == [rule] and snap.counters["c2"].rules == []
    pushed = PriorityRule(service="A", over_minutes=15)
    eng.apply_policy(Policy(version=2, counters={"c1": WorkProfile(services=["A", "B"]),
                                                 "c2": WorkProfile(services=["B"], rules=[pushed])}))
    snap = eng.snapshot()
    assert snap.counters["c1"].rules == [] and snap.counters["c2"].rules == [pushed]
