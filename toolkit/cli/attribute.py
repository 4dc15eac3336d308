"""``vdrift attribute``: split a metric shift into data drift, version drift and residual."""

from __future__ import annotations

import argparse

from ..store import Store
from .common import add_db_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "attribute",
        help="how much of a metric shift is data drift, version drift and residual",
        description="Attribute the shift of a metric between two windows to data drift (inputs "
        "changed), version drift (the mix of resolved model versions changed) and residual (the "
        "same version behaved differently), with three methods and bootstrap intervals. "
        "Exit codes: 0 ok, 2 bad input, 3 store unusable, 4 a window has no rows for the metric.",
    )
    add_db_option(p)
    p.add_argument("--metric", required=True,
                   help="rate:<column>=<value> (e.g. rate:prediction=approved), mean:<column> "
                   "(e.g. mean:score), accuracy, rate:outcome=1 or mean:outcome")
    p.add_argument("--baseline", required=True, metavar="FROM..TO", help="baseline window, half-open, UTC")
    p.add_argument("--comparison", required=True, metavar="FROM..TO", help="comparison window, half-open, UTC")
    p.add_argument("--covariates", default=None,
                   help="comma-separated columns to adjust for (default: every declared covariate plus "
                   "region); pass '' to adjust for nothing")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep only rows where COL equals VALUE (repeatable)")
    p.add_argument("--method", default="all", choices=["regression", "matched", "standardization", "all"])
    p.add_argument("--bins", type=int, default=5, help="quantile bins per numeric covariate (default 5)")
    p.add_argument("--bootstrap", type=int, default=200, metavar="N",
                   help="bootstrap replicates for the 95%% intervals (default 200)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--interval", default="conditional", choices=["conditional", "population"],
                   help="conditional (default): effects on this traffic, inputs held fixed; "
                        "population: inputs resampled too (wider data-drift intervals)")
    p.add_argument("--include-shadow", action="store_true", help="count shadow-scored rows too")
    p.add_argument("--json", action="store_true", help="print JSON instead of the summary")
    p.set_defaults(func=run_attribute)


def run_attribute(args: argparse.Namespace) -> int:
    from ..attribution import attribute

    covariates = None
    if args.covariates is not None:
        covariates = [c.strip() for c in args.covariates.split(",") if c.strip()]
    with Store(args.db, read_only=True, memory_limit=args.memory_limit,
               temp_directory=args.temp_directory) as store:
        result = attribute(
            store, args.metric, args.baseline, args.comparison, covariates=covariates,
            where=args.where or None, method=args.method, bins=args.bins, n_boot=args.bootstrap,
            seed=args.seed, include_shadow=args.include_shadow, interval=args.interval,
        )
    print(result.to_json() if args.json else result.summary())
    return 0
