"""Exceptions with messages that say what to fix, and their CLI exit codes."""

from __future__ import annotations


class VdriftError(Exception):
    """Base class: every error the toolkit raises on purpose.

    The message is written for the user and says what to fix.
    """

    exit_code = 1


class InputError(VdriftError):
    """A file, mapping, parameter or option that cannot be used as given."""

    exit_code = 2


class StoreError(VdriftError):
    """The store cannot be opened or written (locked, newer schema, missing)."""

    exit_code = 3


class NotApplicable(VdriftError):
    """An analysis does not apply to the data given (e.g. an empty window)."""

    exit_code = 4


class StoreCorrupt(StoreError):
    """The store file is damaged (a block's checksum does not match): restore it or rebuild it."""


# DuckDB's own words, matched on whole phrases (a corrupt block's message holds "block", not "lock").
_LOCK_PHRASES = ("could not set lock on file", "conflicting lock is held")
_CORRUPTION_PHRASES = ("corrupt database file", "does not match stored checksum", "invalid database file",
                       "not a valid duckdb database file", "could not read enough bytes from file")


def is_lock_error(message: str) -> bool:
    """True for DuckDB's message that another process holds the store's file lock."""
    text = message.lower()
    return any(p in text for p in _LOCK_PHRASES)


def is_corruption(message: str) -> bool:
    """True for DuckDB's messages about a damaged database file (checksum mismatch, short read)."""
    text = message.lower()
    return any(p in text for p in _CORRUPTION_PHRASES)


def corrupt_store(path: str, detail: str) -> StoreCorrupt:
    """The error for a damaged store, naming DuckDB's detail and what to do."""
    first = detail.strip().splitlines()[0] if detail.strip() else "checksum mismatch"
    return StoreCorrupt(
        f"store {path!r} is corrupt ({first}); no input file is to blame. Restore the store from a backup, "
        "or rebuild it in a new file by ingesting the logs again (ingest_log lists them)"
    )


def safe_text(text: object) -> str:
    """Text for a terminal: control and bidi-format characters (ESC, BEL, NUL, U+202E ...) escaped.

    Every value vdrift prints may come from logs (versions, regions, column
    and file names, DuckDB's messages quoting them); printed raw they could
    move the cursor, recolour or reorder what the user reads. Newlines and
    tabs of vdrift's own layout are kept.
    """
    return "".join(
        ch if ch.isprintable() or ch in "\n\t" else ch.encode("unicode_escape").decode("ascii")
        for ch in str(text)
    )
