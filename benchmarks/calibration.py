"""Coverage of the attribution's 95% intervals against the simulator's replay truth.

For every scenario, draw many seeded samples with ``toolkit.samples.simulate``,
attribute the shift of each metric with every method, and count how often
the interval of each component (data drift, version drift) contains the
exact replay value from the sample's ground truth. Writes a markdown table to
``benchmarks/results/calibration.md`` (or ``--out``).

Usage::

    .venv/bin/python benchmarks/calibration.py                      # 200 replications per scenario
    .venv/bin/python benchmarks/calibration.py --reps 20 --rows 10000 --out /tmp/cal.md   # quick look
    .venv/bin/python benchmarks/calibration.py --interval population \
        --out benchmarks/results/calibration_population.md

The replay truth conditions on the logged inputs (docs/methods.md), and so
do the default ``conditional`` intervals; the ``population`` intervals also
count the sampling of inputs, so their data drift over-covers this truth. A
method whose binning bias is larger than its interval under-covers, which this
benchmark is there to show.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from toolkit.attribution import attribute  # noqa: E402
from toolkit.samples import SCENARIOS, load_simulation, simulate  # noqa: E402

BASELINE = "2026-11-02..2026-11-09"
COMPARISON = "2026-11-09..2026-11-16"
METRICS = ("rate:prediction=approved", "mean:score")
COMPONENTS = ("data_drift", "version_drift")


def run(scenarios: list[str], reps: int, rows: int, n_boot: int, seed0: int,
        bins: int, interval: str = "conditional") -> pl.DataFrame:
    """Attribute ``reps`` seeded samples per scenario; one row per replication, method and component."""
    out = []
    for sc in scenarios:
        t0 = time.time()
        for r in range(reps):
            sim = simulate(scenarios=[sc], rows=rows, seed=seed0 + r)
            gt = sim.ground_truth
            with load_simulation(sim) as store:
                for metric in METRICS:
                    res = attribute(store, metric, BASELINE, COMPARISON, n_boot=n_boot, seed=r,
                                    bins=bins, interval=interval)
                    for row in res.to_frame().iter_rows(named=True):
                        if row["component"] not in COMPONENTS:
                            continue
                        truth = gt.effect(metric, row["component"])
                        out.append({
                            "scenario": sc, "rep": r, "metric": metric, "method": row["method"],
                            "component": row["component"], "truth": truth, "estimate": row["estimate"],
                            "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                        })
        print(f"{sc}: {reps} replications in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return pl.DataFrame(out)


def table(frame: pl.DataFrame) -> pl.DataFrame:
    """Coverage, bias and interval width per scenario, metric, method and component."""
    return (
        frame.with_columns(
            ((pl.col("ci_low") <= pl.col("truth")) & (pl.col("truth") <= pl.col("ci_high"))).alias("covered"),
            (pl.col("estimate") - pl.col("truth")).alias("error"),
            (pl.col("ci_high") - pl.col("ci_low")).alias("width"),
        )
        .group_by("scenario", "metric", "method", "component", maintain_order=True)
        .agg(
            pl.len().alias("reps"),
            (100 * pl.col("covered").mean()).alias("coverage_pct"),
            pl.col("error").mean().alias("mean_error"),
            pl.col("error").std().alias("sd_error"),
            pl.col("width").mean().alias("mean_width"),
        )
    )


def markdown(summary: pl.DataFrame, args: argparse.Namespace, elapsed: float) -> str:
    """The results page for ``summary``."""
    lines = [
        "# Attribution interval calibration",
        "",
        f"Generated {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} by "
        "`benchmarks/calibration.py` "
        f"(`--reps {args.reps} --rows {args.rows} --n-boot {args.n_boot} "
        f"--bins {args.bins} --seed0 {args.seed0} --interval {args.interval}`), {elapsed / 60:.1f} min.",
        "",
        "Each replication simulates one scenario with a new seed, attributes the shift of each metric",
        f"with every method (95% intervals, cell-level `{args.interval}` bootstrap) and checks whether the interval",
        "contains the exact replay value of the ground truth. Nominal coverage is 95%; with "
        f"{args.reps} replications the binomial standard error of a coverage near 95% is "
        f"{100 * np.sqrt(0.95 * 0.05 / max(args.reps, 1)):.1f} points.",
        "",
        "| scenario | metric | method | component | reps | coverage % | mean error | SD of error | mean CI width |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.iter_rows(named=True):
        lines.append(
            f"| {r['scenario']} | `{r['metric']}` | {r['method']} | {r['component']} | {r['reps']} | "
            f"{r['coverage_pct']:.1f} | {r['mean_error']:+.5f} | {r['sd_error']:.5f} | {r['mean_width']:.5f} |"
        )
    overall = summary.group_by("method", "component", maintain_order=True).agg(
        (pl.col("coverage_pct") * pl.col("reps")).sum() / pl.col("reps").sum()
    )
    lines += ["", "Overall coverage (all scenarios and metrics):", "",
              "| method | component | coverage % |", "|---|---|---|"]
    for r in overall.iter_rows(named=True):
        lines.append(f"| {r['method']} | {r['component']} | {r['coverage_pct']:.1f} |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``--help`` lists the options)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=200, help="replications per scenario (default 200)")
    p.add_argument("--rows", type=int, default=10_000, help="requests per simulated sample (default 10000)")
    p.add_argument("--n-boot", type=int, default=100, help="bootstrap replicates per attribution (default 100)")
    p.add_argument("--bins", type=int, default=5)
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenario names")
    p.add_argument("--seed0", type=int, default=1000, help="seed of the first replication")
    p.add_argument("--interval", default="conditional", choices=["conditional", "population"],
                   help="bootstrap scheme of the intervals (default conditional, as attribute())")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "calibration.md"))
    p.add_argument("--csv", default=None, help="also write every replication to this CSV")
    args = p.parse_args(argv)
    t0 = time.time()
    frame = run([s.strip() for s in args.scenarios.split(",") if s.strip()], args.reps, args.rows,
                args.n_boot, args.seed0, args.bins, args.interval)
    if args.csv:
        frame.write_csv(args.csv)
    text = markdown(table(frame), args, time.time() - t0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
