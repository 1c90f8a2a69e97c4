"""firmware-config/grafana/civiq-dashboard.json: every panel's query names only series the gateway's
exporter writes, and returns data from a real VictoriaMetrics fed by the exporter's own line protocol."""

from __future__ import annotations

import json
import re
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from civiq.contract import DeviceHealth, Event, Health, HostHealth, OutboxHealth, QueueSnapshot, Status
from civiq.dev.tsdb import VictoriaMetrics
from civiq.gateway.store.influx import event_lines, health_lines, queue_lines, status_lines
from tests.conftest import wait_for

DASHBOARD = Path(__file__).resolve().parents[2] / "firmware-config/grafana/civiq-dashboard.json"
VM = shutil.which("victoria-metrics")
PROMQL_WORDS = {"sum", "max", "min", "avg", "by", "without", "count_over_time", "avg_over_time", "label_values",
                "last_over_time", "rate", "increase", "and", "or", "unless", "on", "ignoring"}


def exporter_lines() -> list[str]:
    """Lines from the exporter's functions for one busy center: every series it can write."""
    now = datetime.now(UTC) - timedelta(seconds=5)
    snap = QueueSnapshot(ts=now, day="2026-01-05",
                         services={"A": {"waiting": 4, "oldest_wait_s": 600, "eta_s": 900}},
                         counters={"c1": {"state": "open", "ticket": "A001", "services": ["A"], "served_today": 7}})
    health = Health(ts=now, host=HostHealth(cpu_temp_c=51.5, disk_used_pct=37.0),
                    devices=[DeviceHealth(id="p1", kind="printer", state="failed", detail="out of paper")],
                    outbox=OutboxHealth(pending=3))
    events = [Event(seq=1, ts=now - timedelta(seconds=30), type="ticket.issued", data={"service": "A"}),
              Event(seq=2, ts=now - timedelta(seconds=20), type="ticket.called",
                    data={"service": "A", "counter": "c1", "wait_s": 420.0}),
              Event(seq=3, ts=now - timedelta(seconds=10), type="ticket.completed",
                    data={"service": "A", "counter": "c1", "service_s": 240.0})]
    lines = queue_lines("hcm-q1", snap) + health_lines("hcm-q1", "pi-1", health)
    lines += status_lines("hcm-q1", "pi-1", Status(online=True, bdseq=1, ts=now), now)
    for ev in events:
        lines += event_lines("hcm-q1", ev)
    return lines


def series_names(lines: list[str]) -> dict[str, set[str]]:
    """VictoriaMetrics' name for each (measurement, field): ``measurement_field`` -> its label names."""
    out: dict[str, set[str]] = {}
    for line in lines:
        head, fields, _ = line.split(" ")
        measurement, *tags = head.split(",")
        for field in fields.split(","):
            out[f"{measurement}_{field.split('=')[0]}"] = {t.split("=")[0] for t in tags}
    return out


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return exprs


def metric_refs(expr: str) -> list[tuple[str, set[str]]]:
    """(metric, label names it selects on) for each metric in a PromQL expression."""
    out = []
    for m in re.finditer(r"\b([a-z_][a-z0-9_]*)\b(?!\s*\()\s*(\{[^}]*\})?", expr):
        name, selector = m.group(1), m.group(2) or ""
        if name in PROMQL_WORDS or expr[:m.start()].rstrip().endswith(("by (", "by(", ",")) and not selector:
            continue  # a keyword, or a label in by (...)
        out.append((name, set(re.findall(r"([a-z_]+)\s*=~?", selector))))
    return out


def test_the_dashboard_uses_only_series_and_labels_the_exporter_writes() -> None:
    written = series_names(exporter_lines())
    refs = [ref for expr in dashboard_exprs() for ref in metric_refs(expr)]
    assert len(refs) >= 13
    for name, labels in refs:
        assert name in written, f"{name} is not written by the exporter (it writes {sorted(written)})"
        assert labels <= written[name], f"{name} has no label(s) {labels - written[name]}"


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[str]:
    if VM is None:
        pytest.skip("victoria-metrics not installed")
    vm = VictoriaMetrics(tmp_path / "vm").start()
    try:
        yield vm.url
    finally:
        vm.stop()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_every_panel_shows_data_from_victoria_metrics(victoria: str) -> None:
    body = "\n".join(exporter_lines()).encode()
    req = urllib.request.Request(f"{victoria}/api/v2/write?bucket=civiq&org=civiq", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 204
    dash = json.loads(DASHBOARD.read_text())

    def query(expr: str) -> list:
        q = urllib.parse.urlencode({"query": expr.replace("$center", ".*")})
        return get_json(f"{victoria}/api/v1/query?{q}")["data"]["result"]

    urllib.request.urlopen(f"{victoria}/internal/force_flush", timeout=5).close()  # else searchable in ~10 s
    wait_for(lambda: query("queue_waiting"), timeout=15, what="the written points to be searchable")
    for panel in dash["panels"]:
        for target in panel["targets"]:
            assert query(target["expr"]), f"panel {panel['title']!r} shows nothing: {target['expr']}"
    centers = get_json(f"{victoria}/api/v1/label/center/values?match[]=queue_waiting")["data"]
    assert centers == ["hcm-q1"]  # the $center variable's choices
