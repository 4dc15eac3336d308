"""``vdrift audit``: which versions served traffic and where that differs from the intent."""

from __future__ import annotations

import argparse

from ..audit import SEVERITIES, audit, severity_rank
from ..errors import safe_text
from ..store import Store
from .common import add_command, add_engine_option

#: Exit code when a finding at or above ``--fail-on`` exists (see toolkit.cli).
EXIT_CHECK_FAILED = 5


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vdrift audit`` to the sub-commands."""
    p = add_command(
        sub, "audit",
        help="version census, intended state and version-drift findings",
        description="Audit which model versions really served the predictions in the store and "
        "where that differs from the deployment history: stuck rollouts, incomplete rollbacks, "
        "abandoned experiments, artifact and preprocessing mismatches, stale caches, batch/online "
        "divergence, unexpected extra versions and prediction divergence. "
        "Exit codes: 0 ok, 2 bad input, 3 store unusable, 4 no predictions in the window, "
        "5 a finding at or above --fail-on exists.",
    )
    p.add_argument("--from", dest="start", default=None, metavar="T",
                   help="start of the window, ISO 8601 UTC (default: first prediction)")
    p.add_argument("--to", dest="end", default=None, metavar="T",
                   help="end of the window, exclusive (default: just after the last prediction)")
    p.add_argument("--bucket", choices=["auto", "hour", "day"], default="auto",
                   help="census and consistency bucket (auto: hourly up to 7 days, else daily)")
    add_engine_option(p)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--fail-on", choices=list(SEVERITIES), default=None, metavar="SEVERITY",
                   help="exit 5 when a finding at or above this severity exists "
                   f"({'|'.join(SEVERITIES)}); for CI and cron")
    p.set_defaults(func=run_audit)


def run_audit(args: argparse.Namespace) -> int:
    """Run ``vdrift audit`` and print its summary or JSON."""
    with Store(args.db, read_only=True, memory_limit=args.memory_limit,
               temp_directory=args.temp_directory) as store:
        result = audit(store, start=args.start, end=args.end, bucket=args.bucket, engine=args.engine)
    print(safe_text(result.to_json(), json=True) if args.json else safe_text(result.summary()))
    if args.fail_on is not None and result.max_severity is not None:
        if severity_rank(result.max_severity) >= severity_rank(args.fail_on):
            return EXIT_CHECK_FAILED
    return 0
