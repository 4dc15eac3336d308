"""``vdrift samples generate`` / ``vdrift samples real``: samples with their ground truth."""

from __future__ import annotations

import argparse
from typing import Any

from ..samples import FORMATS, SCENARIOS, generate


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vdrift samples generate`` and ``vdrift samples real`` to the command line."""
    p = sub.add_parser(
        "samples",
        help="simulated sample logs with planted problems and their ground truth",
        description="Simulated logs of a fraud-approval service (baseline week 2026-11-02..09, "
        "comparison week 2026-11-09..16) with planted version-drift problems.",
    )
    inner = p.add_subparsers(dest="samples_command", metavar="SUBCOMMAND")
    inner.required = True
    g = inner.add_parser(
        "generate",
        help="write predictions, deployments.jsonl, artifacts.csv and ground_truth.json to OUT",
        description="Write a seeded sample to OUT: predictions.<format> (or predictions/day=*/part.<format>), "
        "deployments.jsonl, artifacts.csv and ground_truth.json (planted problems and the exact replay "
        "effects of the approval-rate and mean-score shifts). The same arguments give byte-identical files. "
        f"Scenarios (repeatable; 'all' = {', '.join(SCENARIOS[:5])}): {', '.join(SCENARIOS)}.",
    )
    g.add_argument("out", metavar="OUT", help="output directory (created if needed)")
    g.add_argument(
        "--scenario", action="append", dest="scenarios", metavar="NAME",
        choices=("all",) + SCENARIOS,
        help="scenario to plant; repeat to combine (default: all)",
    )
    g.add_argument("--rows", type=int, default=100_000,
                   help="number of requests (default 100000); shadow rows come on top")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--format", dest="fmt", choices=FORMATS, default="parquet",
                   help="predictions file format (default parquet)")
    g.add_argument("--partition-by-day", action="store_true", help="one predictions file per UTC day")
    g.set_defaults(func=run_generate)

    from ..samples.real import case_names

    cases = case_names() or ("flights", "nlswork")
    r = inner.add_parser(
        "real",
        help="route a real-data replay case to versions and write it with its exact ground truth",
        description="Real records from public data sets (see docs/real-data-cases.md), with every model "
        "version's output replayed on every record, routed to versions synthetically by the case's deployment "
        "plan (canary, experiment, rollback). Writes predictions.parquet, deployments.jsonl, artifacts.csv "
        f"and ground_truth.json to OUT. Cases: {', '.join(cases)}.",
    )
    r.add_argument("case", metavar="CASE", choices=cases, help=f"the case: {', '.join(cases)}")
    r.add_argument("out", metavar="OUT", help="output directory (created if needed)")
    r.add_argument("--seed", type=int, default=0, help="redraws the routing and the subsample (default 0)")
    r.add_argument("--fraction", type=float, default=1.0,
                   help="share of the records kept, a random subsample (default 1 = all)")
    r.set_defaults(func=run_real)


def _wrote(out: str, truth: Any, predictions: str) -> int:
    """Print what was written to ``out``, its ground truth and the ingest commands (``predictions`` in ``out``)."""
    print(f"wrote {out}/: " + ", ".join(truth.files.values()))
    print(truth.summary())
    print(
        f"next: vdrift ingest predictions {out}/{predictions} && "
        f"vdrift ingest deployments {out}/deployments.jsonl && "
        f"vdrift ingest artifacts {out}/artifacts.csv"
    )
    return 0


def run_generate(args: argparse.Namespace) -> int:
    """Write a simulated sample and print its ground truth."""
    truth = generate(
        args.out,
        args.scenarios or ["all"],
        rows=args.rows,
        seed=args.seed,
        fmt=args.fmt,
        partition_by_day=args.partition_by_day,
    )
    return _wrote(args.out, truth, truth.files["predictions"].split("/")[0])


def run_real(args: argparse.Namespace) -> int:
    """Write a real-data replay case and print its ground truth."""
    from ..samples.real import write_case

    truth = write_case(args.out, args.case, seed=args.seed, fraction=args.fraction)
    return _wrote(args.out, truth, "predictions.parquet")
