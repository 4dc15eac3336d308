"""Regression tests of issue 16: every row read is accounted for, every failure is a clear
``vdrift:`` message with its exit code, and no input makes a command hang.

One test (or a few) per defect of the issue, numbered as there; each reproduces the
defect as reported and failed before the fix.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit import Store
from toolkit.cli import main

from .conftest import ROOT

HEADER = "request_id,ts,model_version,prediction\n"


def _rows(n: int, start: int = 0) -> list[str]:
    return [f"r{i},2026-11-02T00:00:00Z,v1,ok" for i in range(start, start + n)]


def _csv(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _snapshot(db: Path) -> dict:
    with Store(db, read_only=True) as s:
        return s.counts()


# --------------------------------------------------------------------------- 1. rows lost with no trace
def test_01_unbalanced_quote_past_the_sniffer_sample_is_an_error_not_a_silent_loss(tmp_path, capsys):
    rows = _rows(30_000)
    rows[25_000] = 'r25000,2026-11-02T00:00:00Z,v1,"ok'
    f = _csv(tmp_path / "q.csv", rows)
    db = tmp_path / "t.duckdb"
    code, out, err = _cli(capsys, "ingest", "predictions", str(f), "--db", str(db))
    # before: exit 0, "25,001 rows read = 25,000 accepted + 1 quarantined" (4,999 rows gone)
    assert code == 2, (out, err)
    assert "line 25,002 opens a quoted field" in err and "4,999 line(s) after it" in err
    assert err.startswith("vdrift: error: ")
    assert _snapshot(db)["predictions"] == 0 and _snapshot(db)["ingest_log"] == 0


def test_01_rows_read_is_the_true_row_count_of_valid_quoted_files(tmp_path):
    rows = _rows(25_000) + ['x1,2026-11-02T00:00:00Z,v1,"two\nlines"', 'x2,2026-11-02T00:00:00Z,v1,"a ""b"""']
    rows += ["", "bad line", *_rows(4_000, 25_000), 'x3,2026-11-02T00:00:00Z,v1,5" screen']
    f = _csv(tmp_path / "ok.csv", rows)
    with Store(":memory:") as s:
        r = s.ingest("predictions", f).results[0]
    # 29,004 records: the blank line is not a record, the malformed one is (quarantined)
    assert (r.status, r.rows_read, r.accepted, r.quarantined) == ("ingested", 29_004, 29_003, 1), r.summary()


def test_01_a_reader_that_reads_fewer_rows_than_the_file_has_is_refused(tmp_path, monkeypatch):
    """The comparison itself: if DuckDB's count ever differs from the independent count, nothing is stored."""
    from toolkit.store import textscan

    f = _csv(tmp_path / "f.csv", _rows(10))
    real = textscan.count_csv
    monkeypatch.setattr(textscan, "count_csv", lambda p, d: textscan.CsvCount(real(p, d).records + 1, 12))
    with Store(":memory:") as s:
        r = s.ingest("predictions", f).results[0]
        assert r.status == "failed" and "read 10 rows, but the file has 11 records" in r.message
        assert s.counts()["predictions"] == 0


# --------------------------------------------------------------------------- 2. damaged compressed files
@pytest.fixture
def gz_bytes() -> bytes:
    text = HEADER + "".join(f"r{i},2026-11-02T00:00:00Z,v1,{i}\n" for i in range(100_000))
    return gzip.compress(text.encode())


@pytest.mark.parametrize("damage", ["truncated", "flipped-byte", "crc"])
def test_02_a_damaged_gzip_is_a_clear_error_and_the_store_is_unchanged(tmp_path, capsys, gz_bytes, damage):
    data = bytearray(gz_bytes)
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped-byte":
        data[len(data) // 2] ^= 0x01
    else:
        data[-6] ^= 0x01  # the stored CRC-32
    f = tmp_path / "p.csv.gz"
    f.write_bytes(bytes(data))
    db = tmp_path / "t.duckdb"
    code, out, err = _cli(capsys, "ingest", "predictions", str(f), "--db", str(db))
    # before: exit 0 with 49,840 rows (truncated), 100,002 rows or a hang (flipped byte), 100,000 (crc)
    assert code == 2, (out, err)
    assert "gzip archive is" in err and "nothing was ingested" in err
    assert _snapshot(db) == {"predictions": 0, "deployments": 0, "artifacts": 0, "quarantine": 0, "ingest_log": 0}


def test_02_a_damaged_jsonl_gz_is_refused_too(tmp_path):
    text = "".join(json.dumps({"request_id": f"j{i}", "ts": "2026-11-03T10:00:00Z", "model_version": "v2",
                               "prediction": "p1"}) + "\n" for i in range(5_000))
    f = tmp_path / "p.jsonl.gz"
    f.write_bytes(gzip.compress(text.encode())[:-100])
    with Store(":memory:") as s:
        r = s.ingest("predictions", f).results[0]
        assert r.status == "failed" and "gzip archive is truncated" in r.message


# --------------------------------------------------------------------------- 7. misleading errors near the top
def test_07_early_unbalanced_quote_names_the_line(tmp_path):
    rows = _rows(100)
    rows[2] = 'r2,2026-11-02T00:00:00Z,v1,"ok'
    with Store(":memory:") as s:
        r = s.ingest("predictions", _csv(tmp_path / "e.csv", rows)).results[0]
    # before: "required predictions column 'request_id' is missing (the file has: request_id,ts,...)"
    assert r.status == "failed" and "line 4 opens a quoted field" in r.message
    assert "is missing" not in r.message


@pytest.mark.parametrize("where", [0, 2, 50])
def test_07_an_over_long_line_names_its_line_and_the_limit(tmp_path, where):
    rows = _rows(100)
    rows[where] = f'r{where},2026-11-02T00:00:00Z,v1,"{"x" * 3_000_000}"'
    with Store(":memory:") as s:
        r = s.ingest("predictions", _csv(tmp_path / "l.csv", rows)).results[0]
    # before: "CSV Error on Line: 1" or "request_id is missing"
    assert r.status == "failed" and f"line {where + 2:,} is 2.9 MiB long" in r.message, r.message
    assert "at most 2 MiB" in r.message and "UTF-8" in r.message


def test_07_utf16_file_is_named_as_such(tmp_path):
    f = tmp_path / "u.csv"
    f.write_text(HEADER + "\n".join(_rows(10)) + "\n", encoding="utf-16")
    with Store(":memory:") as s:
        r = s.ingest("predictions", f).results[0]
    assert r.status == "failed" and "UTF-16" in r.message and "iconv" in r.message
