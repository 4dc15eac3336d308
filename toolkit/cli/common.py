"""Options shared by several sub-commands."""

from __future__ import annotations

import argparse
import os

DEFAULT_DB = "vdrift.duckdb"


def add_db_option(parser: argparse.ArgumentParser, *, tuning: bool = True) -> None:
    """``--db`` and, with ``tuning``, DuckDB's ``--memory-limit`` / ``--temp-directory``."""
    parser.add_argument(
        "--db",
        default=os.environ.get("VDRIFT_DB", DEFAULT_DB),
        help="DuckDB store file (default: $VDRIFT_DB or ./vdrift.duckdb)",
    )
    if not tuning:
        return
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 4GB")
    parser.add_argument("--temp-directory", default=None, help="where DuckDB spills when over the memory limit")


def add_command(sub: argparse._SubParsersAction, name: str, *, help: str, description: str | None = None,
                store: bool = True) -> argparse.ArgumentParser:
    """A sub-command's parser, with the store options of :func:`add_db_option` unless ``store`` is False.

    ``help`` is its line in the command list, ``description`` the text of its
    own ``--help``; each command then adds its own arguments.
    """
    parser = sub.add_parser(name, help=help, description=description)
    if store:
        add_db_option(parser)
    return parser


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    """``--engine duckdb|spark``: where the passes over the rows run (analyses, and the scans of attach/validate)."""
    parser.add_argument("--engine", default="duckdb", choices=["duckdb", "spark"],
                        help="where the passes over the rows run: duckdb (default) or spark (a session from the "
                        "standard configuration: SPARK_REMOTE for Spark Connect, else spark-submit / spark.master; "
                        "needs pip install 'vdrift[spark]'); the result is the same")
