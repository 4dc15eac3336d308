"""``vdrift quarantine``: the rejected rows by reason, with examples; export, release and purge them."""

from __future__ import annotations

import argparse

from ..errors import InputError, safe_text
from ..store import quarantine as q
from ..store.ingest.results import reason_rule
from .common import add_command
from .ingest import _open


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vdrift quarantine`` to the sub-commands."""
    p = add_command(
        sub, "quarantine", help="show, export, release or purge quarantined rows",
        description="Without an action: quarantined rows by reason, with examples. --export FILE writes the "
        "selected rows back out in their original columns (CSV, JSON lines or Parquet by the ending) for fixing; "
        "--release validates them again (after a mapping fix: --mapping) and loads what passes; --purge drops the "
        "quarantine of one ingest (--ingest ID) and records it in ingest_log.",
    )
    p.add_argument("--limit", type=int, default=20, help="examples to show (default 20)")
    p.add_argument("--ingest-id", "--ingest", dest="ingest_id", type=int, default=None,
                   help="only the rows of this ingest (vdrift status lists the ids)")
    p.add_argument("--reason", default=None, help="only rows whose reason contains this text (any case)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--export", metavar="FILE", help="write the selected rows to FILE in their original columns")
    action.add_argument("--release", action="store_true", help="validate the selected rows again and load them")
    action.add_argument("--purge", action="store_true", help="drop the selected rows of one ingest (--ingest ID)")
    p.add_argument("--mapping", help="with --release: the (fixed) mapping file to read the rows with")
    p.set_defaults(func=run_quarantine)


def run_quarantine(args: argparse.Namespace) -> int:
    """Run ``vdrift quarantine``: show, or export / release / purge the selected rows."""
    if args.mapping and not args.release:
        raise InputError("--mapping goes with --release (the mapping to validate the released rows with)")
    selection = q.Selection(ingest_id=args.ingest_id, reason=args.reason)
    if args.export or args.release or args.purge:
        with _open(args, read_only=bool(args.export)) as store:
            if args.export:
                print(safe_text(q.export(store, args.export, selection).summary()))
                return 0
            if args.purge:
                print(safe_text(q.purge(store, selection).summary()))
                return 0
            result = q.release(store, selection, mapping=args.mapping)
        print(safe_text(result.summary()))
        return 0 if result.report.ok else 2
    with _open(args, read_only=True) as store:
        rows = q.select(store, selection)
    if rows.height == 0:
        print("quarantine is empty" if args.ingest_id is None and args.reason is None
              else f"no quarantined row matches {selection.describe()}")
        return 0
    print(f"{rows.height:,} quarantined row(s); by reason:")
    by_rule = rows.with_columns(rule=rows["reason"].map_elements(reason_rule, return_dtype=rows["reason"].dtype))
    for rule, n in by_rule.group_by("rule").len().sort(["len", "rule"], descending=[True, False]).iter_rows():
        print(f"  {n:>8,}  {safe_text(rule)}")
    print(f"first {min(args.limit, rows.height)}:")
    for row in rows.head(args.limit).iter_rows(named=True):
        where = f"row {row['row_number']}" if row["row_number"] is not None else "line"
        print(safe_text(f"  #{row['ingest_id']} {row['source_file']} {where}: {row['reason']}\n      {row['raw']}"))
    print("fix them: --export FILE (original columns), or --release --mapping FIXED.toml; "
          "drop them: --purge --ingest ID")
    return 0
