"""Run the benchmarks and write benchmarks/RESULTS.md.

Every measure runs as a fresh Python process (``benchmarks/tasks.py``) so
that its peak resident memory (``ru_maxrss`` from ``os.wait4``) belongs to
that task alone; each is repeated and reported as median and range, with the
1-minute load average before and after (the machine may be shared).

Usage::

    .venv/bin/python benchmarks/run.py --tiers 1m 10m          # make bench
    .venv/bin/python benchmarks/run.py --tiers 1m 10m 100m     # make bench-100m
    .venv/bin/python benchmarks/run.py --tiers 100k --repeats 1 --no-baselines   # smoke

Measures of earlier runs are kept in ``benchmarks/results/runs.json`` (one
entry per tier and task, replaced when measured again) and RESULTS.md is
written from all of them, so ``--tiers 100m`` later adds to a 1m/10m run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.generate import DATA, TIERS  # noqa: E402
from benchmarks.results_page import write_results  # noqa: E402
from benchmarks.runner import WORK, machine, run_tier  # noqa: E402
from benchmarks.targets import METHODS  # noqa: E402

ALL_TASKS = ("ingest", "incremental", "pruning", "audit", "attribute", "explain", "report", "glm", "dowhy",
             "spark", "spark_lake")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``--help`` lists the options)."""
    parser = argparse.ArgumentParser(description="Run the vdrift benchmarks and write RESULTS.md.")
    parser.add_argument("--tiers", nargs="+", default=["1m", "10m"], choices=list(TIERS))
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each measure (default 3)")
    parser.add_argument("--tasks", nargs="+", default=list(ALL_TASKS), choices=ALL_TASKS)
    parser.add_argument("--no-baselines", action="store_true", help="skip the pandas and DoWhy baselines")
    parser.add_argument("--glm-tiers", nargs="+", default=["1m", "10m"], help="tiers of the cell GLM timing")
    parser.add_argument("--pandas-tiers", nargs="+", default=["1m"],
                        help="tiers where the row-level pandas fit runs (at 10M rows it needs more than 22 GB)")
    parser.add_argument("--pandas-repeats", type=int, default=2, help="repeats of the (slow) row-level fit")
    parser.add_argument("--dowhy-tiers", nargs="+", default=["1m"], help="tiers of the DoWhy comparison")
    parser.add_argument("--report-tiers", nargs="+", default=["1m", "10m"], help="tiers of the report timing")
    parser.add_argument("--spark-tiers", nargs="+", default=["10m"],
                        help="tiers of the Spark local mode vs DuckDB comparison (needs pyspark and Java)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--n-boot", type=int, default=200, help="bootstrap replicates of the attribution runs")
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB memory_limit of every store (default 3GB)")
    parser.add_argument("--profile", action="store_true", help="profile measures that miss a target (pyinstrument)")
    parser.add_argument("--data-root", type=Path, default=DATA)
    parser.add_argument("--work", type=Path, default=WORK, help="where stores are written (benchmarks/work)")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "runs.json",
                        help="JSON store of all measures (merged across runs)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--rewrite", action="store_true",
                        help="measure nothing: rewrite RESULTS.md from the saved runs (after editing ANALYSIS.md)")
    args = parser.parse_args(argv)
    if args.no_baselines:
        args.tasks = [t for t in args.tasks if t not in ("glm", "dowhy")]

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    if args.rewrite:
        saved = json.loads(args.results.read_text())
        write_results(args.out, saved.get("tiers", {}), saved.get("machine", {}))
        log(f"{args.out} rewritten from {args.results}")
        return 0
    info = machine()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    def save(tier: str, measured: dict) -> None:
        runs: dict[str, Any] = {}
        if args.results.exists():  # another run may have added measures meanwhile
            runs = json.loads(args.results.read_text()).get("tiers", {})
        runs.setdefault(tier, {}).update(measured)
        tmp = args.results.with_suffix(".tmp")
        tmp.write_text(json.dumps({"machine": info, "tiers": runs}, indent=1, default=str))
        os.replace(tmp, args.results)
        write_results(args.out, runs, info)

    for tier in args.tiers:
        measured = run_tier(tier, args, log, lambda m, tier=tier: save(tier, m))
        save(tier, dict(measured))
        log(f"[{tier}] done; {args.out} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
