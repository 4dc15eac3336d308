"""The ``vdrift`` command line: a thin layer over the Python API.

Each capability registers its sub-commands from its own module listed in
``COMMANDS``; a module exposes ``register(subparsers)`` which adds parsers
whose ``func`` default takes the parsed arguments and returns an exit code.

Exit codes: 0 success, 1 unexpected failure (a bug: please report it),
2 bad input or usage, 3 store unusable (locked, newer schema, missing),
4 analysis not applicable to the data, 5 a check failed (``--fail-on``,
``--fail-on-quarantine``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import VdriftError, from_duckdb, safe_text

COMMANDS = (
    "toolkit.cli.ingest",
    "toolkit.cli.quarantine",
    "toolkit.cli.attach",
    "toolkit.cli.samples",
    "toolkit.cli.audit",
    "toolkit.cli.attribute",
    "toolkit.cli.explain",
    "toolkit.cli.report",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every capability's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="vdrift",
        description="Which model versions really answered your traffic, and how much of a "
        "metric shift is data drift versus version drift.",
    )
    parser.add_argument("--version", action="version", version=f"vdrift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # one broken capability must not take the others down
            print(safe_text(f"vdrift: warning: the '{name.rsplit('.', 1)[-1]}' command is unavailable: {exc}"),
                  file=sys.stderr)
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vdrift``: run a sub-command and return its exit code."""
    args = None
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        # `ingest KIND --format X PATH`: PATH is optional there (--from-mlflow takes none), so argparse ends
        # the positional list at the first option; later paths are the command's paths, anything else an error
        if extra and getattr(args, "command", None) == "ingest" and not any(e.startswith("-") for e in extra):
            args.paths = list(args.paths) + extra
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return int(args.func(args) or 0)
    except VdriftError as exc:
        print(f"vdrift: error: {safe_text(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vdrift: interrupted; the store is unchanged for the file in progress", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `vdrift status | head`: the reader went away, not an error
        sys.stderr.close()
        return 0
    except Exception as exc:
        known = _known_failure(exc, getattr(args, "db", None))
        if known is not None:  # a corrupt store, a lock or too little memory, met in the middle of a command
            print(f"vdrift: error: {safe_text(known)}", file=sys.stderr)
            return known.exit_code
        import traceback  # a bug: say so plainly, keep the details for the report

        detail = "".join(traceback.format_exception(exc))
        print(safe_text(f"vdrift: internal error: {type(exc).__name__}: {exc}\n"
                        "This is a bug in vdrift; please report it with the details below.\n" + detail),
              file=sys.stderr)
        return 1


def _known_failure(exc: Exception, store_path: str | None) -> VdriftError | None:
    """The toolkit's error for a DuckDB failure that is the environment's, not vdrift's (see errors.from_duckdb)."""
    try:
        import duckdb
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, duckdb.Error):
        return from_duckdb(exc, store_path)
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
