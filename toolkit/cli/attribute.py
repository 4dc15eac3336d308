"""``vdrift attribute``: split a metric shift into data drift, version drift and residual."""

from __future__ import annotations

import argparse

from ..errors import safe_text
from ..store import Store
from .common import add_command, add_engine_option


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vdrift attribute`` to the sub-commands."""
    p = add_command(
        sub, "attribute",
        help="how much of a metric shift is data drift, version drift and residual",
        description="Attribute the shift of a metric between two windows to data drift (inputs "
        "changed), version drift (the mix of resolved model versions in each routing cell changed) and "
        "residual, with three estimators and bootstrap intervals. Routing is compared per routing cell "
        "(the deployment scope, default region); covariates explain the data drift and feed the "
        "per-version outcome models, they never stratify the routing. See docs/methods.md. "
        "Exit codes: 0 ok, 2 bad input, 3 store unusable, 4 the split does not apply or cannot be "
        "estimated (the message says what would make it estimable).",
    )
    p.add_argument("--metric", required=True,
                   help="rate:<column>=<value> (e.g. rate:prediction=approved), mean:<column> "
                   "(e.g. mean:score), accuracy, accuracy:<prediction>=<outcome>[,...] (e.g. accuracy:yes=1), "
                   "logloss[:<positive outcome>], rate:outcome=1 or mean:outcome")
    p.add_argument("--baseline", required=True, metavar="FROM..TO", help="baseline window, half-open, UTC")
    p.add_argument("--comparison", required=True, metavar="FROM..TO", help="comparison window, half-open, UTC")
    p.add_argument("--covariates", default=None,
                   help="comma-separated covariates that explain data drift (default: every declared covariate "
                   "plus region); pass '' for none")
    p.add_argument("--categorical", default=None, metavar="A,B",
                   help="numeric covariates (integer codes) to treat as categories")
    p.add_argument("--routing-by", default=None, metavar="COLS",
                   help="columns of the deployment scope that decide which version answers "
                   "(default: region when the rows have one; '' for one routing cell)")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep only rows where COL equals VALUE (repeatable; repeat a column to keep any of its values)")
    p.add_argument("--method", default="all", choices=["regression", "matched", "standardization", "all"])
    p.add_argument("--bins", type=int, default=5,
                   help="quantile bins per numeric covariate in the outcome models, 1 to 20 (default 5)")
    p.add_argument("--bootstrap", type=int, default=200, metavar="N",
                   help="bootstrap replicates for the 95%% intervals (default 200)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--interval", default="conditional", choices=["conditional", "population"],
                   help="conditional (default): effects on this traffic, inputs held fixed; "
                        "population: inputs resampled too (wider data-drift intervals)")
    p.add_argument("--segments", action="store_true",
                   help="estimate behaviour inside the deployment segments of each routing cell (inputs that "
                   "trend inside a window while a rollout moves the routing)")
    p.add_argument("--include-shadow", action="store_true", help="count shadow-scored rows too")
    add_engine_option(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of the summary")
    p.set_defaults(func=run_attribute)


def parse_where(items: list[str]) -> dict | None:
    """``--where COL=VALUE`` options as the API's ``where``: a column given several times keeps any of its values."""
    where: dict[str, list[str]] = {}
    for item in items:
        col, eq, val = item.partition("=")
        if not eq or not col.strip():
            from ..errors import InputError
            raise InputError(f"cannot read --where {item!r}: write it as COL=VALUE, e.g. --where region=eu")
        where.setdefault(col.strip(), []).append(val)
    return {k: (v[0] if len(v) == 1 else v) for k, v in where.items()} or None


def run_attribute(args: argparse.Namespace) -> int:
    """Run ``vdrift attribute`` and print its summary or JSON."""
    from ..attribution import attribute

    def names(text: str | None) -> list[str] | None:
        return None if text is None else [c.strip() for c in text.split(",") if c.strip()]

    with Store(args.db, read_only=True, memory_limit=args.memory_limit,
               temp_directory=args.temp_directory) as store:
        result = attribute(
            store, args.metric, args.baseline, args.comparison, covariates=names(args.covariates),
            where=parse_where(args.where), method=args.method,
            bins=args.bins, routing_by=names(args.routing_by), categorical=names(args.categorical),
            segments=args.segments, n_boot=args.bootstrap, seed=args.seed, include_shadow=args.include_shadow,
            interval=args.interval, engine=args.engine,
        )
    # versions, regions, covariate names and values come from logs: printed through the one escaping function
    print(safe_text(result.to_json(), json=True) if args.json else safe_text(result.summary()))
    return 0
