"""``vdrift ingest`` and ``vdrift status``."""

from __future__ import annotations

import argparse
import os
import sys

import polars as pl

from ..errors import InputError, safe_text
from ..audit.intended import ungoverned_components
from ..audit.results import ungoverned_warning
from ..sources import ADAPTERS
from ..store import Store
from ..store.schema import stored_schema_version
from .common import add_command, add_db_option, add_engine_option


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vdrift ingest`` and ``status`` to the sub-commands."""
    p = add_command(
        sub, "ingest", store=False,
        help="validate and load prediction logs, deployment history, the artifact registry or late labels",
        description="Validate and load files into the store. Each file is one transaction; "
        "rejected rows go to quarantine with a reason; a file already ingested is skipped. "
        "Exit codes: 0 ok, 2 a file could not be read (others still loaded), "
        "3 store unusable, 5 rows were quarantined and --fail-on-quarantine was given.",
    )
    p.add_argument("kind", choices=["predictions", "deployments", "artifacts", "outcomes"],
                   help="outcomes: late labels (request_id, outcome[, labeled_at]) joined to stored predictions")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="files, globs or directories (CSV, Parquet, JSON lines); none with --from-mlflow")
    m = p.add_argument_group("MLflow model registry (docs/sources-mlflow.md)")
    m.add_argument("--from-mlflow", metavar="URI",
                   help="with 'artifacts': read the registry at URI (e.g. sqlite:///mlflow.db) through the mlflow "
                   "client: its versions become artifacts, its alias moves deployment events")
    m.add_argument("--mlflow-model", action="append", metavar="NAME",
                   help="a registered model (repeatable; default all)")
    m.add_argument("--mlflow-alias", action="append", metavar="ALIAS",
                   help="an alias whose moves are deployments (repeatable; default champion)")
    m.add_argument("--mlflow-label", metavar="TEMPLATE",
                   help="the vdrift version label of an MLflow version (default {model}:{version}; also "
                   "{run_id} and {tags[NAME]})")
    add_db_option(p)  # here, not by add_command: the usage line lists --db after the MLflow options
    p.add_argument("--mapping", help="TOML/YAML file mapping your column names and time formats onto the contract")
    p.add_argument("--format", dest="log_format", metavar="FORMAT",
                   help="read prediction logs in a serving platform's native layout: "
                   f"{', '.join(ADAPTERS)} (docs/sources.md); the mapping applies on top")
    p.add_argument("--force", action="store_true", help="re-ingest files already ingested (replaces their rows)")
    p.add_argument("--quiet", "-q", action="store_true", help="print only errors and the final line")
    p.add_argument("--fail-on-quarantine", action="store_true", help="exit 5 when any row was quarantined")
    p.add_argument("--progress", action="store_true",
                   help="print progress lines on stderr even when it is not a terminal (file started, "
                   "rows read, committed)")
    p.set_defaults(func=run_ingest)

    s = add_command(sub, "status", help="what the store holds: row counts, time span, recent ingests")
    add_engine_option(s)
    s.set_defaults(func=run_status)

    u = add_command(sub, "upgrade", help="bring a store written by an older vdrift to this version's schema",
                    description="Migrate the store's schema in place (version 2 adds each prediction row's "
                    "request key, computed once: about 2 s per 10M rows). The analyses open a store read-only "
                    "and ask for this when its schema is older. Exit codes: 0 migrated or already current, "
                    "2 no store at the path or not a vdrift store, 3 the store is unusable or the migration "
                    "failed (the store is then unchanged).")
    u.set_defaults(func=run_upgrade)



def _open(args: argparse.Namespace, read_only: bool = False) -> Store:
    return Store(args.db, read_only=read_only, memory_limit=args.memory_limit, temp_directory=args.temp_directory)


def run_ingest(args: argparse.Namespace) -> int:
    """Run ``vdrift ingest`` and print what each file gave."""
    if args.from_mlflow is not None or not args.paths or args.mlflow_model or args.mlflow_alias or args.mlflow_label:
        return _run_mlflow(args)
    with _open(args) as store:
        report = store.ingest(
            args.kind, args.paths, mapping=args.mapping, force=args.force, format=args.log_format,
            progress="lines" if args.progress else (not args.quiet and sys.stderr.isatty()),
        )
    text = report.summary()
    if args.quiet:  # the totals line (not the quarantine hint that may follow it)
        totals = next(line for line in text.splitlines() if line.startswith(f"{report.kind}: "))
        text = totals if report.ok else "\n".join([r.summary() for r in report.failed] + [totals])
    print(safe_text(text))
    if not report.ok:
        for failed in report.failed:  # also on stderr, so scripts and cron mails see what to fix
            print(f"vdrift: error: {safe_text(failed.message)}", file=sys.stderr)
        return 2
    if args.fail_on_quarantine and report.quarantined:
        return 5
    return 0


def run_upgrade(args: argparse.Namespace) -> int:
    """Run ``vdrift upgrade``: open the store read-write, which migrates its schema."""
    if not os.path.exists(args.db):
        raise InputError(f"no store at {args.db}: `vdrift upgrade` migrates an existing store (create one with "
                         "`vdrift ingest`)")
    before = stored_schema_version(args.db)
    if before is None:
        raise InputError(f"{args.db} is not a vdrift store (it has no schema version): `vdrift upgrade` migrates "
                         "a store that vdrift wrote; pass its path with --db")
    with _open(args) as store:
        version = store.schema_version
    said = "already at" if before == version else f"migrated from schema v{before} to"
    print(safe_text(f"store {args.db}: {said} schema v{version}"))
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Run ``vdrift status``: the store's tables, span and covariates."""
    with _open(args, read_only=True) as store:
        counts = store.counts()
        span = store.time_span()
        log = store.ingest_log()
        covs = store.covariates()
        ungoverned = ungoverned_components(store.con)
        attached = store.attached(engine=args.engine)
    print(safe_text(f"store {args.db} (schema v{store.schema_version})"))
    for name, n in counts.items():
        print(f"  {name:<12} {n:>12,}")
    if span:
        print(safe_text(f"  predictions from {span[0]} to {span[1]} UTC"))
    if covs.height:
        print(safe_text("  covariates: " + ", ".join(f"{n} ({t.lower()})" for n, t in covs.iter_rows())))
    for component, n, share, why in ungoverned:
        print(safe_text("warning: " + ungoverned_warning(component, n, share, why)))
    if attached is not None:
        print(safe_text(attached.summary()))
    if log.height:
        print("recent ingests:")
        recent = log.filter(pl.col("superseded_by").is_null()).tail(10)
        for row in recent.iter_rows(named=True):
            print(f"  #{row['ingest_id']:<4} {row['kind']:<12} {row['rows_read']:>9,} read "
                  f"{row['quarantined']:>7,} quarantined  {safe_text(row['path'])}")
    return 0


def _run_mlflow(args: argparse.Namespace) -> int:
    """``vdrift ingest artifacts --from-mlflow URI``: the registry through the same ingest (toolkit.sources.mlflow)."""
    if args.from_mlflow is None and args.paths:
        raise InputError("--mlflow-model, --mlflow-alias and --mlflow-label go with --from-mlflow URI")
    if args.from_mlflow is None:
        raise InputError(f"ingest {args.kind}: give the files to load (PATH ...), "
                         "or --from-mlflow URI with 'artifacts'")
    if args.kind != "artifacts" or args.paths or args.mapping:
        raise InputError("--from-mlflow URI reads the registry itself: use it as `vdrift ingest artifacts "
                         "--from-mlflow URI`, without PATHs or --mapping")
    from ..sources.mlflow import DEFAULT_ALIASES, DEFAULT_LABEL, ingest_mlflow

    with _open(args) as store:
        result = ingest_mlflow(store, args.from_mlflow, models=args.mlflow_model,
                               aliases=args.mlflow_alias or DEFAULT_ALIASES,
                               label=args.mlflow_label or DEFAULT_LABEL, force=args.force,
                               progress="lines" if args.progress else (not args.quiet and sys.stderr.isatty()))
    text = result.summary()
    if args.quiet:
        heads = ("mlflow ", "  alias ", "artifacts: ", "deployments: ")
        text = "\n".join(line for line in text.splitlines() if line.startswith(heads))
    print(safe_text(text))
    for problem in result.problems:
        print(f"vdrift: warning: {safe_text(problem)} (quarantined)", file=sys.stderr)
    failed = result.artifacts.failed + result.deployments.failed
    for f in failed:
        print(f"vdrift: error: {safe_text(f.message)}", file=sys.stderr)
    if failed:
        return 2
    if args.fail_on_quarantine and result.quarantined:
        return 5
    return 0
