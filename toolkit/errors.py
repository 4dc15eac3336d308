"""Exceptions with messages that say what to fix, and their CLI exit codes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


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


#: the operating system's words for a write that found no room (ENOSPC, EFBIG, EDQUOT), as DuckDB quotes them
_DISK_FULL_PHRASES = ("no space left on device", "file too large", "disk quota exceeded")


def is_disk_full(message: str) -> bool:
    """True for a DuckDB message about a write that found no room (full disk, file-size limit, quota)."""
    text = message.lower()
    return any(p in text for p in _DISK_FULL_PHRASES)


def disk_full(path: str | None, detail: str) -> StoreError:
    """The error for a write that found no room: nothing of the work in progress was stored."""
    first = detail.strip().splitlines()[0] if detail.strip() else "no space left on device"
    return StoreError(
        f"no room to write {_store_name(path)} ({first}); the transaction in progress was rolled back, so "
        "nothing of it was stored and no input file is to blame. Free disk space (or move the store, or give "
        "--temp-directory on a disk with room) and run the command again"
    )


def is_lock_error(message: str) -> bool:
    """True for DuckDB's message that another process holds the store's file lock."""
    text = message.lower()
    return any(p in text for p in _LOCK_PHRASES)


def is_corruption(message: str) -> bool:
    """True for DuckDB's messages about a damaged database file (checksum mismatch, short read)."""
    text = message.lower()
    return any(p in text for p in _CORRUPTION_PHRASES)


def _store_name(path: str | None) -> str:
    return f"store {path!r}" if path else "the store"


def corrupt_store(path: str | None, detail: str) -> StoreCorrupt:
    """The error for a damaged store, naming DuckDB's detail and what to do."""
    first = detail.strip().splitlines()[0] if detail.strip() else "checksum mismatch"
    return StoreCorrupt(
        f"{_store_name(path)} is corrupt ({first}); no input file is to blame. Restore the store from a backup, "
        "or rebuild it in a new file by ingesting the logs again (ingest_log lists them)"
    )


def out_of_memory(detail: str) -> InputError:
    """DuckDB ran out of memory: name the limit and the two options that fix it."""
    first = detail.strip().splitlines()[0] if detail.strip() else "out of memory"
    return InputError(
        f"DuckDB ran out of memory ({first}); raise --memory-limit (e.g. 4GB; Store(memory_limit=...)) "
        "or give --temp-directory on a disk with room so it can spill"
    )


def from_duckdb(exc: Exception, store_path: str | None = None) -> VdriftError | None:
    """The toolkit's error for a DuckDB failure that is not a bug (corruption, a lock, memory), else None."""
    message = str(exc)
    where = store_path
    if is_corruption(message):
        return corrupt_store(where, message)
    if is_disk_full(message):
        return disk_full(where, message)
    if is_lock_error(message):
        return StoreError(
            f"{_store_name(where)} is in use by another process that has it open for writing; wait for it "
            "to finish (e.g. a running ingest) and try again"
        )
    if type(exc).__name__ == "OutOfMemoryException" or message.startswith("Out of Memory Error"):
        return out_of_memory(message)
    return None


def safe_text(text: object, *, json: bool = False) -> str:
    r"""Text for a terminal: control and bidi-format characters (ESC, BEL, NUL, U+202E ...) escaped.

    The one escaping function of everything vdrift prints. Every value may
    come from logs (versions, regions, column and file names, DuckDB's
    messages quoting them); printed raw they could move the cursor, recolour
    or reorder what the user reads. Newlines and tabs of vdrift's own layout
    are kept. Python's ``\\x1b`` notation is used, or with ``json`` the
    ``\\u001b`` notation, which keeps JSON text valid (the escape then reads
    back as the original character).
    """
    out = []
    for ch in str(text):
        if ch.isprintable() or ch in "\n\t":
            out.append(ch)
        elif json:
            code = ord(ch)
            if code > 0xFFFF:  # a surrogate pair, as JSON writes characters beyond the BMP
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def check_choice(value: T, choices: Iterable[T], what: str) -> T:
    """Return ``value`` if it is one of ``choices``, else raise a usage error.

    Parameters
    ----------
    value
        The value given by the user.
    choices
        The allowed values, in the order the message lists them.
    what
        What the value is, as the message names it (``"report kind"``, ``"bucket"``).

    Returns
    -------
    The value, unchanged.

    Raises
    ------
    InputError
        ``unknown <what> <value!r>: use one of <choices>``.
    """
    allowed = list(choices)
    if value not in allowed:
        raise InputError(f"unknown {what} {value!r}: use one of {', '.join(map(str, allowed))}")
    return value
