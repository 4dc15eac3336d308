"""``vdrift attach``, ``vdrift validate`` and ``vdrift detach``: predictions read in place from Parquet."""

from __future__ import annotations

import argparse
import json

from ..errors import safe_text
from .common import add_command, add_engine_option
from .ingest import _open


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vdrift attach``, ``validate`` and ``detach`` to the sub-commands."""
    a = add_command(
        sub, "attach",
        help="read predictions in place from a Parquet dataset (no copy), validated as a view",
        description="Register a Parquet dataset (a file, a directory, a glob, or hive key=value "
        "directories such as date=2026-11-09/part-0.parquet) as the store's predictions without "
        "copying it. Rows failing ingest's rules are excluded from every analysis and reported by "
        "`vdrift validate` and `vdrift status`. Deployments and artifacts are ingested as usual. "
        "Exit codes: 0 ok, 2 bad input (no file matches, a required column is missing, already "
        "attached, predictions already ingested), 3 store unusable, 5 rows were excluded and "
        "--fail-on-excluded was given.",
    )
    a.add_argument("kind", choices=["predictions"])
    a.add_argument("path", metavar="PATH", help="a Parquet file, a directory (read recursively) or a glob")
    a.add_argument("--mapping", help="TOML/YAML file mapping your column names and time formats onto the contract")
    a.add_argument("--partitioning", choices=["hive", "none"], default="none",
                   help="hive: key=value directories are columns (a key named like a contract column feeds it; "
                   "others are layout, not covariates, unless the mapping lists them)")
    a.add_argument("--examples", type=int, default=3, help="example rows shown per exclusion reason")
    a.add_argument("--fail-on-excluded", action="store_true", help="exit 5 when any row is excluded")
    add_engine_option(a)
    a.set_defaults(func=run_attach)

    v = add_command(
        sub, "validate",
        help="validate the attached predictions again: excluded rows by reason, with examples",
        description="Take in the files that match the attached pattern now, apply ingest's row rules "
        "to every row, and report the rows that analyses exclude (the rows ingest would quarantine), "
        "by reason, with examples. Exit codes: 0 ok, 2 no attached source, 5 rows were excluded and "
        "--fail-on-excluded was given.",
    )
    v.add_argument("--examples", type=int, default=3, help="example rows shown per reason")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.add_argument("--fail-on-excluded", action="store_true", help="exit 5 when any row is excluded")
    add_engine_option(v)
    v.set_defaults(func=run_validate)

    d = add_command(sub, "detach", help="forget the attached predictions dataset (its files are untouched)")
    d.add_argument("kind", choices=["predictions"])
    d.set_defaults(func=run_detach)


def _print_result(result, args: argparse.Namespace) -> int:
    if getattr(args, "json", False):
        print(json.dumps(result.to_dict(), default=str, indent=2))
    else:
        print(safe_text(result.summary(examples=args.examples)))
    return 5 if args.fail_on_excluded and result.excluded else 0


def run_attach(args: argparse.Namespace) -> int:
    """Run ``vdrift attach predictions PATH``."""
    with _open(args) as store:
        result = store.attach(args.path, mapping=args.mapping, partitioning=args.partitioning,
                              examples=max(args.examples, 0), engine=args.engine)
    return _print_result(result, args)


def run_validate(args: argparse.Namespace) -> int:
    """Run ``vdrift validate``."""
    with _open(args) as store:
        result = store.validate(examples=max(args.examples, 0), engine=args.engine)
    return _print_result(result, args)


def run_detach(args: argparse.Namespace) -> int:
    """Run ``vdrift detach predictions``."""
    with _open(args) as store:
        pattern = store.detach()
    print(safe_text(f"detached predictions from {pattern}; the store's predictions table is empty again"))
    return 0
