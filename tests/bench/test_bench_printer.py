"""The printer bench section runs and reports (smoke-sized: the network link only)."""

from __future__ import annotations

from pathlib import Path

from bench import printer


def test_printer_bench_measures_a_stored_ticket(tmp_path: Path) -> None:
    rows = [printer._one("network", 576, g, tmp_path) for g in ("raster", "nv")]  # noqa: SLF001
    raster, nv = rows
    assert nv["ticket"]["bytes"] <= 2048 < raster["ticket"]["bytes"]
    assert nv["store_bytes"] > raster["ticket"]["bytes"]  # the pictures of every service, sent once
    assert 0.3 < nv["ticket"]["paper_s"] < 5  # the paper moving at 200 mm/s dominates on a fast link
    text = printer.report({"rows": rows})
    assert "| 80 mm | network | " in text and "→ **" in text
