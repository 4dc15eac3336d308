"""``vdrift quarantine``: the rejected rows, by reason, with examples."""

from __future__ import annotations

import argparse

from ..errors import safe_text
from .common import add_db_option
from .ingest import _open


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vdrift quarantine`` to the sub-commands."""
    q = sub.add_parser("quarantine", help="show quarantined rows with their reasons")
    add_db_option(q)
    q.add_argument("--limit", type=int, default=20)
    q.add_argument("--ingest-id", type=int, default=None)
    q.set_defaults(func=run_quarantine)


def run_quarantine(args: argparse.Namespace) -> int:
    """Run ``vdrift quarantine``: rejected rows by reason, with examples."""
    with _open(args, read_only=True) as store:
        q = store.quarantine(ingest_id=args.ingest_id)
    if q.height == 0:
        print("quarantine is empty")
        return 0
    print(f"{q.height:,} quarantined row(s); by reason:")
    for reason, n in q.group_by("reason").len().sort("len", descending=True).iter_rows():
        print(f"  {n:>8,}  {safe_text(reason)}")
    print(f"first {min(args.limit, q.height)}:")
    for row in q.head(args.limit).iter_rows(named=True):
        where = f"row {row['row_number']}" if row["row_number"] is not None else "line"
        print(safe_text(f"  {row['source_file']} {where}: {row['reason']}\n      {row['raw']}"))
    return 0
