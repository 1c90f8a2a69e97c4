"""A tiny run of every benchmark on the real services, so `make bench` cannot rot between releases.

Sizes are minimal (the figures mean nothing); what is asserted is what the benchmark itself checks and
reports: nothing dropped or lost, every latency path observed, the alert arriving, the document written.
No ``__init__.py`` here on purpose: it would shadow the repository's ``bench`` package.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from bench import footprint, ingest, latency, offline
from bench import run as bench_run
from civiq.contract import LEAF_MODELS, parse_payload, parse_topic
from civiq.dev.broker import Mosquitto

pytestmark = pytest.mark.skipif(not Mosquitto.available() or shutil.which("mosquitto_sub") is None,
                                reason="needs mosquitto and mosquitto-clients (scripts/install-test-deps.sh)")


def test_flood_traffic_follows_the_wire_contract() -> None:
    seen = {"event": 0, "queue": 0, "health": 0}
    seqs: dict[str, list[int]] = {}
    for leaf, t, payload in itertools.islice(ingest.traffic_stream(5, seed=3), 400):
        parts = parse_topic(t)
        model = parse_payload(LEAF_MODELS[parts.leaf], payload)  # raises on anything off-contract
        assert parts.leaf == leaf
        seen[leaf] += 1
        if leaf == "event":
            seqs.setdefault(parts.center, []).append(model.seq)
    assert all(seen.values())
    assert all(s == list(range(1, len(s) + 1)) for s in seqs.values())  # gap-free per node


@pytest.mark.skipif(shutil.which("victoria-metrics") is None, reason="needs victoria-metrics")
def test_ingest_drains_everything_and_verifies_it() -> None:
    shape = ingest.run_shape(20, 600, (1,), log=lambda s: None)
    assert shape["dropped"] == 0
    [v] = shape["verify"]
    assert v["events"] == v["expected"] == shape["counts"]["event"] > 0
    assert v["pending"] == 0 and v["rejected"] == 0 and v["vm"] == v["expected"]
    consumers = [r.consumer for r in shape["rows"]]
    assert consumers[0].startswith("`mosquitto_sub`") and consumers[-1].startswith("gateway")
    assert all(r.rate > 0 for r in shape["rows"])
    assert "÷ bare paho" in ingest.report([shape])


def test_latency_paths_are_observed_idle() -> None:
    [r] = latency.run(n=1, levels=latency.LEVELS[:1], log=lambda s: None)
    assert r["print"].n == r["display"].n == r["dashboard"].n == 1 and r["timeouts"] == 0
    assert 0 < r["print"].max < 5 and 0 < r["display"].max < 5 and 0 < r["dashboard"].max < 5
    assert "button → dashboard" in latency.report([r])


def test_killed_agent_raises_an_alert() -> None:
    r = offline.run(n=1, batch=1, modes=("kill -9",), heartbeat_timeout_s=3, log=lambda s: None)
    res = r["results"]["kill -9"]
    assert res["missed"] == [] and res["false"] == []
    assert len(res["alert"]) == 1 and 0 < res["alert"][0] < 3
    assert "kill -9" in offline.report(r)


def test_footprint_reads_proc_of_a_running_agent() -> None:
    r = footprint.run(idle_s=0.8, peak_s=1.2, tickets=4, calls=2, settle_s=0.3, log=lambda s: None)
    assert 10 < r["idle"]["rss_mb_max"] < 1000
    assert r["peak"]["printed"] == r["peak"]["sent"] > 0 and r["peak"]["failed"] == 0
    assert "Pi Zero 2 W" in footprint.report(r)


def test_run_writes_the_document(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    assert bench_run.main(["--only", "replay", "--quick", "--out", str(out)]) == 0
    doc = out.read_text()
    assert "## 5. Outbox replay after an outage" in doc and "Command: `python -m bench.replay --quick`" in doc
    assert "CPUs" in doc and "## 1." not in doc
    row = next(ln for ln in doc.splitlines() if ln.startswith("| busy center"))
    stored, sent = row.rstrip(" |").rsplit("| ", 1)[1].split("/")
    assert stored == sent  # every replayed event reached the gateway's store


def test_unknown_section_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench_run.main(["--only", "nope"])
    assert "unknown section" in capsys.readouterr().err


def test_startup_from_a_checkpoint_folds_only_the_tail() -> None:
    from bench import startup

    r = startup.run(days=1, log=lambda s: None)
    assert r["events"] == r["per_day"] > 1000 and r["crash_replayed"] < r["events"] // 50
    assert "TimeoutStartSec" in startup.report(r)


def test_reports_bench_measures_a_small_log() -> None:
    from bench import reports

    r = reports.run(days=2, per_day=40, log=lambda s: None)
    assert r["events"] > 80 and r["served"] > 0 and r["ratings"] > 0 and r["xlsx_bytes"] > 4000
    assert "report of 2026-W49" in reports.report(r)


def test_province_bench_measures_every_figure() -> None:
    from bench import province

    r = province.run(centers=2, days=2, rate=20, seconds=1, pool=1, busy_every=0, interval_s=1.5, dash_n=2,
                     log=lambda s: None)
    assert r["history"]["events"] > 100 and r["passes"] and r["passes"][0] < 5
    assert 0.5 < r["watchdog_max"] < 15 and r["watchdog_pings"] > 2
    assert r["dashboard"].n == 2 and r["dash_timeouts"] == 0 and r["tick_lag_p99"] is not None
    assert "watchdog ping interval max" in province.report(r)
