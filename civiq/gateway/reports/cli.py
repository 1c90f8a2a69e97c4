"""``civiq gateway report`` and ``civiq gateway ratings-drop``: reports and rating files from the gateway's
store, on the command line (for a technician, or a checker comparing with the dashboard).

    civiq gateway report --center hcm-q1 --period week --date 2026-12-05 --format xlsx --out bao-cao.xlsx
    civiq gateway ratings-drop --date 2026-12-05 --out-dir /srv/mot-cua/civiq

Both read the store the running gateway writes (SQLite in WAL mode: reading while it runs is safe) and the
names its edges gave (the saved live state).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from civiq.clock import SystemClock, local_day
from civiq.gateway.reports.compute import report_from_store
from civiq.gateway.reports.export import report_csv, report_xlsx
from civiq.gateway.reports.periods import PeriodError, parse_day, period_of
from civiq.gateway.reports.ratings import ratings_from_store, write_atomic, write_drop


def _open(settings: Any) -> tuple[Any, Any] | None:
    from civiq.gateway.state import LiveState
    from civiq.gateway.store.series import SeriesStore

    if not settings.db_path.exists():
        print(f"no gateway store at {settings.db_path}: is data_dir right (--config, CIVIQ_GW_DATA_DIR)?",
              file=sys.stderr)
        return None
    store = SeriesStore(settings.db_path, settings.retention_days)
    saved = store.load_state()
    try:
        state = LiveState.from_json(saved) if saved else LiveState()
    except ValueError:
        state = LiveState()
    return store, state


def report_main(settings: Any, args: argparse.Namespace) -> int:
    opened = _open(settings)
    if opened is None:
        return 2
    store, state = opened
    try:
        day = args.date or local_day(SystemClock().now(), store.tz)
        try:
            period = period_of(args.period, day)
        except PeriodError as e:
            print(f"--date: {e}", file=sys.stderr)
            return 2
        if args.center not in store.centers():
            print(f"warning: the store has no events of center {args.center!r} "
                  f"(centers: {', '.join(store.centers()) or 'none'})", file=sys.stderr)
        names = state.names(args.center)
        rep = report_from_store(store, args.center, period, names)
        if args.format == "csv":
            data = report_csv(rep)
        elif args.format == "json":
            data = json.dumps(rep, ensure_ascii=False, indent=1).encode()
        else:
            since, until = period.bounds(store.tz)
            data = report_xlsx(rep, ratings_from_store(store, args.center, since, until, names))
        if args.out == "-":
            sys.stdout.buffer.write(data)
        else:
            write_atomic(Path(args.out), data)
            t = rep["total"]
            print(f"{args.out}: {rep['center_name']} {period.label}: {t['issued']} issued, {t['served']} served, "
                  f"{t['ratings']} ratings", file=sys.stderr)
        return 0
    finally:
        store.close()


def ratings_drop_main(settings: Any, args: argparse.Namespace) -> int:
    out_dir = args.out_dir or settings.ratings_drop_dir
    if out_dir is None:
        print("no folder: give --out-dir or set ratings_drop_dir in the gateway settings", file=sys.stderr)
        return 2
    opened = _open(settings)
    if opened is None:
        return 2
    store, state = opened
    try:
        try:
            day = parse_day(args.date) if args.date else \
                date.fromisoformat(local_day(SystemClock().now(), store.tz)) - timedelta(days=1)
        except PeriodError as e:
            print(f"--date: {e}", file=sys.stderr)
            return 2
        centers = [args.center] if args.center else store.centers()
        for center in centers:
            path = write_drop(store, center, day, state.names(center), Path(out_dir))
            print(path)
        return 0
    finally:
        store.close()


__all__ = ["ratings_drop_main", "report_main"]
