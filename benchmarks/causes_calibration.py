"""Calibration of ``vdrift explain`` against the simulator's replay cost of each planted problem.

For each scenario and replication (seed), a sample is simulated, loaded and
explained for the comparison window alone (``toolkit.explain(store, metric,
comparison)``); the cost of off-intent serving and the sum of the planted
problem's findings are compared with ``GroundTruth.problem_costs`` (the rows
the plant affected, replayed with the routing they would have had without
it). On the clean scenario it counts false alarms: a run where some priced
cause's 95% interval excludes 0, and change points (per run and per series).

    .venv/bin/python benchmarks/causes_calibration.py --reps 20 --rows 60000 --jobs 2

writes ``benchmarks/results/causes_calibration.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENARIOS = ("canary", "rollback", "config_mismatch", "experiment", "clean")
METRICS = ("rate:prediction=approved", "mean:score")
PLANTED = {
    "canary": {"stuck_rollout"},
    "rollback": {"incomplete_rollback", "stale_cache", "batch_online_divergence"},
    "config_mismatch": {"artifact_mismatch", "unexpected_multi_version"},
    "experiment": {"abandoned_experiment"},
    "clean": set(),
}
COMPARISON = "2026-11-09..2026-11-16"


def _one(task: tuple[str, int, int, int]) -> list[dict]:
    import polars as pl

    import toolkit
    from toolkit.samples import load_simulation, simulate

    scenario, seed, rows, n_boot = task
    sim = simulate([scenario], rows=rows, seed=seed)
    out = []
    with load_simulation(sim) as store:
        for metric in METRICS:
            t0 = time.perf_counter()
            res = toolkit.explain(store, metric, COMPARISON, n_boot=n_boot, seed=seed)
            secs = time.perf_counter() - t0
            cost = res.window_costs.row(0, named=True)
            truth = sim.ground_truth.problem_costs[metric]["all"]["comparison"]
            priced = res.causes.filter(pl.col("impact").is_not_nan())
            planted = priced.filter(pl.col("kind").is_in(sorted(PLANTED[scenario])))
            top = priced.row(0, named=True) if priced.height else None
            alarms = priced.filter((pl.col("ci_low") > 0) | (pl.col("ci_high") < 0))
            out.append({
                "scenario": scenario, "seed": seed, "metric": metric, "truth": truth, "cost": cost["cost"],
                "lo": cost["ci_low"], "hi": cost["ci_high"],
                "planted": float(planted["impact"].sum()) if planted.height else 0.0,
                "top_planted": bool(top is not None and top["kind"] in PLANTED[scenario]),
                "false_alarm": alarms.height > 0, "change_points": res.change_points.height,
                "series": int(res.change_points.select(pl.struct("cell", "version").n_unique()).item())
                if res.change_points.height else 0,
                "seconds": secs,
            })
    return out


def _z(r: dict) -> float:
    """(estimate - truth) / SD, with SD = the interval's half-width / 1.96; NaN for a zero-width interval."""
    sd = (r["hi"] - r["lo"]) / (2 * 1.96)
    return (r["cost"] - r["truth"]) / sd if sd > 0 else float("nan")


def _wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    z = 1.96
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (100 * (c - h), 100 * (c + h))


def _covered(r: dict) -> bool:
    return r["lo"] - 1e-12 <= r["truth"] <= r["hi"] + 1e-12


def _table_row(s: str, m: str, sub: list[dict]) -> str:
    """One scenario x metric row of the page."""
    n = len(sub)
    err = [r["cost"] - r["truth"] for r in sub]
    tol = [abs(e) <= max(0.003, 0.3 * abs(r["truth"])) for e, r in zip(err, sub, strict=True)]
    cov = [_covered(r) for r in sub]
    lo, hi = _wilson(sum(cov), n)
    first = [r["top_planted"] for r in sub] if s != "clean" else []
    same = [abs(r["planted"] - r["cost"]) < 1e-9 for r in sub] if s != "clean" else []
    zs = [z for r in sub if math.isfinite(z := _z(r))]
    rmsz = f"{math.sqrt(sum(z * z for z in zs) / len(zs)):.2f}" if zs else "-"
    return (f"| {s} | `{m}` | {n} | {sum(r['truth'] for r in sub) / n:+.4f} | {sum(err) / n:+.4f} | "
            f"{math.sqrt(sum(e * e for e in err) / n):.4f} | {100 * sum(tol) / n:.0f} | "
            f"{100 * sum(cov) / n:.0f} ({lo:.0f}-{hi:.0f}) | "
            f"{(f'{100 * sum(first) / n:.0f}') if first else '-'} | "
            f"{(f'{100 * sum(same) / n:.0f}') if same else '-'} | {rmsz} | "
            f"{sum(r['seconds'] for r in sub) / n:.1f} |")


def _pooled(rows: list[dict]) -> list[str]:
    """Coverage pooled over the planted scenarios, and what rms z means."""
    priced = [r for r in rows if r["scenario"] != "clean"]
    if not priced:
        return []
    k = sum(_covered(r) for r in priced)
    lo, hi = _wilson(k, len(priced))
    return ["", f"Pooled over the planted scenarios: coverage {100 * k / len(priced):.1f}% of {len(priced)} "
            f"(Wilson 95% {lo:.1f}-{hi:.1f}%). `rms z`: root mean square of (estimate - truth) / SD, where "
            "SD is the interval's half-width / 1.96; about 1 when the interval's width is right, below 1 "
            "when it is wider than the errors need, above 1 when it is too narrow (where the truth is "
            "exactly 0 and so is the SD, z is left out)."]


def _false_alarms(rows: list[dict]) -> list[str]:
    """False alarms and change points on the clean scenario."""
    clean = [r for r in rows if r["scenario"] == "clean"]
    if not clean:
        return []
    n = len(clean)
    fa = sum(r["false_alarm"] for r in clean)
    cps = sum(r["change_points"] for r in clean)
    runs_cp = sum(r["change_points"] > 0 for r in clean)
    return [
        "", "## False alarms on the clean scenario", "",
        f"- Runs where some priced cause's 95% interval excludes 0: {fa} of {n} "
        f"({100 * fa / n:.0f}%; acceptance: at most 5%).",
        f"- Change points: {cps} in {n} runs ({cps / n:.2f} per run); runs with at least one: {runs_cp} "
        f"({100 * runs_cp / n:.0f}%). Each run tests 3 routing cells over all versions plus each version "
        "inside each cell (about 6 series) with |T| >= 6.",
    ]


def page(rows: list[dict], command: str, wall: float) -> list[str]:
    """The markdown page of a set of runs."""
    lines = [
        "# vdrift explain against the replay cost of the planted problems", "",
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `{command}` ({wall / 60:.1f} min wall time).",
        "",
        "Each replication simulates one scenario (seed = replication), explains the comparison window alone and "
        "compares the cost of off-intent serving with the replay truth (`GroundTruth.problem_costs`: the rows "
        "the plant affected, replayed with the routing they would have had without it). Tolerance "
        "max(0.003, 30% of |truth|) (0.3 pt of a rate). Coverage: the 95% interval holds the truth (Wilson 95% "
        "interval of the coverage in brackets). `planted = cost`: the planted problem's findings carry the "
        "whole cost. `first`: one of the planted problem's findings ranks first.", "",
        "| scenario | metric | R | mean truth | mean error | RMSE | within tol. % | coverage % | first % "
        "| planted = cost % | rms z | mean s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in SCENARIOS:
        for m in METRICS:
            sub = [r for r in rows if r["scenario"] == s and r["metric"] == m]
            if sub:
                lines.append(_table_row(s, m, sub))
    return lines + _pooled(rows) + _false_alarms(rows)


def main() -> int:
    """Command line entry point (``--help`` lists the options)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--rows", type=int, default=60_000)
    p.add_argument("--n-boot", type=int, default=100)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", help="also write every run (one object per scenario, seed and metric) here")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "causes_calibration.md"))
    args = p.parse_args()
    tasks = [(s, r, args.rows, args.n_boot) for s in SCENARIOS for r in range(args.reps)]
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(args.jobs) as pool:
        rows = [row for part in pool.imap_unordered(_one, tasks) for row in part]
    command = (f"benchmarks/causes_calibration.py --reps {args.reps} --rows {args.rows} --n-boot {args.n_boot} "
               f"--jobs {args.jobs}")
    lines = page(rows, command, time.perf_counter() - t0)
    Path(args.out).write_text("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(sorted(rows, key=lambda r: (r["scenario"], r["seed"], r["metric"])),
                                              indent=1, default=str) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
