"""Independent checks of a text file before it is loaded: the gzip stream, the delimiter, the row count.

DuckDB's CSV and JSON readers decide what a row is. To make sure no row is
lost without a trace, ingest counts the rows of every CSV and JSON lines
file a second time, here, in one streaming pass that shares nothing with
DuckDB's parser, and compares the two counts before it commits:

* a **CSV record** is a non-empty line, where lines end at CR, LF or CRLF
  outside quoted fields; a field is quoted when it starts with ``"`` (at the
  start of a line or after the delimiter) and ends at the next ``"`` that is
  not doubled (RFC 4180). A ``"`` inside an unquoted field is an ordinary
  character. A quoted field that is still open at the end of the file is an
  error (it would swallow every line after it), reported with its line;
* a **JSON lines record** is a line holding anything but blanks; a file
  whose first character is ``[`` is one JSON array (DuckDB reads it whole
  or fails, so there is nothing to count);
* a ``.gz`` file is decompressed by Python's gzip module, which checks the
  CRC-32 and length of every member: a truncated or damaged archive is an
  error before DuckDB reads it.
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

from ..errors import InputError

CHUNK = 1 << 20
#: DuckDB's CSV reader refuses longer lines; passed to it explicitly so messages can name the limit
MAX_LINE_BYTES = 2_097_152
#: delimiters looked for in the header line, in order of preference on a tie
DELIMITERS = (",", "\t", ";", "|")

_BLANK_RUN = re.compile(rb"\n\n+")


def read_chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes, decompressed when it ends in ``.gz`` (CRC and length checked at the end)."""
    if path.name.lower().endswith(".gz"):
        try:
            with gzip.open(path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk
        except EOFError:
            raise InputError(
                f"{path}: the gzip archive is truncated (it ends before its end-of-stream marker); "
                "nothing was ingested from it. Copy the file again from its source"
            ) from None
        except (gzip.BadGzipFile, zlib.error) as exc:
            raise InputError(
                f"{path}: the gzip archive is damaged ({exc}); nothing was ingested from it. "
                "Copy the file again from its source (gzip -t checks an archive)"
            ) from None
        return
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The chunks with CRLF and CR turned into LF (a CR at a chunk's end waits for the next chunk)."""
    carry = b""
    for chunk in chunks:
        chunk = carry + chunk
        carry = b""
        if chunk.endswith(b"\r"):
            chunk, carry = chunk[:-1], b"\r"
        yield chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if carry:
        yield b"\n"


def _ended(seg: bytes, prev: int) -> int:
    """Line ends in ``seg`` that end a non-empty line (``prev`` is the byte before ``seg``)."""
    n = seg.count(b"\n")
    if not n:
        return 0
    s = bytes([prev]) + seg
    if b"\n\n" in s:
        n -= sum(len(m.group()) - 1 for m in _BLANK_RUN.finditer(s))
    return n


@dataclass(frozen=True)
class CsvCount:
    """Rows and lines of a CSV counted independently of the CSV parser."""

    records: int  # data records (header excluded)
    lines: int  # physical lines


def detect_delimiter(path: Path) -> str:
    """The delimiter of a CSV file: the candidate that occurs most often in its header line."""
    head = b""
    for chunk in _lines(read_chunks(path)):
        head += chunk
        stripped = head.lstrip(b"\n")
        if b"\n" in stripped or len(head) > MAX_LINE_BYTES:
            break
    first = head.lstrip(b"\n").split(b"\n", 1)[0]
    counts = {d: first.count(d.encode()) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first of equal counts
    return best if counts[best] else ","


def count_csv(path: Path, delimiter: str) -> CsvCount:
    """Count the records of a CSV file (see the module docstring); an unclosed quoted field is an error."""
    delim = delimiter.encode()[0]
    nl, quote = 0x0A, 0x22
    in_quote = False
    prev = nl  # the byte before the current position (a file starts at a line start)
    records = lines = 0
    open_line = 0  # line of the quote that opened the current quoted field
    quoted_records = 0  # lines ended inside that field, had it not been a quoted field
    carry = b""
    for chunk in _lines(read_chunks(path)):
        chunk = carry + chunk
        carry = b""
        if chunk.endswith(b'"'):  # whether it is doubled is known with the next byte
            chunk, carry = chunk[:-1], b'"'
        pos = 0
        size = len(chunk)
        while pos < size:
            j = chunk.find(b'"', pos)
            end = size if j < 0 else j
            seg = chunk[pos:end]
            if seg:
                lines += seg.count(b"\n")
                if in_quote:
                    quoted_records += _ended(seg, prev)
                else:
                    records += _ended(seg, prev)
                prev = seg[-1]
            if j < 0:
                break
            if in_quote:
                if j + 1 < size and chunk[j + 1] == quote:  # "" inside a quoted field
                    prev, pos = quote, j + 2
                    continue
                in_quote = False
            elif prev in (delim, nl):
                in_quote, open_line, quoted_records = True, lines + 1, 0
            prev, pos = quote, j + 1
    if carry:  # a final '"': closes a quoted field, or opens one that then stays open
        if not in_quote and prev in (delim, nl):
            in_quote, open_line, quoted_records = True, lines + 1, 0
        elif in_quote:
            in_quote = False
        prev = quote
    if in_quote:
        swallowed = max(quoted_records + (prev != nl) - 1, 0)
        raise InputError(
            f"{path}: line {open_line:,} opens a quoted field (\") that is never closed, so the CSV reader "
            f"would read the {swallowed:,} line(s) after it as part of one value; nothing was ingested "
            "from the file. Close the quote, or double it (\"\") if it belongs to the value (RFC 4180)"
        )
    if prev != nl:  # a last line without a line break
        records += 1
        lines += 1
    return CsvCount(records=max(records - 1, 0), lines=lines)


def count_json_lines(path: Path) -> int | None:
    """Non-blank lines of a JSON lines file; None for a file holding one JSON array."""
    count = 0
    first = True
    carry = b""
    for chunk in _lines(read_chunks(path)):
        if first:
            start = chunk.lstrip(b" \t\n\xef\xbb\xbf")
            if not start:
                continue
            first = False
            if start.startswith(b"["):
                for _ in read_chunks(path) if path.name.lower().endswith(".gz") else ():
                    pass  # still check the whole gzip stream
                return None
        chunk = carry + chunk
        cut = chunk.rfind(b"\n")
        if cut < 0:
            carry = chunk
            continue
        body, carry = chunk[: cut + 1], chunk[cut + 1:]
        count += sum(1 for line in body.split(b"\n")[:-1] if line.strip())
    if carry.strip():
        count += 1
    return count


def check_encoding(path: Path) -> None:
    """Refuse a UTF-16 or UTF-32 text file (byte-order mark, or NUL bytes in a quarter of its start)."""
    head = b""
    for chunk in read_chunks(path):
        head = chunk[:4096]
        break
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (head and head.count(b"\x00") > len(head) // 4):
        raise InputError(
            f"{path}: the file looks UTF-16 or UTF-32 encoded (a byte-order mark or NUL bytes at its start), "
            "but vdrift reads UTF-8 text; nothing was ingested from it. Convert it first, e.g. "
            "iconv -f UTF-16 -t UTF-8 FILE > FILE-utf8.csv"
        )


def describe_trouble(path: Path) -> str:
    """A short diagnosis of why a CSV file may not parse: an over-long line (for messages), or ''."""
    line, longest, longest_line, current = 1, 0, 1, 0
    for chunk in _lines(read_chunks(path)):
        parts = chunk.split(b"\n")
        for k, part in enumerate(parts):
            current += len(part)
            if k < len(parts) - 1:
                if current > longest:
                    longest, longest_line = current, line
                current = 0
                line += 1
    if current > longest:
        longest, longest_line = current, line
    if longest > MAX_LINE_BYTES:
        return (f"line {longest_line:,} is {longest / 2**20:,.1f} MiB long (read as UTF-8); the CSV reader accepts "
                f"lines (records, including quoted fields) of at most {MAX_LINE_BYTES / 2**20:.0f} MiB")
    return ""
