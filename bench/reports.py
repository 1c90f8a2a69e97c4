"""A month's report of a busy center: ``python -m bench.reports [--days 31] [--per-day 600]``.

The generated event log of :mod:`civiq.gateway.reports.sample` (every path a report counts: priority tickets,
transfers, holds, no-shows, ratings on 4- and 5-level pads) for ``--days`` local days of ``--per-day`` tickets
goes into a real :class:`~civiq.gateway.store.series.SeriesStore` file; then the gateway computes the month's
report (what ``/api/v1/reports?period=month`` and the report page do), the month's rating rows
(``/api/v1/ratings``), the .xlsx with every rating and the CSV. Best of three runs each.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.common import fmt, md_table


def _best(fn: Callable[[], Any], n: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(days: int = 31, per_day: int = 600, log: Callable[[str], None] = print) -> dict[str, Any]:
    from civiq.gateway.reports import period_of, ratings_from_store, report_from_store, sample
    from civiq.gateway.reports.export import report_csv, report_xlsx
    from civiq.gateway.store.series import SeriesStore

    tmp = Path(tempfile.mkdtemp(prefix="civiq-bench-reports-"))
    try:
        store = SeriesStore(tmp / "series.db")
        first = date(2026, 12, 1)
        evs = sample.sample_events([first + timedelta(days=i) for i in range(days)], per_day=per_day, seed=1)
        log(f"reports: storing {len(evs):,} events ({days} days x {per_day} tickets)")
        store.add_events([("hcm-q1", n, e) for n, e in evs])
        names = sample.names()
        p = period_of("month", first) if days > 7 else period_of("week", first)
        since, until = p.bounds(store.tz)
        t_rep, rep = _best(lambda: report_from_store(store, "hcm-q1", p, names))
        t_day, _ = _best(lambda: report_from_store(store, "hcm-q1", period_of("day", first), names))
        t_rat, rows = _best(lambda: ratings_from_store(store, "hcm-q1", since, until, names))
        t_xlsx, xlsx = _best(lambda: report_xlsx(rep, rows), n=1)
        t_csv, csv = _best(lambda: report_csv(rep))
        store.close()
        return {"days": days, "per_day": per_day, "events": len(evs), "period": p.label,
                "report_s": t_rep, "day_s": t_day, "ratings_s": t_rat, "ratings": len(rows),
                "xlsx_s": t_xlsx, "xlsx_bytes": len(xlsx), "csv_s": t_csv, "csv_bytes": len(csv),
                "served": rep["total"]["served"]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def report(r: dict[str, Any]) -> str:
    rows = [
        [f"report of {r['period']} (every row, percentile, rating)", fmt(r["report_s"], 2), f"{r['events']:,} events"],
        ["report of one day", fmt(r["day_s"], 3), f"{r['per_day']} tickets"],
        ["rating rows of the period (`/api/v1/ratings`)", fmt(r["ratings_s"], 2), f"{r['ratings']:,} ratings"],
        [".xlsx with every rating", fmt(r["xlsx_s"], 2), f"{r['xlsx_bytes'] / 1024:,.0f} KiB"],
        ["report .csv", fmt(r["csv_s"], 4), f"{r['csv_bytes']:,} bytes"],
    ]
    return (md_table(["what", "seconds", "size"], rows) + "\n\n"
            f"Log: {r['days']} days × {r['per_day']} tickets = {r['events']:,} events in the store "
            f"({r['served']:,} served in the period). Target: a month of a busy center in well under two seconds.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--per-day", type=int, default=600)
    a = ap.parse_args(argv)
    print(report(run(a.days, a.per_day, log=lambda s: print(s, file=sys.stderr))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
