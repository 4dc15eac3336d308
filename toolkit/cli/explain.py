"""``vdrift explain``: the ranked causes of a metric shift, or what off-intent serving cost in one window."""

from __future__ import annotations

import argparse

from ..errors import safe_text
from ..store import Store
from .attribute import parse_where
from .common import add_command, add_engine_option


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vdrift explain`` to the sub-commands."""
    p = add_command(
        sub, "explain",
        help="ranked causes: what each serving problem cost, data drift by feature, the residual",
        description="Price the rows served off-intent (what the metric would have been had traffic been "
        "served as the deployment history intended), split that cost and the version drift exactly by "
        "audit finding, add data drift by feature and the residual, and rank the causes with one "
        "sentence each. Without --baseline: what off-intent serving cost in the --comparison window. "
        "See docs/causes.md. Exit codes: 0 ok, 2 bad input, 3 store unusable, 4 not applicable.",
    )
    p.add_argument("--metric", required=True, help="a metric as for vdrift attribute (e.g. rate:prediction=approved)")
    p.add_argument("--comparison", required=True, metavar="FROM..TO", help="the window to explain, half-open, UTC")
    p.add_argument("--baseline", default=None, metavar="FROM..TO",
                   help="the window to compare with (omit it to price one window's off-intent serving)")
    p.add_argument("--method", default="regression", choices=["regression", "matched", "standardization"],
                   help="the attribution method whose version behaviour prices the rows (default regression)")
    p.add_argument("--covariates", default=None, help="comma-separated covariates (default: every declared one)")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE", help="row filter (repeatable)")
    p.add_argument("--bins", type=int, default=5, help="quantile bins per numeric covariate, 1 to 20 (default 5)")
    p.add_argument("--bootstrap", type=int, default=200, metavar="N", help="bootstrap replicates (default 200)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    add_engine_option(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of the summary")
    p.set_defaults(func=run_explain)


def run_explain(args: argparse.Namespace) -> int:
    """Run ``vdrift explain`` and print its summary or JSON."""
    from ..causes import explain

    covs = None if args.covariates is None else [c.strip() for c in args.covariates.split(",") if c.strip()]
    with Store(args.db, read_only=True, memory_limit=args.memory_limit,
               temp_directory=args.temp_directory) as store:
        result = explain(store, args.metric, args.comparison, baseline=args.baseline, method=args.method,
                         covariates=covs, where=parse_where(args.where), bins=args.bins, n_boot=args.bootstrap,
                         seed=args.seed, engine=args.engine)
    print(safe_text(result.to_json(), json=True) if args.json else safe_text(result.summary()))
    return 0
