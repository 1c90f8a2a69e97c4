"""How well each load-balancing strategy serves a center's day, and how good the ticket's wait estimate is:
``python -m bench.balance_quality``.

Every run drives the real edge queue engine (see :mod:`bench.loadsim`); every strategy of a (day profile, seed)
sees the same citizens (common random numbers). Prints markdown:

1. per day profile and strategy: mean wait, p95 wait, share waiting over 30 min, p95 ÷ the pooled bound,
   policies pushed (the advisor), averaged over ``--seeds`` simulated days;
2. the targets per day profile: the advisor against the best static strategy (paired p95 difference over the
   same days, with its 95 % confidence interval) and against 1.5 × the pooled bound, with a note;
3. staff actions the advisor recommended (open, move a skilled clerk, extend) and, on the same days, the day
   when the manager follows the first "move" (strategy ``staff``);
4. the wait estimate printed on the ticket against the realized wait, per day profile (configured profiles and
   advisor): share "unknown", share within ±25 % for waits ≥ 5 min, mean absolute error;
5. the Erlang C check of the simulator on several M/M/c rows, after a warm-up;
6. the advisor's cost per call (one center, one pass).

Options: ``--seeds N`` (default 20 per day profile: 100 days), ``--erlang-seeds N`` (default 24 per row),
``--workers N`` (default 2), ``--quick`` (3 seeds, 4 Erlang seeds: a smoke run).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from statistics import mean, median

from bench.loadsim import PROFILES, SimResult, history_for, percentile, simulate, validate_erlang_c

STRATEGIES = ("dedicated", "fqm", "profiles", "skills", "advisor", "staff", "pooled")
STATIC = ("dedicated", "fqm", "profiles", "skills")
LABELS = {
    "dedicated": "(a) dedicated counters",
    "fqm": "(b) fewest-waiting at issue (FQM)",
    "profiles": "(c) edge work profiles",
    "skills": "(d) longest wait first over skills",
    "advisor": "(e) gateway advisor",
    "staff": "(f) advisor + manager follows a move",
    "pooled": "bound: universal pooled",
}
ERLANG_ROWS = ((1, 0.5), (2, 0.7), (3, 0.7), (5, 0.8))  # (counters, utilisation)
ERLANG_WARMUP_H = 2.0
TARGET_RATIO = 1.5


def run_profile_seed(job: tuple[str, int]) -> list[SimResult]:
    """All strategies for one (profile, seed). The advisor gets one earlier day of history; the engines of the
    configured profiles and of the advisor start with that day in their log (the wait estimate's history)."""
    name, seed = job
    day = PROFILES[name]
    hist = history_for(day, seed)
    out = []
    for s in STRATEGIES:
        kw: dict = {}
        if s in ("profiles", "advisor", "staff"):
            kw["prior"] = hist
        if s in ("advisor", "staff"):
            kw["history"] = hist
        r = simulate(day, "advisor" if s == "staff" else s, seed=seed, apply_staff=s == "staff", **kw)
        out.append(replace(r, strategy=s, waits=(), events=()))
    return out


def _ci95(xs: list[float]) -> float:
    if len(xs) < 2:
        return math.inf
    m = mean(xs)
    return 1.96 * math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs))


def _rows(results: list[SimResult], name: str, s: str) -> list[SimResult]:
    return sorted((r for r in results if r.profile == name and r.strategy == s), key=lambda r: r.seed)


def strategy_table(results: list[SimResult], seeds: int) -> str:
    lines = [f"| day profile ({seeds} seeds) | strategy | mean wait (min) | p95 wait (min) | waiting > 30 min | "
             "p95 ÷ bound | policies pushed |", "|---|---|---:|---:|---:|---:|---:|"]
    for name in PROFILES:
        bound = mean(r.p95_wait_s for r in _rows(results, name, "pooled")) or 1.0
        for s in STRATEGIES:
            rs = _rows(results, name, s)
            if not rs:
                continue
            p95 = mean(r.p95_wait_s for r in rs)
            pol = f"{mean(r.policies_applied for r in rs):.1f}" if s in ("advisor", "staff") else ""
            ratio = f"{p95 / bound:.2f}" if s != "pooled" else ""
            lines.append(f"| {name} | {LABELS[s]} | {mean(r.mean_wait_s for r in rs) / 60:.1f} | {p95 / 60:.1f} | "
                         f"{mean(r.share_over_30min for r in rs):.1%} | {ratio} | {pol} |")
    return "\n".join(lines)


def target_table(results: list[SimResult]) -> str:
    lines = ["| day profile | best static (p95 min) | advisor p95 (min) | advisor − best static, paired (min, 95% CI) | "
             "≤ best static? | advisor ÷ bound | ≤ 1.5 × bound? | note |", "|---|---|---:|---:|---|---:|---|---|"]
    for name in PROFILES:
        adv = _rows(results, name, "advisor")
        if not adv:
            continue
        best = min(STATIC, key=lambda s: mean(r.p95_wait_s for r in _rows(results, name, s)))
        ref = _rows(results, name, best)
        diff = [(a.p95_wait_s - b.p95_wait_s) / 60 for a, b in zip(adv, ref, strict=True)]
        d, ci = mean(diff), _ci95(diff)
        ok = "yes" if d + ci <= 0 else ("yes (within noise)" if d - ci <= 0 else "**no**")
        bound = mean(r.p95_wait_s for r in _rows(results, name, "pooled"))
        skills_ratio = mean(r.p95_wait_s for r in _rows(results, name, "skills")) / bound
        ratio = mean(r.p95_wait_s for r in adv) / bound
        if ratio <= TARGET_RATIO:
            met, note = "yes", ""
        elif skills_ratio > TARGET_RATIO:
            met = "no"
            note = (f"not reached by any strategy with these skills: longest wait first over every skill gets "
                    f"{skills_ratio:.2f} × (the bound lets every counter serve every service, at home speed)")
        else:
            met, note = "**no**", "the skills would allow it: the advisor falls short"
        if name == "land_short":
            staff = mean(r.p95_wait_s for r in _rows(results, name, "staff")) / bound
            note += f"; with the advised clerk move followed: {staff:.2f} ×"
        lines.append(f"| {name} | {LABELS[best]}: {mean(r.p95_wait_s for r in ref) / 60:.1f} | "
                     f"{mean(r.p95_wait_s for r in adv) / 60:.1f} | {d:+.1f} ± {ci:.1f} | {ok} | {ratio:.2f} | {met} | "
                     f"{note} |")
    return "\n".join(lines)


def staff_table(results: list[SimResult]) -> str:
    lines = ["| day profile | days with a staff action advised | actions advised (open / move / extend) | "
             "median predicted p95 gain (min) | p95 advisor → manager follows a move (min) |",
             "|---|---:|---|---:|---|"]
    for name in PROFILES:
        adv = _rows(results, name, "advisor")
        if not adv:
            continue
        acts = [a for r in adv for a in r.actions]
        kinds = {k: sum(1 for a in acts if a[0] == k) for k in ("open", "move", "extend")}
        gains = [(b - a) / 60 for _, _, _, b, a in acts if b > a]
        staff = _rows(results, name, "staff")
        applied = sum(r.staff_applied for r in staff)
        follow = (f"{mean(r.p95_wait_s for r in adv) / 60:.1f} → {mean(r.p95_wait_s for r in staff) / 60:.1f} "
                  f"({applied} of {len(staff)} days moved)") if applied else "no move advised"
        lines.append(f"| {name} | {sum(1 for r in adv if r.actions)} of {len(adv)} | {kinds['open']} / "
                     f"{kinds['move']} / {kinds['extend']} | {median(gains) if gains else 0:.1f} | {follow} |")
    return "\n".join(lines)


def estimate_stats(rs: list[SimResult]) -> tuple[int, float, float, float, int]:
    """(tickets, unknown share, share within ±25 % of waits ≥ 5 min (unknown counts as a miss), MAE min, n ≥ 5)."""
    pairs = [p for r in rs for p in r.estimates]
    if not pairs:
        return 0, 0.0, 0.0, 0.0, 0
    unknown = sum(1 for e, _ in pairs if e is None)
    long = [(e, w) for e, w in pairs if w >= 300]
    within = sum(1 for e, w in long if e is not None and abs(e - w) <= 0.25 * w)
    known = [(e, w) for e, w in pairs if e is not None]
    mae = mean(abs(e - w) for e, w in known) / 60 if known else 0.0
    return len(pairs), unknown / len(pairs), within / len(long) if long else 0.0, mae, len(long)


def estimate_table(results: list[SimResult]) -> str:
    lines = ["| day profile | profiles in force | tickets | \"unknown\" | within ±25 % (waits ≥ 5 min) | "
             "waits ≥ 5 min | mean abs. error (min) |", "|---|---|---:|---:|---:|---:|---:|"]
    for name in PROFILES:
        for s in ("profiles", "advisor"):
            n, unk, within, mae, n_long = estimate_stats(_rows(results, name, s))
            if n:
                lines.append(f"| {name} | {LABELS[s]} | {n} | {unk:.1%} | {within:.0%} | {n_long} | {mae:.1f} |")
    return "\n".join(lines)


def erlang_table(seeds: int, workers: int) -> tuple[str, bool]:
    lines = ["| counters | utilisation | simulated mean wait (s) | ± 95% CI | Erlang C (s) | error | tickets | "
             "check |", "|---:|---:|---:|---:|---:|---:|---:|---|"]
    ok = True
    for i, (c, rho) in enumerate(ERLANG_ROWS):  # other seeds per row: rows drawn from the same seeds would
        first = 1000 * (i + 1) + 1  # share their luck (and all be low or high together)
        v = validate_erlang_c(counters=c, rho=rho, seeds=range(first, first + seeds), warmup_h=ERLANG_WARMUP_H,
                              workers=workers)
        passed = v.rel_error <= 0.05 or abs(v.sim_mean_wait_s - v.erlang_c_wait_s) <= v.ci95_s
        ok = ok and passed and v.fcfs_max_diff_s <= 0.1
        lines.append(f"| {c} | {rho} | {v.sim_mean_wait_s:.1f} | {v.ci95_s:.1f} | {v.erlang_c_wait_s:.1f} | "
                     f"{v.rel_error:.1%} | {v.customers} | {'PASS' if passed else 'FAIL'} (engine = FCFS recursion "
                     f"within {v.fcfs_max_diff_s:.2f} s) |")
    return "\n".join(lines), ok


def cost_line(results: list[SimResult]) -> str:
    calls = sorted(x for r in results if r.strategy == "advisor" for x in r.advise_s)
    if not calls:
        return "(no advisor call)"
    return (f"Advisor cost per call (one center, 6 counters, {len(calls)} calls): median {median(calls) * 1000:.0f} ms, "
            f"p95 {percentile(calls, 95) * 1000:.0f} ms, max {calls[-1] * 1000:.0f} ms.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.balance_quality", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--erlang-seeds", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.seeds, a.erlang_seeds = 3, 4
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
    erl, erl_ok = erlang_table(a.erlang_seeds, a.workers)
    print(f"{len(jobs)} simulated days ({a.seeds} seeds × {len(PROFILES)} day profiles), every strategy on the "
          f"same citizens.\n")
    print(strategy_table(results, a.seeds))
    print("\nTargets:\n")
    print(target_table(results))
    print("\nStaff actions:\n")
    print(staff_table(results))
    print("\nWait estimate on the ticket (at issue) against the realized wait:\n")
    print(estimate_table(results))
    print(f"\nErlang C check (1 service, universal counters, exponential 60 s, 20 h days, first "
          f"{ERLANG_WARMUP_H:g} h dropped, {a.erlang_seeds} days per row):\n")
    print(erl)
    print()
    print(cost_line(results))
    print(f"\n({time.perf_counter() - t0:.0f} s on {a.workers} worker(s))", file=sys.stderr)
    return 0 if erl_ok else 1


if __name__ == "__main__":
    sys.exit(main())
