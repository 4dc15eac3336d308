"""Regression tests of issue 16: every row read is accounted for, every failure is a clear
``vdrift:`` message with its exit code, and no input makes a command hang.

One test (or a few) per defect of the issue, numbered as there; each reproduces the
defect as reported and failed before the fix.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit import Store
from toolkit.cli import main
from toolkit.engine.keys import request_key_sql

from .conftest import ROOT
from tests import reasons as R

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


@pytest.mark.parametrize("name", ["p.csv.gz", "p.jsonl.gz"])
def test_02_zero_padding_after_a_gzip_archive_is_named(tmp_path, capsys, name):
    """Found by tests/test_fuzz.py: gzip and Python skip zero bytes after an archive, DuckDB's reader refuses
    them with "Input is not a GZIP stream (read as UTF-8)", which blamed the encoding."""
    if name.endswith(".csv.gz"):
        text = HEADER + "".join(f"r{i},2026-11-02T00:00:00Z,v1,ok\n" for i in range(50))
    else:
        text = "".join(json.dumps({"request_id": f"j{i}", "ts": "2026-11-03T10:00:00Z", "model_version": "v2",
                                   "prediction": "p1"}) + "\n" for i in range(50))
    f = tmp_path / name
    f.write_bytes(gzip.compress(text.encode(), mtime=0) + b"\x00" * 512)
    assert gzip.decompress(f.read_bytes()) == text.encode()  # the archive itself checks out
    db = tmp_path / "t.duckdb"
    code, out, err = _cli(capsys, "ingest", "predictions", str(f), "--db", str(db))
    assert code == 2 and err.startswith("vdrift: error: ") and "followed by zero bytes" in err, err
    assert "UTF-8" not in err and "gzip -dc FILE | gzip > FIXED.gz" in err
    assert _snapshot(db)["predictions"] == 0


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


def test_07_text_after_a_closing_quote_in_the_sniffed_rows_names_the_line(tmp_path):
    """Found by tests/test_fuzz.py: '"o"k' among DuckDB's sampled rows said only "Error when sniffing file"."""
    rows = _rows(100)
    rows[3] = 'r3,2026-11-02T00:00:00Z,v1,"o"k'
    with Store(":memory:") as s:
        r = s.ingest("predictions", _csv(tmp_path / "e.csv", rows)).results[0]
        assert r.status == "failed" and "line 5 has text after the closing quote of a quoted field" in r.message
        # past the sampled rows the same line is one quarantined row (DuckDB: "unquoted value")
        rows = _rows(25_000)
        rows[22_000] = 'r22000,2026-11-02T00:00:00Z,v1,"o"k'
        r = s.ingest("predictions", _csv(tmp_path / "l.csv", rows)).results[0]
        assert (r.status, r.rows_read, r.quarantined) == ("ingested", 25_000, 1), r.summary()
        assert dict(r.reasons) == {"malformed CSV line: unquoted value: …": 1}


@pytest.mark.parametrize("case", ["nul-in-header", "header-not-utf8", "blank-jsonl", "damaged-parquet"])
def test_07_damage_near_the_top_is_named(tmp_path, capsys, case):
    """Found by tests/test_fuzz.py; before: "invalid column name 'reg\\x00ion'" (no file, nothing to fix),
    "required predictions column 'request_id' is missing (the file has: column0 column1 ...)" or (the file has:
    a, 2026-11-02T00:00:00Z, ...: DuckDB skipped the header and took the first row for it), "... (the file has:
    json)" for a file of blank lines, and Thrift's bare "TProtocolException: Invalid data" for a damaged Parquet."""
    if case == "nul-in-header":
        f, says = tmp_path / "n.csv", "column 5 is named 'reg\\x00ion', which holds a NUL byte"
        f.write_bytes(b"request_id,ts,model_version,prediction,reg\x00ion\na,2026-11-02T00:00:00Z,v1,ok,eu\n")
    elif case == "header-not-utf8":
        f, says = tmp_path / "u.csv", "the header line is not valid UTF-8 (byte 32 of the line"
        f.write_bytes(b"request_id,ts,model_version,pre\xe2\x82diction\na,2026-11-02T00:00:00Z,v1,ok\n")
    elif case == "blank-jsonl":
        f, says = tmp_path / "b.jsonl", "the file holds only blank lines, no JSON object"
        f.write_bytes(b"\n  \n\n")
    else:
        import polars as pl

        f, says = tmp_path / "d.parquet", "the file is damaged or not Parquet"
        pl.DataFrame({"request_id": ["a", "b"], "ts": ["2026-11-02", "2026-11-02"], "model_version": ["v1", "v1"],
                      "prediction": ["ok", "ok"]}).write_parquet(f)
        data = f.read_bytes()
        f.write_bytes(data[:-40] + data[-20:])  # a hole in the footer
    db = tmp_path / "t.duckdb"
    code, out, err = _cli(capsys, "ingest", "predictions", str(f), "--db", str(db))
    assert code == 2 and err.startswith(f"vdrift: error: {f}: ") and says in err, err
    assert "column0" not in err and "(the file has: " not in err
    assert _snapshot(db)["ingest_log"] == 0


def test_07_utf16_file_is_named_as_such(tmp_path):
    f = tmp_path / "u.csv"
    f.write_text(HEADER + "\n".join(_rows(10)) + "\n", encoding="utf-16")
    with Store(":memory:") as s:
        r = s.ingest("predictions", f).results[0]
    assert r.status == "failed" and "UTF-16" in r.message and "iconv" in r.message


# --------------------------------------------------------------------------- 3. values analyses cannot read
def test_03_out_of_range_times_are_quarantined_with_a_reason(tmp_path):
    f = _csv(tmp_path / "t.csv", ["a,2026-11-02T00:00:00Z,v1,ok", "b,0001-01-01T00:00:00Z,v1,ok",
                                  "c,9999-12-31T00:00:00,v1,ok", "d,1899-12-31T23:59:59Z,v1,ok"])
    dep = tmp_path / "d.jsonl"
    dep.write_text(json.dumps({"ts": "2026-11-01T00:00:00Z", "component": "serving", "scope": "all",
                               "event": "rollout_start", "version": "v1", "traffic_pct": 10,
                               "expected_end": "294247-01-01T00:00:00"}) + "\n")
    with Store(tmp_path / "s.duckdb") as s:
        r = s.ingest("predictions", f).results[0]
        assert (r.rows_read, r.accepted, r.quarantined) == (4, 1, 3)
        assert dict(r.reasons) == {R.TS_RANGE: 3}
        d = s.ingest("deployments", dep).results[0]
        assert (d.accepted, d.quarantined) == (0, 1)
        assert dict(d.reasons) == {"expected_end … outside the plausible range 1900-01-01..2200-01-01 UTC": 1}


def test_03_year_zero_in_one_file_does_not_abort_a_multi_file_ingest(tmp_path):
    import polars as pl

    for name, ts in (("a", dt.datetime(2026, 11, 2)), ("b", "0000-01-01"), ("c", "0000-01-01")):
        pl.DataFrame({"request_id": [name], "ts": [ts], "model_version": ["v1"],
                      "prediction": ["x"]}).write_parquet(tmp_path / f"{name}.parquet")
    _csv(tmp_path / "z.csv", ["z,0000-01-01,v1,ok"])
    files = [tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet", tmp_path / "z.csv"]
    with Store(":memory:") as s:
        rep = s.ingest("predictions", files)  # before: TypeError in _search_span, nothing after it loaded
    assert [r.status for r in rep.results] == ["ingested"] * 4
    assert (rep.rows_read, rep.accepted, rep.quarantined) == (4, 1, 3)


def test_03_the_audit_does_not_crash_on_extreme_values_already_in_a_store(tmp_path, capsys):
    """A store written before ingest checked the range: the audit skips what it cannot compute with."""
    db = tmp_path / "old.duckdb"
    with Store(db) as s:
        s.ingest("predictions", _csv(tmp_path / "ok.csv", ["a,2026-11-02T00:00:00Z,v1,ok"]))
        s.con.execute("INSERT INTO predictions (request_id, ts, model_version, prediction, ingest_id, request_key) "
                      f"SELECT *, {request_key_sql('r', 'duckdb')} FROM (VALUES "
                      "('b', '0001-01-01', 'v1', 'ok', 1), ('c', '9999-12-31', 'v1', 'ok', 1)) AS t(r, ts, v, p, i)")
        s.con.execute("INSERT INTO deployments (ts, component, scope, event, version, traffic_pct, expected_end, "
                      "ingest_id) VALUES ('2026-11-01', 'serving', 'all', 'rollout_start', 'v1', 10, "
                      "'294247-01-01', 1), ('0001-01-01', 'serving', 'all', 'deploy', 'v0', NULL, NULL, 1)")
    code, out, err = _cli(capsys, "audit", "--db", str(db))
    # before: OverflowError (year 1 / 9999) or a pyo3 PanicException (year 294247), exit 1
    assert code == 0, err
    assert "requests: 1" in out and "Traceback" not in err
    code, out, err = _cli(capsys, "audit", "--db", str(db), "--from", "0001-01-01")
    assert code == 2 and "outside the range vdrift works in" in err


# --------------------------------------------------------------------------- 4. terminal control characters
HOSTILE = "\x1b[2J\x1b]0;owned\x07\u202egnp.exe\u2066"
RAW = ("\x1b", "\x07", "\u202e", "\u2066")


def _clean(text: str) -> bool:
    return not any(ch in text for ch in RAW)


def test_04_control_characters_from_logs_never_reach_the_terminal(tmp_path, capsys):
    col = f"amount{HOSTILE}"
    f = tmp_path / "h.csv"
    f.write_text(f'request_id,ts,model_version,prediction,region,"{col}"\n'
                 f'a,2026-11-02T00:00:00Z,"v1{HOSTILE}",ok,"eu{HOSTILE}",1\n'
                 f'b,not a time{HOSTILE},v1,ok,eu,2\n')
    db = str(tmp_path / "h.duckdb")
    outputs = [_cli(capsys, "ingest", "predictions", str(f), "--db", db)]
    outputs.append(_cli(capsys, "status", "--db", db))
    outputs.append(_cli(capsys, "quarantine", "--db", db))
    outputs.append(_cli(capsys, "audit", "--db", db))
    outputs.append(_cli(capsys, "audit", "--db", db, "--json"))
    # the main() error path: a message that quotes a hostile value
    outputs.append(_cli(capsys, "audit", "--db", db, "--from", f"2026{HOSTILE}"))
    mapping = tmp_path / "m.toml"
    mapping.write_text(f'[columns]\nmodel_version = "{HOSTILE}"\n'.replace("\x1b", "\\u001b").replace("\x07", "\\u0007"))
    outputs.append(_cli(capsys, "ingest", "predictions", str(f), "--db", db, "--mapping", str(mapping), "--force"))
    for _code, out, err in outputs:
        assert _clean(out) and _clean(err), (out, err)
    assert "v1\\x1b[2J" in outputs[3][1]  # the version is shown, escaped
    assert outputs[5][0] == 2 and "\\x1b[2J" in outputs[5][2]
    audit_json = json.loads(outputs[4][1])  # still valid JSON, and it reads back as the logged value
    assert f"eu{HOSTILE}" in _strings(audit_json)


def _strings(x) -> list[str]:
    """Every string of a JSON document, keys included."""
    if isinstance(x, dict):
        return [*x, *(s for v in x.values() for s in _strings(v))]
    if isinstance(x, list):
        return [s for v in x for s in _strings(v)]
    return [x] if isinstance(x, str) else []


def test_04_one_escaping_function():
    from toolkit.errors import safe_text

    assert safe_text("a\x1bb\u202ec\n\td") == "a\\x1bb\\u202ec\n\td"
    assert json.loads(safe_text(json.dumps("a\x1b\x7f\u202e\U000e0041", ensure_ascii=False), json=True)) \
        == "a\x1b\x7f\u202e\U000e0041"


def _attribution_csv(path: Path, version: str, regions: tuple[str, str]) -> Path:
    """Two weeks of a rate metric: ``version`` takes 70% of the second week's traffic and approves less."""
    import random

    rnd = random.Random(16)
    rows = []
    for i in range(2_000):
        day = 2 + i % 14
        v = version if day >= 9 and rnd.random() < 0.7 else "v1"
        p = "approved" if rnd.random() < (0.3 if v != "v1" else 0.6) else "declined"
        rows.append(f'r{i},2026-11-{day:02d}T10:00:00Z,"{v}",{p},"{regions[i % 2]}",{rnd.random():.3f}')
    path.write_text(HEADER.rstrip("\n") + ",region,amount\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def hostile_attribution_store(tmp_path_factory) -> Path:
    """A store whose second version and first region carry ESC, BEL and U+202E."""
    d = tmp_path_factory.mktemp("hostile_attr")
    db = d / "h.duckdb"
    with Store(db) as s:
        r = s.ingest("predictions", _attribution_csv(d / "p.csv", f"v2{HOSTILE}", (f"eu{HOSTILE}", "us")))
        assert r.accepted == 2_000, r.summary()
    return db


ATTR = ("--metric", "rate:prediction=approved", "--baseline", "2026-11-02..2026-11-09",
        "--comparison", "2026-11-09..2026-11-16", "--bootstrap", "5")


def test_04_vdrift_attribute_escapes_versions_and_regions(hostile_attribution_store, capsys):
    db = str(hostile_attribution_store)
    code, out, err = _cli(capsys, "attribute", "--db", db, *ATTR)
    # before: the diagnostics named the version and the region raw ("v2" ESC [2J ... U+202E)
    assert code == 0, err
    assert _clean(out) and _clean(err), out
    assert "v2\\x1b[2J\\x1b]0;owned\\x07\\u202egnp.exe\\u2066" in out  # shown, escaped
    assert "eu\\x1b[2J" in out
    code, out, err = _cli(capsys, "attribute", "--db", db, *ATTR, "--json")
    assert code == 0 and _clean(out) and _clean(err)
    text = "\n".join(_strings(json.loads(out)))  # valid JSON that reads back as the logged values
    assert f"v2{HOSTILE}" in text and f"eu{HOSTILE}" in text
    # a hostile --where value quoted back in an error message (main()'s error path)
    code, out, err = _cli(capsys, "attribute", "--db", db, *ATTR, "--where", f"{HOSTILE}=x")
    assert code == 2 and err.startswith("vdrift: error: ") and _clean(err), err


def test_04_progress_lines_escape_file_names(tmp_path, capsys):
    f = _csv(tmp_path / f"p{HOSTILE}.csv", _rows(3))
    code, out, err = _cli(capsys, "ingest", "predictions", str(f), "--db", str(tmp_path / "s.duckdb"), "--progress")
    # before: the progress lines printed the file name raw
    assert code == 0 and "p\\x1b[2J" in err, err
    assert _clean(out) and _clean(err), err


# --------------------------------------------------------------------------- 5. corruption vs locks vs bugs
@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("corrupt") / "demo.duckdb"
    with Store(db) as s:
        s.ingest("predictions", ROOT / "data" / "samples" / "demo" / "predictions.csv.gz")
    return db


def _corrupt_copy(src: Path, dst: Path, offset: int) -> Path:
    data = bytearray(src.read_bytes())
    data[offset:offset + 16] = b"\x5a" * 16
    dst.write_bytes(bytes(data))
    return dst


def _blocks_in_use(db: Path) -> list[int]:
    with Store(db, read_only=True) as s:
        return [int(r[0]) for r in s.con.execute(
            "SELECT DISTINCT block_id FROM pragma_storage_info('predictions') WHERE block_id >= 0 ORDER BY 1"
        ).fetchall()]


def test_05_a_corrupt_header_block_is_not_reported_as_in_use(tmp_path, capsys, demo_store):
    bad = _corrupt_copy(demo_store, tmp_path / "c.duckdb", 12288 + 1000)  # the first block (the catalogue)
    for cmd in (["status"], ["audit"], ["ingest", "predictions", str(ROOT / "data/samples/demo/artifacts.csv")]):
        code, out, err = _cli(capsys, *cmd, "--db", str(bad))
        # before: "store ... is in use by another process" (the lock check matched "block")
        assert code == 3, (cmd, err)
        assert "is corrupt" in err and "in use by another process" not in err and "Traceback" not in err


def test_05_a_corrupt_data_block_is_a_store_error_not_a_traceback_or_the_input_files_fault(tmp_path, capsys,
                                                                                          demo_store):
    block = _blocks_in_use(demo_store)[-1]
    bad = _corrupt_copy(demo_store, tmp_path / "d.duckdb", 12288 + 262144 * block + 1000)
    code, out, err = _cli(capsys, "audit", "--db", str(bad))
    # before: "vdrift: internal error: IOException: ... Corrupt database file" with a traceback, exit 1
    assert code == 3 and err.startswith("vdrift: error: ") and "is corrupt" in err and "Traceback" not in err
    one = _csv(tmp_path / "one.csv", ["zz,2026-11-09T00:00:00Z,v1,ok"])
    # a file whose rows collide (by time) with the damaged block: ingest reads it to look for duplicates
    code, out, err = _cli(capsys, "ingest", "predictions", str(one), "--db", str(bad))
    assert "if the file looks valid" not in err  # before: the input file was blamed
    assert code in (0, 3), err
    if code == 3:
        assert "is corrupt" in err and "no input file is to blame" in err


def test_05_a_lock_is_still_reported_as_in_use(tmp_path):
    from toolkit.errors import from_duckdb, is_corruption, is_lock_error

    lock = ('IO Error: Could not set lock on file "x.duckdb": Conflicting lock is held in python (PID 1) by user a.')
    corrupt = "IO Error: Corrupt database file: computed checksum 1 does not match stored checksum 2 in block at 4096"
    assert is_lock_error(lock) and not is_lock_error(corrupt)
    assert is_corruption(corrupt) and not is_corruption(lock)
    assert from_duckdb(RuntimeError("Binder Error: column x not found")) is None  # a bug stays a bug (exit 1)


# --------------------------------------------------------------------------- 6. wide files
def _wide(path: Path, n: int, rows: int = 3) -> Path:
    head = "request_id,ts,model_version,prediction," + ",".join(f"c{i}" for i in range(n))
    body = [f"r{j},2026-11-02T00:00:00Z,v1,ok," + ",".join(str(i) if i % 3 else "x" for i in range(n))
            for j in range(rows)]
    path.write_text(head + "\n" + "\n".join(body) + "\n")
    return path


class _Recorder:
    """Forwards to a DuckDB connection and keeps the text of every statement."""

    def __init__(self, con):
        self._con, self.sql = con, []

    def execute(self, sql, *args, **kwargs):
        self.sql.append(str(sql))
        return self._con.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


def test_06_type_inference_is_linear_in_the_column_count(tmp_path):
    """Counted in SQL, not seconds: no statement holds an aggregate per column (2,000 took 85 s before)."""
    from toolkit.store import ingest as ingest_mod

    with Store(":memory:") as s:
        rec = _Recorder(s.con)
        s.con = rec
        r = s.ingest("predictions", _wide(tmp_path / "w.csv", 450)).results[0]
        s.con = rec._con
        assert r.status == "ingested" and len(r.new_covariates) == 450
        types = dict(s.covariates().iter_rows())
        assert types["c0"] == "VARCHAR" and types["c1"] == "DOUBLE" and len(types) == 450
    assert max(sql.count("TRY_CAST(v AS DOUBLE)") for sql in rec.sql) == 1  # one UNPIVOT scan
    assert ingest_mod.MAX_COVARIATES == 500


def test_06_too_many_covariates_is_a_clear_error_and_a_mapping_keeps_some(tmp_path, capsys):
    f = _wide(tmp_path / "w.csv", 10_000)
    db = tmp_path / "w.duckdb"
    code, out, err = _cli(capsys, "ingest", "predictions", str(f), "--db", str(db))
    # before: did not finish in 300 s
    assert code == 2 and "brings 10,000 new covariate column(s)" in err and "covariates = [" in err
    m = tmp_path / "m.toml"
    m.write_text('covariates = ["c1", "c2", "c9999"]\n')
    code, out, err = _cli(capsys, "ingest", "predictions", str(f), "--db", str(db), "--mapping", str(m))
    assert code == 0 and "new covariate columns: c1, c2, c9999" in out and "and 9,977 more" in out
    m.write_text("covariates = [" + ", ".join(f'"c{i}"' for i in range(501)) + "]\n")
    code, out, err = _cli(capsys, "ingest", "predictions", str(f), "--db", str(db), "--mapping", str(m), "--force")
    assert code == 2 and "the mapping declares 499 new covariate column(s) and the store has 3" in err


@pytest.mark.parametrize("bins", ["100000", "0", "2.5"])
def test_06_attribute_bins_are_checked_before_any_work(hostile_attribution_store, capsys, bins):
    try:
        code, out, err = _cli(capsys, "attribute", "--db", str(hostile_attribution_store), *ATTR, "--bins", bins)
    except SystemExit as exc:  # argparse refuses what is not a whole number itself
        (code, out, err) = (exc.code, *capsys.readouterr())
    # before: --bins 100000 ran for more than 120 s
    assert code == 2 and out == "", (out, err)
    assert ("bins must be between 1 and 20" in err) if bins != "2.5" else ("invalid int value: '2.5'" in err)


# --------------------------------------------------------------------------- 8. silent renaming and mangling
@pytest.mark.parametrize("fmt", ["csv", "csv-case", "jsonl", "parquet"])
def test_08_repeated_column_names_are_an_error(tmp_path, fmt):
    if fmt == "csv":
        f = tmp_path / "d.csv"
        f.write_text("request_id,ts,model_version,prediction,amount,amount\na,2026-11-02T00:00:00Z,v1,ok,1,2\n")
    elif fmt == "csv-case":
        f = tmp_path / "d.csv"
        f.write_text("request_id,ts,model_version,prediction,Score,score\na,2026-11-02T00:00:00Z,v1,ok,0.1,0.9\n")
    elif fmt == "jsonl":
        f = tmp_path / "d.jsonl"
        f.write_text('{"request_id":"a","ts":"2026-11-02T00:00:00Z","model_version":"v1","prediction":"ok",'
                     '"Score":0.1,"score":0.9}\n')
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        f = tmp_path / "d.parquet"
        pq.write_table(pa.table([pa.array(["a"]), pa.array([dt.datetime(2026, 11, 2)]), pa.array(["v1"]),
                                 pa.array(["ok"]), pa.array([1]), pa.array([2])],
                                names=["request_id", "ts", "model_version", "prediction", "x", "X"]), f)
    with Store(":memory:") as s:
        r = s.ingest("predictions", f).results[0]
        # before: stored as amount + amount_1, or score taken from 'Score' silently
        assert r.status == "failed" and "column names repeat" in r.message, r.summary()
        assert s.counts()["predictions"] == 0


def test_08_impossible_utc_offsets_are_quarantined(tmp_path):
    f = _csv(tmp_path / "o.csv", ["a,2026-11-02T00:00:00-99:00,v1,ok", "b,2026-11-02T00:00:00+14:00,v1,ok",
                                  "c,2026-11-02T00:00:00+05:99,v1,ok", "d,2026-11-20,v1,ok",
                                  "e,2026-11-02T00:00:00-15,v1,ok", "f,2026-11-02T10:00:00+0530,v1,ok"])
    with Store(":memory:") as s:
        r = s.ingest("predictions", f).results[0]
        # before: -99:00 shifted the time by 99 hours and was accepted
        assert (r.rows_read, r.accepted, r.quarantined) == (6, 3, 3)
        bad = {row[0] for row in s.sql("SELECT raw->>'request_id' FROM quarantine").rows()}
        assert bad == {"a", "c", "e"}
        assert s.sql("SELECT ts FROM predictions WHERE request_id = 'f'").item() == dt.datetime(2026, 11, 2, 4, 30)


@pytest.mark.parametrize("value", [{"a": 1}, ["eu", "us"]])
def test_08_a_table_or_list_as_a_mapping_default_is_an_error(tmp_path, value):
    from toolkit import InputError

    f = _csv(tmp_path / "p.csv", _rows(2))
    with Store(":memory:") as s:
        with pytest.raises(InputError, match="give one varchar value"):
            s.ingest("predictions", f, mapping={"defaults": {"region": value}})  # before: stored as repr text
        assert s.counts()["predictions"] == 0


# --------------------------------------------------------------------------- 9. environment errors
def _two_day_store(tmp_path: Path) -> Path:
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        s.ingest("predictions", _csv(tmp_path / "p.csv", _rows(3) + [f"n{i},2026-11-03T00:00:00Z,v1,ok"
                                                                   for i in range(3)]))
    return db

def test_09_an_extreme_report_window_is_a_clear_error(tmp_path, capsys):
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        s.ingest("predictions", _csv(tmp_path / "p.csv", _rows(3)))
    code, out, err = _cli(capsys, "report", "incident", "--db", str(db), "--out-dir", str(tmp_path / "rep"),
                          "--param", "metric=rate:prediction=ok", "--param", "baseline=2026-11-02..2026-11-09",
                          "--param", "comparison=2026-11-09..9999-12-31", "--figures-only")
    # before: "OverflowError: date value out of range ... kept for debugging: /tmp/vdrift-report-.../report.ipynb"
    assert code == 2 and "outside the range vdrift works in" in err and "vdrift-report-" not in err


def test_09_an_unwritable_report_folder_is_a_clear_error(tmp_path, capsys):
    db = _two_day_store(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, out, err = _cli(capsys, "report", "incident", "--db", str(db), "--out-dir", str(blocker / "reports"),
                          "--param", "metric=rate:prediction=ok", "--param", "baseline=2026-11-02..2026-11-03",
                          "--param", "comparison=2026-11-03..2026-11-04")
    assert code == 2 and "cannot write the report into" in err and "Traceback" not in err, err


def test_09_a_read_only_report_folder_is_a_clear_error(tmp_path, monkeypatch):
    """As a read-only folder would (root ignores permission bits, so the refusal is simulated)."""
    import tempfile

    from toolkit import InputError
    from toolkit.report import pipeline

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(InputError, match="cannot write the report into .*Permission denied"):
        pipeline._private_dir(tmp_path, "2026-11-09-incident")


@pytest.mark.parametrize("limit, says", [("1MB", "too small"), ("500", "not a size with a unit")])
def test_09_memory_limits_that_cannot_work_are_named(tmp_path, capsys, limit, says):
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        s.ingest("predictions", _csv(tmp_path / "p.csv", _rows(3)))
    code, out, err = _cli(capsys, "audit", "--db", str(db), "--memory-limit", limit)
    # before: "internal error: OutOfMemoryException" (1MB) or "cannot open store ... Parser Error" (500)
    assert code == 2 and says in err and "cannot open store" not in err and "internal error" not in err


def test_09_out_of_memory_inside_a_command_names_the_memory_limit():
    from toolkit.errors import from_duckdb

    class OutOfMemoryException(Exception):
        pass

    err = from_duckdb(OutOfMemoryException("Out of Memory Error: could not allocate block of size 256.0 KiB"))
    assert err is not None and err.exit_code == 2 and "--memory-limit" in str(err) and "--temp-directory" in str(err)


def test_09_a_full_disk_is_named_and_blames_no_input_file():
    """Found with the full-disk test (tests/store/test_crash_safety.py): a failed write blamed the input file."""
    from toolkit.errors import StoreError, from_duckdb

    for says in ("No space left on device", "File too large", "Disk quota exceeded"):
        err = from_duckdb(RuntimeError(f'IO Error: Could not write file "s.duckdb": {says}'), "s.duckdb")
        assert isinstance(err, StoreError) and err.exit_code == 3, says
        assert str(err).startswith("no room to write store 's.duckdb'") and "no input file is to blame" in str(err)


def test_09_a_non_numeric_schema_version_is_a_store_error(tmp_path, capsys):
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        s.con.execute("UPDATE meta SET value = 'one' WHERE key = 'schema_version'")
    code, out, err = _cli(capsys, "status", "--db", str(db))
    # before: "internal error: ValueError: invalid literal for int()"
    assert code == 3 and "schema version 'one' is not a number" in err


# --------------------------------------------------------------------------- 10. concurrent reports
def test_10_a_second_run_of_the_same_report_folder_is_refused_while_the_first_runs(tmp_path, capsys):
    """The first run is stood in for by a process holding the run's lock: no timing involved."""
    db = _two_day_store(tmp_path)
    out_dir = tmp_path / "rep"
    out_dir.mkdir()
    code = ("import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('locked', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out_dir / ".2026-11-03-incident.lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code_, out, err = _cli(capsys, "report", "incident", "--db", str(db), "--out-dir", str(out_dir),
                               "--param", "metric=rate:prediction=ok", "--param", "baseline=2026-11-02..2026-11-03",
                               "--param", "comparison=2026-11-03..2026-11-04")
    finally:
        holder.communicate("", timeout=60)
    # before: both runs exited 0, printed the same path, and the first report was lost
    assert code_ == 3 and "another report run is writing" in err and "--param slug=" in err
    assert not (out_dir / "2026-11-03-incident").exists()


def test_10_reports_are_written_aside_and_renamed_into_place(tmp_path, monkeypatch):
    """A run that fails leaves the earlier report whole; the message names where its notebook is kept."""
    from toolkit import VdriftError
    from toolkit.report import pipeline

    run = tmp_path / "2026-11-03-incident"
    run.mkdir()
    (run / "report.html").write_text("earlier report")
    seen = {}

    def failing(template, output, parameters, *, timeout, cwd):
        seen["cwd"] = cwd
        assert Path(parameters["output_dir"]) == cwd != run and cwd.parent == tmp_path
        output.write_text("{}")
        raise VdriftError(f"the report notebook failed ...\nThe executed notebook is kept for debugging: {output}")

    monkeypatch.setattr(pipeline, "run_notebook", failing)
    db = _two_day_store(tmp_path)
    p = pipeline.validate("incident", {"store_path": str(db), "metric": "rate:prediction=ok",
                                       "baseline": "2026-11-02..2026-11-03", "comparison": "2026-11-03..2026-11-04"},
                          out_dir=tmp_path)
    monkeypatch.setattr(pipeline, "validate", lambda *a, **k: p)
    with pytest.raises(VdriftError) as info:
        pipeline.render("incident", {}, out_dir=tmp_path)
    assert (run / "report.html").read_text() == "earlier report"
    kept = tmp_path / "2026-11-03-incident.failed" / "report.ipynb"
    assert str(kept) in str(info.value) and kept.is_file() and str(seen["cwd"]) not in str(info.value)
    assert not any(p.name.startswith(".2026-11-03-incident.tmp-") for p in tmp_path.iterdir())


# --------------------------------------------------------------------------- 11. the Python API (store parts)
@pytest.mark.parametrize("path", [None, 123, b"x.duckdb", ""])
def test_11_store_path_must_be_a_file_name(tmp_path, monkeypatch, path):
    from toolkit import InputError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="store path must be a file name"):
        Store(path)
    assert list(tmp_path.iterdir()) == []  # before: files named None and 123


@pytest.mark.parametrize("kw, says", [
    ({"read_only": "no"}, "read_only must be True or False"),
    ({"threads": "4"}, "threads must be a positive integer"),
    ({"memory_limit": 4}, "memory_limit must be a size"),
])
def test_11_store_options_are_checked(kw, says):
    from toolkit import InputError

    with pytest.raises(InputError, match=says):
        Store(":memory:", **kw)


def test_11_ingest_arguments_are_checked(tmp_path):
    from toolkit import InputError

    f = _csv(tmp_path / "p.csv", _rows(2))
    with Store(":memory:") as s:
        s.ingest("predictions", f)
        with pytest.raises(InputError, match="force must be True or False, got 'no'"):
            s.ingest("predictions", f, force="no")  # before: 'no' is truthy, so it forced a re-ingest
        assert s.counts()["ingest_log"] == 1
        for kw, says in (({"kind": ["predictions"]}, "kind must be"), ({"paths": None}, "paths must be"),
                         ({"paths": [1]}, "paths must be"), ({"mapping": 5}, "mapping must be"),
                         ({"progress": "yes"}, "progress must be")):
            args = {"kind": "predictions", "paths": f, **kw}
            with pytest.raises(InputError, match=says):  # before: TypeError or a duckdb error
                s.ingest(args.pop("kind"), args.pop("paths"), **args)
        with pytest.raises(InputError, match="query must be SQL text"):
            s.sql(5)
        with pytest.raises(InputError, match="the query failed: Parser Error"):
            s.sql("SELEC 1")
        with pytest.raises(InputError, match="limit must be"):
            s.table("predictions", limit="3")


def test_11_attribute_arguments_are_checked_at_the_boundary(hostile_attribution_store):
    from toolkit import InputError, attribute

    db = str(hostile_attribution_store)
    win = ("rate:prediction=approved", "2026-11-02..2026-11-09", "2026-11-09..2026-11-16")
    for kw, says in (({"bins": 2.5}, "bins must be a whole number, got 2.5"),  # before: accepted
                     ({"bins": True}, "bins must be a whole number"),
                     ({"n_boot": "3"}, "n_boot must be a whole number"),
                     ({"n_boot": 100_001}, "n_boot must be between 0 and 100000"),
                     ({"covariates": 5}, "covariates must be a list of column names"),
                     ({"segments": "no"}, "segments must be True or False"),
                     ({"method": "best"}, "unknown method 'best'")):
        with pytest.raises(InputError, match=says):
            attribute(db, *win, **{"n_boot": 0, **kw})
    for store in (None, 123):
        with pytest.raises(InputError, match="store must be a toolkit.Store or a path"):
            attribute(store, *win)


def test_11_where_lists_keep_any_of_their_values(hostile_attribution_store):
    """``where={'region': ['eu', 'us']}`` silently matched nothing before; a list keeps any of its values."""
    from toolkit import attribute

    db = str(hostile_attribution_store)
    win = ("rate:prediction=approved", "2026-11-02..2026-11-09", "2026-11-09..2026-11-16")
    both = attribute(db, *win, n_boot=0, where={"region": [f"eu{HOSTILE}", "us"]})
    us = attribute(db, *win, n_boot=0, where={"region": "us"})
    eu = attribute(db, *win, n_boot=0, where={"region": [f"eu{HOSTILE}"]})
    assert sum(both.rows) == 2_000 and sum(us.rows) == 1_000 and sum(eu.rows) == 1_000
    assert (us.rows[0] + eu.rows[0], us.rows[1] + eu.rows[1]) == both.rows


def test_03_the_attribution_does_not_crash_on_extreme_values_already_in_a_store(tmp_path, capsys):
    """A store written before ingest checked the range: attribution over a normal window still works."""
    db = tmp_path / "old.duckdb"
    with Store(db) as s:
        s.ingest("predictions", _attribution_csv(tmp_path / "p.csv", "v2", ("eu", "us")))
        s.con.execute("INSERT INTO predictions (request_id, ts, model_version, prediction, ingest_id, request_key) "
                      f"SELECT *, {request_key_sql('r', 'duckdb')} FROM (VALUES "
                      "('b', '0001-01-01', 'v1', 'approved', 1), ('c', '9999-12-31', 'v1', 'approved', 1)) AS t(r, ts, v, p, i)")
        s.con.execute("INSERT INTO deployments (ts, component, scope, event, version, traffic_pct, expected_end, "
                      "ingest_id) VALUES ('2026-11-01', 'serving', 'all', 'rollout_start', 'v2', 10, "
                      "'294247-01-01', 1), ('0001-01-01', 'serving', 'all', 'deploy', 'v1', NULL, NULL, 1)")
    for extra in ((), ("--segments",)):
        code, out, err = _cli(capsys, "attribute", "--db", str(db), *ATTR, *extra)
        assert code == 0 and "Traceback" not in err, err
        assert "version_drift" in out
    code, out, err = _cli(capsys, "attribute", "--db", str(db), *ATTR[:2], "--baseline", "0001-01-01..2026-11-09",
                          "--comparison", "2026-11-09..9999-12-31")
    assert code == 2 and err.startswith("vdrift: error: ") and "outside the range vdrift works in" in err
