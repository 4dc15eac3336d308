"""Checks of a file's header and rows, and the reasons given when DuckDB's reader refuses a file."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ...errors import InputError, is_corruption
from .. import textscan
from .files import _first_line


def _own_names(fmt: str, path: Path, delimiter: str) -> list[str]:
    """The column names as the file writes them (DuckDB renames a repeated name to ``name_1``)."""
    if fmt == "csv":
        import csv
        import io

        head = b""
        for chunk in textscan.read_chunks(path):
            head += chunk
            if b"\n" in head.lstrip(b"\r\n") or len(head) > textscan.MAX_LINE_BYTES:
                break
        text = head.decode("utf-8", "replace").lstrip("\ufeff\r\n")
        return next(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"'), [])
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    import json

    names: dict[str, None] = {}
    seen = 0
    for raw in _json_head_lines(path):  # the keys of the first records (DuckDB unites them all)
        try:
            pairs = json.loads(raw, object_pairs_hook=lambda kv: kv)
        except ValueError:
            break
        if not isinstance(pairs, list):
            break
        keys = [k for k, _ in pairs if isinstance(k, str)]
        if len(set(keys)) < len(keys):
            return keys  # a key repeated within one object
        names.update(dict.fromkeys(keys))
        seen += 1
        if seen >= 1000:
            break
    return list(names)


def _json_head_lines(path: Path):
    carry = b""
    for chunk in textscan.read_chunks(path):
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()
        for line in lines:
            if line.strip():
                yield line
        if len(carry) > textscan.MAX_LINE_BYTES:
            return
    if carry.strip():
        yield carry


def _check_header(fmt: str, path: Path, names: list[str]) -> None:
    """Refuse column names that cannot be stored (a NUL byte) and a CSV header that is not UTF-8.

    DuckDB skips a header line it cannot read as UTF-8 and takes the next
    line for the header, or names the columns ``column0``, ``column1`` ...;
    the missing-column message would then list names the file never had.
    """
    for i, name in enumerate(names, 1):
        if "\x00" in name:
            raise InputError(
                f"{path}: column {i} is named {name!r}, which holds a NUL byte; nothing was ingested from the "
                "file. Give every column a name without NUL bytes"
            )
    if fmt != "csv":
        return
    head = b""
    for chunk in textscan.read_chunks(path):
        head += chunk
        if b"\n" in head.lstrip(b"\r\n") or len(head) > textscan.MAX_LINE_BYTES:
            break
    header = head.lstrip(b"\r\n").split(b"\n", 1)[0]
    try:
        header.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: the header line is not valid UTF-8 (byte {exc.start + 1:,} of the line, "
            f"{header[exc.start:exc.start + 4]!r}...), so its column names cannot be read; nothing was ingested "
            "from the file. vdrift reads UTF-8 text: convert the file (e.g. iconv -f LATIN1 -t UTF-8) or fix "
            "the header"
        ) from None


def _check_source_names(fmt: str, path: Path, delimiter: str, described: list[str]) -> None:
    """Refuse column names that repeat, also when they differ only in case (``Score`` and ``score``).

    DuckDB compares names case-insensitively and renames a repeat to
    ``name_1``; the store would keep a column the file never named, or pick
    one of the two silently.
    """
    try:
        own = _own_names(fmt, path, delimiter) if fmt != "json" or len(described) > 1 else []
    except (OSError, ValueError):
        return  # the reader's own error is reported by the load
    by_lower: dict[str, list[str]] = {}
    for name in own:
        by_lower.setdefault(name.lower(), []).append(name)
    repeats = [names for names in by_lower.values() if len(names) > 1]
    if repeats:
        shown = "; ".join(" and ".join(repr(n) for n in names) for names in repeats[:5])
        raise InputError(
            f"{path}: column names repeat ({shown}); vdrift compares column names case-insensitively, as "
            f"DuckDB does, so one would be renamed (to {repeats[0][-1].lower()}_1) or chosen silently. Nothing "
            "was ingested from the file: give every column its own name"
        )


def _gzip_padding_reason(path: Path) -> str:
    """Why DuckDB refuses a gzip archive that Python's gzip module read whole: zero bytes after its end, or ''.

    Python's gzip module (which checked the archive, :func:`textscan.read_chunks`) and the ``gzip``
    program skip zero bytes after the last member, as tape and block-device copies pad files;
    DuckDB's reader expects another member there and says "Input is not a GZIP stream".
    """
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return ""
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\x00":
            return ""
    return ("the gzip archive is followed by zero bytes (padding, as some tape and block-device copies write); "
            "its data checks out, but DuckDB's gzip reader refuses anything after the last member. Strip the "
            "padding and ingest the copy, e.g. gzip -dc FILE | gzip > FIXED.gz")


_BREAK_OR_QUOTE = re.compile(rb'["\r\n]')
_BREAK_NAMES = {b"\n": "LF", b"\r\n": "CR LF", b"\r": "CR"}


def _mixed_line_breaks(path: Path) -> str:
    """Where a CSV file's line breaks change kind (LF, CR LF, CR) outside quoted fields, or ''.

    DuckDB's CSV reader detects one kind of line break and refuses a file
    whose lines end in another one later ("Error when sniffing file", or
    "The CSV Parser state machine reached an invalid state" past its
    sample). Only read when the reader failed, to say so with the line.
    """
    delim = textscan.detect_delimiter(path).encode()
    first: str | None = None
    line = 1
    in_quote = False
    last = b"\n"  # the byte before the current buffer (a file starts at a line start)
    carry = b""
    for chunk in textscan.read_chunks(path):
        buf, carry = carry + chunk, b""
        if buf.endswith((b"\r", b'"')):  # a CR LF or a doubled quote may continue in the next chunk
            buf, carry = buf[:-1], buf[-1:]
        i = 0
        for m in _BREAK_OR_QUOTE.finditer(buf):
            j = m.start()
            if j < i:  # the second byte of a pair handled below
                continue
            c = buf[j:j + 1]
            if c == b'"':
                if in_quote:
                    if buf[j + 1:j + 2] == b'"':  # "" inside a quoted field
                        i = j + 2
                        continue
                    in_quote = False
                elif (buf[j - 1:j] if j else last) in (delim, b"\n", b"\r"):
                    in_quote = True
                i = j + 1
                continue
            i = j + 1
            if in_quote:
                continue
            if c == b"\r" and buf[j + 1:j + 2] == b"\n":
                c, i = b"\r\n", j + 2
            kind = _BREAK_NAMES[c]
            if first is None:
                first = kind
            elif kind != first:
                return (f"line {line:,} ends in {kind} but line 1 ends in {first}: the CSV reader needs one kind of "
                        "line break throughout the file (CR or LF inside a quoted field is fine). Convert the line "
                        "breaks to one kind, e.g. with dos2unix (CR LF to LF)")
            line += 1
        if buf:
            last = buf[-1:]
    return ""


_TEXT_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
#: DuckDB's sniffer reads this many rows; a quoting error among them fails the whole file
_SNIFFED_ROWS = 20_480


def _quoting_trouble(path: Path) -> str:
    """The first line among those DuckDB's sniffer reads whose quoting breaks RFC 4180, or ''.

    Text after the closing quote of a quoted field (``"o"k``) in the sniffer's
    sample makes DuckDB refuse the whole file ("Error when sniffing file");
    Python's csv module, in strict mode, finds the line. Only read when the
    reader failed, to say so with the line.
    """
    import csv

    delimiter = textscan.detect_delimiter(path)

    def lines():
        carry = ""
        for chunk in textscan.read_chunks(path):
            text = carry + chunk.decode("latin-1")  # every byte kept where it is: quotes and breaks are ASCII
            carry = ""
            for m in _TEXT_LINE.finditer(text):
                line = m.group()
                if line.endswith("\n") or (line.endswith("\r") and m.end() < len(text)):
                    yield line
                else:  # the rest of the chunk: its line continues in the next one
                    carry = line
        if carry:
            yield carry

    reader = csv.reader(lines(), delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
    limit = csv.field_size_limit()
    csv.field_size_limit(textscan.MAX_LINE_BYTES + 1)
    try:
        for records, _ in enumerate(reader):
            if records > _SNIFFED_ROWS + 1:
                return ""
    except csv.Error as exc:
        if "expected after" in str(exc):
            return (f"line {reader.line_num:,} has text after the closing quote of a quoted field: a field that "
                    'starts with " must end with " right before the delimiter or the line break (RFC 4180); '
                    'double a " that belongs to the value ("")')
        return ""
    finally:
        csv.field_size_limit(limit)
    return ""


def _parser_reason(exc: Exception, fmt: str, path: Path) -> str:
    """DuckDB's reason for not reading a file, with what the independent scan knows (long lines)."""
    reason = _first_line(exc)
    if fmt == "parquet" and not is_corruption(reason):
        return (f"{reason}; the file is damaged or not Parquet (its metadata or a page cannot be decoded), and "
                "nothing was ingested from it. Copy the file again from its source")
    if path.name.lower().endswith(".gz") and "not a gzip stream" in reason.lower():
        padding = _gzip_padding_reason(path)
        if padding:
            return padding
    if fmt != "csv":
        return reason
    trouble = textscan.describe_trouble(path)
    if trouble:
        return f"{trouble} (DuckDB said: {reason})"
    mixed = _mixed_line_breaks(path)
    if mixed:
        return f"{mixed} (DuckDB said: {reason})"
    if "sniffing" in str(exc):
        quoting = _quoting_trouble(path)
        if quoting:
            return f"{quoting} (DuckDB said: {reason})"
    if "sniffing" in str(exc):
        reason += ("; it needs a header line and one record per line, with fields holding the delimiter, "
                   'quotes or line breaks (CR or LF) enclosed in double quotes (RFC 4180)')
    return reason + " (read as UTF-8)"


def _check_true_rows(path: Path, fmt: str, rows_read: int, true_rows: int | None) -> None:
    """Refuse a file whose rows, as DuckDB read them, are not the rows counted independently (textscan)."""
    if true_rows is None or rows_read == true_rows:
        return
    what = {"csv": "records (non-empty lines outside quoted fields)", "json": "non-blank lines",
            "parquet": "rows in its Parquet metadata"}[fmt]
    raise InputError(
        f"{path}: the {fmt.upper()} reader read {rows_read:,} rows, but the file has {true_rows:,} {what}; "
        "nothing was ingested from it, so no row is lost without a trace. The file is damaged or not "
        + ("one JSON object per line" if fmt == "json" else "in the expected format")
        + " (please report it if it looks valid)"
    )


def _check_unchanged(path: Path, before: os.stat_result) -> None:
    """Refuse a file that was written to while it was read: its checksum would not match what was loaded."""
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise InputError(
            f"{path}: the file changed while it was being read ({before.st_size:,} -> {after.st_size:,} bytes); "
            "nothing was ingested from it. Ingest log files once they are complete (e.g. after rotation) "
            "and run the command again"
        )
