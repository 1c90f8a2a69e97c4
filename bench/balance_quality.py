"""How well each load-balancing strategy serves a center's day: ``python -m bench.balance_quality``.

Prints a markdown table (4 day profiles × 5 strategies; mean wait, p95 wait, share waiting over 30 min, averaged
over ``--seeds`` simulated days with common random numbers) and the Erlang C validation line of the simulator.
Every run drives the real edge queue engine (see :mod:`bench.loadsim`). Runs on ``--workers`` processes.

Options: ``--seeds N`` (default 10), ``--erlang-seeds N`` (default 80), ``--workers N`` (default 2),
``--quick`` (3 seeds, 8 Erlang seeds: a smoke run).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from statistics import mean

from bench.loadsim import PROFILES, STRATEGIES, SimResult, history_for, simulate, validate_erlang_c

LABELS = {
    "dedicated": "(a) dedicated counters",
    "fqm": "(b) fewest-waiting at issue (FQM)",
    "profiles": "(c) edge work profiles",
    "advisor": "(d) gateway advisor",
    "pooled": "bound: universal pooled",
}


def run_profile_seed(job: tuple[str, int]) -> list[SimResult]:
    """All strategies for one (profile, seed); the advisor gets one earlier day of history."""
    name, seed = job
    day = PROFILES[name]
    hist = history_for(day, seed)
    out = []
    for s in STRATEGIES:
        r = simulate(day, s, seed=seed, history=hist if s == "advisor" else ())
        out.append(SimResult(**{**r.__dict__, "waits": (), "events": ()}))
    return out


def table(results: list[SimResult], seeds: int) -> str:
    lines = ["| day profile | strategy | mean wait (min) | p95 wait (min) | waiting > 30 min | policies pushed |",
             "|---|---|---:|---:|---:|---:|"]
    for name in PROFILES:
        for s in STRATEGIES:
            rs = [r for r in results if r.profile == name and r.strategy == s]
            if not rs:
                continue
            pol = f"{mean(r.policies_applied for r in rs):.1f}" if s == "advisor" else ""
            lines.append(f"| {name} | {LABELS[s]} | {mean(r.mean_wait_s for r in rs) / 60:.1f} | "
                         f"{mean(r.p95_wait_s for r in rs) / 60:.1f} | "
                         f"{mean(r.share_over_30min for r in rs):.1%} | {pol} |")
    lines[0] = lines[0].replace("day profile", f"day profile ({seeds} seeds)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.balance_quality", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--erlang-seeds", type=int, default=80)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.seeds, a.erlang_seeds = 3, 8
    if a.seeds < 1 or a.erlang_seeds < 2 or a.workers < 1:
        ap.error("--seeds must be >= 1, --erlang-seeds >= 2, --workers >= 1")
    t0 = time.perf_counter()
    jobs = [(name, seed) for name in PROFILES for seed in range(1, a.seeds + 1)]
    if a.workers > 1:
        with ProcessPoolExecutor(a.workers) as ex:
            parts = list(ex.map(run_profile_seed, jobs))
    else:
        parts = [run_profile_seed(j) for j in jobs]
    results = [r for p in parts for r in p]
    v = validate_erlang_c(seeds=range(1, a.erlang_seeds + 1), workers=a.workers)
    print(table(results, a.seeds))
    print()
    print(f"Erlang C validation (1 service, {v.counters} universal counters, exponential {v.mean_s:.0f} s, "
          f"rho {v.rho}): simulated mean wait {v.sim_mean_wait_s:.1f} s ± {v.ci95_s:.1f} (95% CI, {v.seeds} days, "
          f"{v.customers} tickets) vs Erlang C {v.erlang_c_wait_s:.1f} s: error {v.rel_error:.1%} "
          f"({'PASS' if v.rel_error <= 0.05 else 'FAIL'} at 5%); engine = FCFS recursion within "
          f"{v.fcfs_max_diff_s:.2f} s per ticket.")
    print(f"\n({time.perf_counter() - t0:.0f} s on {a.workers} worker(s))", file=sys.stderr)
    return 0 if v.rel_error <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
