"""``vdrift report incident|weekly``: render a papermill report to offline HTML."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from ..errors import safe_text
from .common import DEFAULT_DB, add_db_option


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``vdrift report`` to the command line."""
    parser = subparsers.add_parser(
        "report",
        help="render the incident or weekly report (HTML without code, figures as PNG/SVG)",
        description=(
            "Execute a report notebook with papermill and write "
            "<out-dir>/<date>-<slug>/report.html (self-contained, works offline) next to the executed "
            "report.ipynb and figures/*.png|svg, then update <out-dir>/index.html. Prints the HTML path."
        ),
        epilog=(
            "examples:\n"
            "  vdrift report incident --db vdrift.duckdb --param metric=rate:prediction=approved \\\n"
            "      --param baseline=2026-11-02..2026-11-09 --param comparison=2026-11-09..2026-11-16\n"
            "  vdrift report weekly --db vdrift.duckdb --param metric=rate:prediction=approved   # last full week\n"
            "  vdrift report incident -f params.yaml --figures-only\n"
            "parameters (--param NAME=VALUE or a YAML mapping with -f): store_path, metric, baseline, comparison\n"
            "(incident), week (weekly), filters, covariates, methods, bucket, n_boot, seed, title, slug, output_dir.\n"
            "Lists: --param covariates=age,income or --param covariates='[age, income]';\n"
            "mappings: --param filters='{region: eu}'."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", choices=["incident", "weekly"], help="which report")
    add_db_option(parser, tuning=False)  # the notebook opens the store itself, read-only
    parser.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                        help="a notebook parameter (repeatable); overrides -f")
    parser.add_argument("-f", "--params-file", default=None, metavar="params.yaml",
                        help="YAML file with a mapping of parameters")
    parser.add_argument("--week", default=None, metavar="YYYY-MM-DD",
                        help="weekly report: first day of the reported week, from local midnight in the report's "
                        "timezone parameter (default UTC; default week: the last full ISO week)")
    parser.add_argument("--out-dir", default="reports", help="reports folder (default: reports)")
    parser.add_argument("--figures-only", action="store_true",
                        help="write only figures/*.png|svg (no HTML, notebook or index entry)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S",
                        help="seconds any one notebook cell may run (default: 600)")
    parser.set_defaults(func=run)


def collect_params(args: argparse.Namespace) -> dict:
    """Merge -f, --db, --week and --param (later ones win) into one raw mapping."""
    from ..errors import InputError
    from ..report.params import load_params_file, parse_cli_params

    params: dict = {}
    if args.params_file:
        params.update(load_params_file(args.params_file))
    # --db fills store_path unless the file sets it and --db was left at its default.
    if "store_path" not in params or args.db != os.environ.get("VDRIFT_DB", DEFAULT_DB):
        params["store_path"] = args.db
    if args.week:
        if args.kind != "weekly":
            raise InputError("--week only applies to the weekly report; use --param baseline=... comparison=...")
        params["week"] = args.week
    params.update(parse_cli_params(args.param))
    return params


def run(args: argparse.Namespace) -> int:
    """Render the report and print the HTML path (or each figure's with ``--figures-only``)."""
    from ..report import render

    params = collect_params(args)
    result = render(
        args.kind,
        params,
        out_dir=args.out_dir,
        figures_only=args.figures_only,
        timeout=args.timeout,
        today=dt.datetime.now(dt.UTC).date(),
    )
    if args.figures_only:
        for path in result.figures:
            print(safe_text(shown(path)))
    else:
        print(safe_text(shown(result.html)))
    return 0


def shown(path: Path | None) -> str:
    """``path`` relative to the working directory when it lies inside it, else as it is."""
    if path is None:
        return ""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
