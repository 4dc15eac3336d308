"""Hardening of ingestion (issue 7, items 1 and 6).

Property-based tests (hypothesis) feed generated, often malformed CSV,
Parquet and JSON lines files to ``Store.ingest`` and check the invariants the
store promises:

* ``rows read = accepted + quarantined`` for every ingested file, and
  ``rows read`` equals an independent count of the records written when the
  file is well formed (Python's csv module / json / polars wrote it);
* a file that fails leaves every table, the ingest log and the list of
  predictions columns exactly as they were;
* the store stays self-consistent (every row belongs to a logged ingest, the
  log's counts match the tables, covariates match the columns);
* values of accepted rows round-trip exactly.

The edge-case tests at the end document, with hand-computed expectations,
what happens with out-of-order timestamps, daylight-saving transitions,
versions missing from the registry, all-null covariates and files whose rows
are all quarantined.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit import Store
from toolkit.store.schema import BOOKKEEPING, CONTRACT

from tests.conftest import ROOT, write
from tests import reasons as R

#: examples per property; raise it for a deeper search, e.g. VDRIFT_HYPOTHESIS_EXAMPLES=500
EXAMPLES = int(os.environ.get("VDRIFT_HYPOTHESIS_EXAMPLES", "20"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TABLES = ("predictions", "deployments", "artifacts", "quarantine", "ingest_log", "covariates", "meta")
BASE_CSV = "request_id,ts,model_version,prediction,score\nbase-1,2026-11-01 09:00:00,v0,approved,0.5\n"


# --------------------------------------------------------------------------- store checks
def snapshot(store: Store) -> dict:
    """Every table's rows (as reprs, so NaN compares equal), the predictions columns and the views."""
    out: dict = {}
    for t in TABLES:
        rows = store.con.execute(f'SELECT * FROM "{t}"').fetchall()
        out[t] = sorted(repr(r) for r in rows)
    out["_predictions_columns"] = list(store.columns("predictions").items())
    out["_views"] = store.con.execute(
        "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1"
    ).fetchall()
    return out


def check_store_consistent(store: Store) -> None:
    """The store's bookkeeping agrees with its tables (used after every ingest and every crash)."""
    con = store.con
    log = {r[0]: r for r in con.execute(
        "SELECT ingest_id, kind, rows_read, accepted, quarantined, superseded_by FROM ingest_log"
    ).fetchall()}
    for table in ("predictions", "deployments", "artifacts", "quarantine"):
        orphans = con.execute(
            f'SELECT count(*) FROM "{table}" WHERE ingest_id NOT IN (SELECT ingest_id FROM ingest_log)'
        ).fetchone()[0]
        assert orphans == 0, f"{orphans} row(s) in {table} without an ingest_log entry"
    for ingest_id, kind, rows_read, accepted, quarantined, superseded_by in log.values():
        stored = con.execute(f'SELECT count(*) FROM "{kind}" WHERE ingest_id = ?', [ingest_id]).fetchone()[0]
        held = con.execute("SELECT count(*) FROM quarantine WHERE ingest_id = ?", [ingest_id]).fetchone()[0]
        assert rows_read == accepted + quarantined
        if superseded_by is None:
            assert (stored, held) == (accepted, quarantined), f"ingest {ingest_id}: log and tables disagree"
        else:
            assert (stored, held) == (0, 0), f"superseded ingest {ingest_id} still has rows"
    contract = set(CONTRACT["predictions"]) | set(BOOKKEEPING)
    extra_cols = set(store.columns("predictions")) - contract
    covs = {r[0]: r[1] for r in con.execute("SELECT name, first_ingest_id FROM covariates").fetchall()}
    assert set(covs) == extra_cols, "covariates table and predictions columns disagree"
    assert all(first in log for first in covs.values())
    n = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    assert con.execute("SELECT count(*) FROM predictions_resolved").fetchone()[0] == n


def base_store(directory: Path) -> Store:
    """A store holding one small clean ingest, so that 'unchanged' is not trivially 'empty'."""
    store = Store(":memory:")
    report = store.ingest("predictions", write(directory / "base.csv", BASE_CSV))
    assert report.accepted == 1
    return store


def ingest_and_check(store: Store, kind: str, path: Path, mapping=None):
    """Ingest one file and check the invariants; return the file's result."""
    before = snapshot(store)
    report = store.ingest(kind, path, mapping=mapping)
    (result,) = report.results
    if result.status == "failed":
        assert result.message and str(path.name) in result.message
        assert snapshot(store) == before, "a failed file changed the store"
    else:
        assert result.status == "ingested", result.summary()
        assert result.rows_read == result.accepted + result.quarantined
        log = store.con.execute(
            "SELECT rows_read, accepted, quarantined FROM ingest_log WHERE ingest_id = ?", [result.ingest_id]
        ).fetchone()
        assert log == (result.rows_read, result.accepted, result.quarantined)
    check_store_consistent(store)
    return result


# --------------------------------------------------------------------------- strategies
SPECIAL = [
    "\x00", "a\x00b", "\u202eevil\u202c", "\u05e9\u05dc\u05d5\u05dd", "😀", "👩‍👩‍👧", "e\u0301", '"', "'", '""',
    ",", ";", "\t", "\n", "\r\n", "\\", '\\"', "NULL", "null", "N/A", "-", "\ufeff", "\u2028", "\u200b",
    "'; DROP TABLE predictions; --", '"); DROP TABLE predictions; --', "/* */", "$1", "?",
]
odd_text = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=12),  # any code point UTF-8 can hold (no lone surrogates)
    st.sampled_from(SPECIAL),
    st.builds(lambda a, b: a + b, st.sampled_from(SPECIAL), st.text(max_size=4)),
)
huge_text = st.integers(100_000, 300_000).map(lambda n: "h" * n)
cell_text = st.one_of(odd_text, odd_text, odd_text, huge_text)


def clean_label(s: str) -> str:
    """A non-empty text without surrounding whitespace: contract text columns are trimmed."""
    s = s.strip().replace("\x00", "")
    return s or "x"


def column_names(draw, k: int) -> list[str]:
    """k distinct covariate names (case-insensitively), none a contract or reserved name."""
    reserved = {c.lower() for c in CONTRACT["predictions"]} | {
        "ingest_id", "resolved_version", "version_status", "expected_feature_version", "_row", "_reason"}
    names: list[str] = []
    seen = set(reserved)
    for i in range(k):
        raw = draw(st.one_of(
            st.text(st.characters(codec="utf-8", exclude_characters="\x00\r\n"), min_size=1, max_size=10),
            st.sampled_from(['"; DROP TABLE predictions; --', "a'b", 'x"y', "; --", "col umn", "Ünïcødé", "😀",
                             "_raw_ts", "_raw_cov_1", "SELECT", "order", "\u202ertl"]),
        ))
        name = raw.strip() or f"c{i}"
        if name.lower() in seen or name[:1].isdigit():
            name = f"c{i}_{len(seen)}"
        seen.add(name.lower())
        names.append(name)
    return names


@st.composite
def csv_files(draw):
    """A CSV file as bytes, the number of records written, and what each accepted row must hold."""
    n_rows = draw(st.integers(0, 12))
    covariates = column_names(draw, draw(st.integers(0, 3)))
    has_score = draw(st.booleans())
    header = ["request_id", "ts", "model_version", "prediction"] + (["score"] if has_score else []) + covariates
    drop = draw(st.sampled_from([None, None, None, "model_version", "ts"]))  # a required column missing
    rows, expected = [], []
    seen_ids: set[str] = set()
    for i in range(n_rows):
        rid = clean_label(draw(st.sampled_from(["r1", "r2", "r3"]) | odd_text))
        ts_ok = draw(st.integers(0, 9)) > 0
        ts = f"2026-11-{1 + i % 28:02d} {i % 24:02d}:00:00" if ts_ok else draw(st.sampled_from(["soon", "2026-13-01", ""]))
        version = clean_label(draw(odd_text))
        pred = clean_label(draw(odd_text))
        score_ok = True
        row = [rid, ts, version, pred]
        if has_score:
            score = draw(st.sampled_from(["0.25", "", "1e-3", "high", "nan", "inf"]))
            score_ok = score not in ("high", "nan", "inf")
            row.append(score)
        covs = [draw(cell_text) if i else "x" + draw(odd_text) for _ in covariates]  # first row: text, so VARCHAR
        row += covs
        rows.append(row)
        if ts_ok and score_ok and rid not in seen_ids:
            seen_ids.add(rid)
            expected.append((rid, version, pred, [c if c != "" else None for c in covs]))
    if drop:
        idx = header.index(drop)
        header = header[:idx] + header[idx + 1:]
        rows = [r[:idx] + r[idx + 1:] for r in rows]
    buf = io.StringIO(newline="")
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    if terminator == "\n" and any("\r" in cell for row in rows for cell in row):
        quoting = csv.QUOTE_ALL  # Python leaves a lone CR unquoted when lines end in LF: not RFC 4180
    writer = csv.writer(buf, quoting=quoting, lineterminator=terminator)
    writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue().encode("utf-8")
    return data, len(rows), (None if drop else expected), covariates


def corrupt(draw, data: bytes) -> bytes:
    """Truncate, splice random bytes into, or break the quoting of a file."""
    how = draw(st.sampled_from(["truncate", "bytes", "quote", "random"]))
    if how == "truncate":
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if how == "bytes":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=40)) + data[at:]
    if how == "quote":
        at = draw(st.integers(0, len(data)))
        return data[:at] + b'"' + data[at:]
    return draw(st.binary(min_size=1, max_size=400))


# --------------------------------------------------------------------------- CSV
@SETTINGS
@given(csv_files())
def test_csv_well_formed_files_round_trip(spec):
    data, n_records, expected, covariates = spec
    with tempfile.TemporaryDirectory() as tmp:
        store = base_store(Path(tmp))
        path = write(Path(tmp) / "gen.csv", data)
        result = ingest_and_check(store, "predictions", path)
        if expected is None:  # a required column was dropped: the file fails and names it
            assert result.status == "failed" and "is missing" in result.message
            return
        assert result.status == "ingested", result.message
        assert result.rows_read == n_records  # independent count: records csv.writer wrote
        assert result.accepted == len(expected)
        cols = ", ".join(f'"{c.replace(chr(34), chr(34) * 2)}"' for c in covariates)
        got = store.con.execute(
            f"SELECT request_id, model_version, prediction{', ' + cols if cols else ''} "
            "FROM predictions WHERE ingest_id = ? ORDER BY rowid", [result.ingest_id]
        ).fetchall()
        assert [(r[0], r[1], r[2], list(r[3:])) for r in got] == [
            (rid, v, p, covs) for rid, v, p, covs in expected
        ]
        if n_records:
            assert dict(store.covariates().iter_rows()) == {c: "VARCHAR" for c in covariates}
        store.close()


@SETTINGS
@given(st.data())
def test_csv_malformed_files_never_break_the_store(data):
    raw, _, _, _ = data.draw(csv_files())
    broken = corrupt(data.draw, raw)
    with tempfile.TemporaryDirectory() as tmp:
        store = base_store(Path(tmp))
        if not broken:
            broken = b"\n"
        result = ingest_and_check(store, "predictions", write(Path(tmp) / "broken.csv", broken))
        assert result.status in ("ingested", "failed")
        store.close()


# --------------------------------------------------------------------------- JSON lines
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    cell_text,
)
json_value = st.one_of(json_scalar, st.lists(json_scalar, max_size=3), st.dictionaries(st.text(max_size=3), json_scalar, max_size=2))


@st.composite
def json_files(draw):
    """JSON lines: random key sets and types; returns bytes, records written, clean string rows expected."""
    keys = ["request_id", "ts", "model_version", "prediction"]
    extra = column_names(draw, draw(st.integers(0, 3)))
    n_rows = draw(st.integers(1, 10))
    typed = draw(st.booleans())  # contract columns always strings (round-trip) or anything
    ensure_ascii = draw(st.booleans())  # True can write lone surrogates as \\udXXX escapes
    lines, expected, seen = [], [], set()
    for i in range(n_rows):
        rec: dict = {}
        for k in keys:
            if draw(st.integers(0, 19)) == 0:
                continue  # key missing in this record
            if typed:
                rec[k] = draw(json_value)
            elif k == "ts":
                rec[k] = f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"
            else:
                rec[k] = clean_label(draw(odd_text))
        for k in extra:
            if draw(st.booleans()):
                rec[k] = draw(json_value)
        lines.append(json.dumps(rec, ensure_ascii=ensure_ascii))
        if not typed and all(k in rec for k in keys) and rec["request_id"] not in seen:
            seen.add(rec["request_id"])
            expected.append((rec["request_id"], rec["model_version"], rec["prediction"]))
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    return data, n_rows, (None if typed else expected)


@SETTINGS
@given(json_files())
def test_json_lines_random_keys_and_types(spec):
    data, n_records, expected = spec
    with tempfile.TemporaryDirectory() as tmp:
        store = base_store(Path(tmp))
        result = ingest_and_check(store, "predictions", write(Path(tmp) / "gen.jsonl", data))
        if result.status == "ingested":
            assert result.rows_read == n_records  # independent count: lines json.dumps wrote
        if expected is not None and result.status == "ingested":
            got = store.con.execute(
                "SELECT request_id, model_version, prediction FROM predictions WHERE ingest_id = ? ORDER BY rowid",
                [result.ingest_id],
            ).fetchall()
            assert got == expected  # strings come back as written (not as JSON text)
        elif result.status == "failed":
            # what may fail a JSON lines file as a whole: a required key absent from every record,
            # or text DuckDB cannot hold (lone surrogates written as \\udXXX escapes)
            assert "is missing" in result.message or "surrogate" in result.message, result.message
        store.close()


@SETTINGS
@given(st.data())
def test_json_lines_malformed_never_break_the_store(data):
    raw, _, _ = data.draw(json_files())
    broken = corrupt(data.draw, raw) or b"{"
    with tempfile.TemporaryDirectory() as tmp:
        store = base_store(Path(tmp))
        ingest_and_check(store, "predictions", write(Path(tmp) / "broken.jsonl", broken))
        store.close()


# --------------------------------------------------------------------------- Parquet
PARQUET_COLUMNS = {
    "text": st.lists(st.one_of(st.none(), odd_text), min_size=1, max_size=1),
    "int": st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), min_size=1, max_size=1),
    "float": st.lists(st.one_of(st.none(), st.floats()), min_size=1, max_size=1),
    "bool": st.lists(st.one_of(st.none(), st.booleans()), min_size=1, max_size=1),
}
PL_TYPES = {"text": pl.Utf8, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean}


@st.composite
def parquet_frames(draw):
    n = draw(st.integers(0, 10))
    names = ["request_id", "ts", "model_version", "prediction"]
    names = [c for c in names if draw(st.integers(0, 9)) > 0] + column_names(draw, draw(st.integers(0, 3)))
    data, schema = {}, {}
    for name in names:
        kind = draw(st.sampled_from(sorted(PARQUET_COLUMNS)))
        if name == "ts" and draw(st.booleans()):
            data[name] = [dt.datetime(2026, 11, 2, i % 24) for i in range(n)]
            schema[name] = pl.Datetime("us")
            continue
        data[name] = [draw(PARQUET_COLUMNS[kind])[0] for _ in range(n)]
        schema[name] = PL_TYPES[kind]
    return pl.DataFrame(data, schema=schema)


@SETTINGS
@given(parquet_frames(), st.booleans(), st.data())
def test_parquet_random_columns_types_and_truncation(frame, truncate, data):
    with tempfile.TemporaryDirectory() as tmp:
        store = base_store(Path(tmp))
        path = Path(tmp) / "gen.parquet"
        frame.write_parquet(path)
        if truncate:
            raw = path.read_bytes()
            path.write_bytes(raw[: data.draw(st.integers(1, len(raw) - 1))])
        result = ingest_and_check(store, "predictions", path)
        if truncate:
            assert result.status == "failed" and "cannot read it as parquet" in result.message
        elif result.status == "ingested":
            assert result.rows_read == frame.height  # independent count: polars wrote that many rows
        elif frame.width == 0:  # DuckDB refuses a Parquet file without columns
            assert "Need at least one non-root column" in result.message
        else:
            assert "is missing" in result.message, result.message
        store.close()


def test_parquet_text_values_round_trip_exactly(tmp_path):
    values = SPECIAL + ["h" * 200_000]
    frame = pl.DataFrame({
        "request_id": [f"r{i}" for i in range(len(values))],
        "ts": [dt.datetime(2026, 11, 2, 10)] * len(values),
        "model_version": ["v1"] * len(values), "prediction": ["ok"] * len(values), "note": values,
    })
    frame.write_parquet(tmp_path / "p.parquet")
    with Store(":memory:") as store:
        r = ingest_and_check(store, "predictions", tmp_path / "p.parquet")
        assert r.accepted == len(values)
        got = store.sql("SELECT note FROM predictions ORDER BY rowid")["note"].to_list()
        assert got == values


# --------------------------------------------------------------------------- deployments and artifacts
@SETTINGS
@given(st.data())
def test_deployments_and_artifacts_fuzzed(data):
    kind = data.draw(st.sampled_from(["deployments", "artifacts"]))
    cols = [c for c in CONTRACT[kind] if data.draw(st.integers(0, 5)) > 0]
    n = data.draw(st.integers(0, 8))
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(cols)
    for _ in range(n):
        row = []
        for c in cols:
            if c in ("ts", "expected_end", "created_at"):
                row.append(data.draw(st.sampled_from(["2026-11-02", "2026-11-02T10:00:00+01:00", "bad", ""])))
            elif c == "event":
                row.append(data.draw(st.sampled_from(["deploy", "rollback", "launch", ""])))
            elif c == "traffic_pct":
                row.append(data.draw(st.sampled_from(["10", "150", "-1", "x", ""])))
            else:
                row.append(data.draw(odd_text))
        w.writerow(row)
    with tempfile.TemporaryDirectory() as tmp:
        store = base_store(Path(tmp))
        result = ingest_and_check(store, kind, write(Path(tmp) / f"{kind}.csv", buf.getvalue().encode()))
        required = [c for c, (_, req) in CONTRACT[kind].items() if req]
        if all(c in cols for c in required):
            assert result.status == "ingested" and result.rows_read == n
        else:
            assert result.status == "failed" and "is missing" in result.message
        store.close()


# --------------------------------------------------------------------------- the CLI never shows a traceback
VDRIFT = [sys.executable, "-m", "toolkit.cli"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(VDRIFT + args, capture_output=True, cwd=cwd, env=env, timeout=120)


def _cli_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    """(arguments, text the error must contain) for hostile inputs, one file each."""
    good = write(tmp / "good.csv", BASE_CSV)
    parquet = tmp / "t.parquet"
    pl.DataFrame({"request_id": ["a"] * 50, "ts": ["2026-11-02"] * 50}).write_parquet(parquet)
    parquet.write_bytes(parquet.read_bytes()[:-30])
    os_name = os.fsencode(tmp) + b"/\xff\xfename.csv"
    with open(os_name, "wb") as fh:
        fh.write(BASE_CSV.encode())
    return [
        (["ingest", "predictions", str(write(tmp / "rand.csv", bytes(range(256)) * 4))], "cannot read it as csv"),
        (["ingest", "predictions", str(parquet)], "cannot read it as parquet"),
        (["ingest", "predictions", str(write(tmp / "s.jsonl", b'{"request_id": "\\ud800"}\n'))], "surrogate"),
        (["ingest", "predictions", os.fsdecode(os_name)], "not valid UTF-8"),
        (["ingest", "predictions", str(good), "--db", str(good)], "not a DuckDB database file"),
        (["ingest", "predictions", str(good), "--mapping", str(write(tmp / "m.toml", "[columns\n"))], "not valid TOML"),
        (["ingest", "predictions", str(tmp / "nothing*.csv")], "no file matches"),
    ]


def test_cli_hostile_inputs_end_with_a_message_not_a_traceback(tmp_path):
    db = tmp_path / "s.duckdb"
    with Store(db) as store:
        store.ingest("predictions", write(tmp_path / "seed.csv", BASE_CSV.replace("base-1", "seed-1")))
        before = snapshot(store)
    for args, expected in _cli_inputs(tmp_path):
        if "--db" not in args:
            args = args + ["--db", str(db)]
        out = _run(args, tmp_path)
        stderr = out.stderr.decode("utf-8", "replace")
        assert out.returncode in (2, 3), (args, out.returncode, stderr)
        assert "Traceback" not in stderr, stderr
        assert "vdrift: error:" in stderr and expected in stderr, (args, stderr)
    with Store(db) as store:
        assert snapshot(store) == before


# --------------------------------------------------------------------------- edge cases (item 6)
H = "request_id,ts,model_version,prediction\n"


def test_timestamps_out_of_order_are_kept_as_written(store, tmp_path):
    f = write(tmp_path / "o.csv", H + "c,2026-11-03 10:00:00,v1,x\na,2026-11-01 10:00:00,v1,x\nb,2026-11-02 10:00:00,v1,x\n")
    r = ingest_and_check(store, "predictions", f)
    assert (r.accepted, r.quarantined) == (3, 0)  # no reordering and no rejection
    assert store.sql("SELECT request_id FROM predictions ORDER BY rowid")["request_id"].to_list() == ["c", "a", "b"]
    assert store.time_span() == (dt.datetime(2026, 11, 1, 10), dt.datetime(2026, 11, 3, 10))


@pytest.mark.parametrize(
    "zone, local, utc, why",
    [
        # Europe/Berlin: 2026-03-29 02:00 CET jumps to 03:00 CEST; 2026-10-25 03:00 CEST falls back to 02:00 CET
        ("Europe/Berlin", "2026-03-29 01:59:00", "2026-03-29 00:59:00", "last minute of CET (+01:00)"),
        ("Europe/Berlin", "2026-03-29 02:30:00", "2026-03-29 01:30:00", "non-existent: read with the offset before the jump (+01:00)"),
        ("Europe/Berlin", "2026-03-29 03:00:00", "2026-03-29 01:00:00", "first minute of CEST (+02:00)"),
        ("Europe/Berlin", "2026-10-25 02:30:00", "2026-10-25 01:30:00", "ambiguous: the second occurrence (CET, +01:00)"),
        ("Europe/Berlin", "2026-10-25 01:59:00", "2026-10-24 23:59:00", "still CEST (+02:00)"),
        # America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST
        ("America/New_York", "2026-03-08 02:30:00", "2026-03-08 07:30:00", "non-existent: read as EST (-05:00)"),
        ("America/New_York", "2026-11-01 01:30:00", "2026-11-01 06:30:00", "ambiguous: the second occurrence (EST, -05:00)"),
    ],
)
def test_daylight_saving_transitions(store, tmp_path, zone, local, utc, why):
    """What DuckDB/ICU does with local times that do not exist or exist twice (documented, not an error).

    Non-existent local times (in the spring-forward gap) are read with the
    offset in force before the jump, which lands them one hour after the gap
    opened (02:30 CET = 03:30 CEST); ambiguous local times (the repeated hour
    in autumn) are read as the second, standard-time occurrence. Python's
    zoneinfo would pick the first occurrence (fold=0): logs written in local
    time lose this hour's order; write offsets (``+02:00``) or UTC to avoid it.
    """
    f = write(tmp_path / "dst.csv", H + f"a,{local},v1,x\n")
    r = ingest_and_check(store, "predictions", f, mapping={"timestamps": {"timezone": zone}})
    assert r.accepted == 1, why
    assert store.sql("SELECT ts FROM predictions")["ts"][0] == dt.datetime.fromisoformat(utc), why


def test_explicit_offsets_disambiguate_the_repeated_hour(store, tmp_path):
    f = write(tmp_path / "off.csv", H + "a,2026-10-25T02:30:00+02:00,v1,x\nb,2026-10-25T02:30:00+01:00,v1,x\n")
    ingest_and_check(store, "predictions", f, mapping={"timestamps": {"timezone": "Europe/Berlin"}})
    ts = store.sql("SELECT ts FROM predictions ORDER BY request_id")["ts"].to_list()
    assert ts == [dt.datetime(2026, 10, 25, 0, 30), dt.datetime(2026, 10, 25, 1, 30)]  # one hour apart


def test_strptime_format_with_offset_ignores_the_mapping_zone(store, tmp_path):
    f = write(tmp_path / "z.csv", H + "a,2026-11-02 10:00 +0000,v1,x\nb,2026-11-02 10:00 +0100,v1,x\n")
    mapping = {"timestamps": {"timezone": "Europe/Berlin", "format": "%Y-%m-%d %H:%M %z"}}
    ingest_and_check(store, "predictions", f, mapping=mapping)
    ts = store.sql("SELECT ts FROM predictions ORDER BY request_id")["ts"].to_list()
    assert ts == [dt.datetime(2026, 11, 2, 10, 0), dt.datetime(2026, 11, 2, 9, 0)]


def test_epoch_values_out_of_range_are_quarantined_not_fatal(store, tmp_path):
    f = write(tmp_path / "e.csv", H + "a,1762077600,v1,x\nb," + "9" * 30 + ",v1,x\n")
    r = ingest_and_check(store, "predictions", f)
    assert (r.accepted, r.quarantined) == (1, 1)
    assert dict(r.reasons) == {R.TS_ISO: 1}
    assert store.sql("SELECT ts FROM predictions")["ts"][0] == dt.datetime(2025, 11, 2, 10, 0)


def test_versions_missing_from_the_registry(store, tmp_path):
    store.ingest("artifacts", write(tmp_path / "a.csv", "version,artifact_hash\nv1,aaaa1111\n"))
    f = write(tmp_path / "p.csv", "request_id,ts,model_version,prediction,artifact_hash\n"
              "a,2026-11-02,v1,x,aaaa1111\n"                        # registered
              "b,2026-11-02,v9,x,\n"                                # no hash: reported label, unverified
              "c,2026-11-02,v1,x,0123456789abcdef0123\n"            # hash unknown to the registry
              "d,2026-11-02,v1,x,it's'; DROP TABLE artifacts; --\n")  # hostile hash
    ingest_and_check(store, "predictions", f)
    got = store.sql("SELECT request_id, resolved_version, version_status FROM predictions_resolved ORDER BY 1").rows()
    assert got == [
        ("a", "v1", "verified"),
        ("b", "v9", "unverified"),
        ("c", "unregistered:0123456789ab", "unregistered"),  # first 12 characters of the hash
        ("d", "unregistered:it's'; DROP ", "unregistered"),
    ]
    assert store.counts()["artifacts"] == 1


def test_all_null_covariates_are_kept_as_text_columns(store, tmp_path):
    f = write(tmp_path / "n.csv", "request_id,ts,model_version,prediction,empty,quoted\n"
              'a,2026-11-02,v1,x,,""\nb,2026-11-02,v1,x,,\n')
    r = ingest_and_check(store, "predictions", f)
    assert r.accepted == 2 and r.new_covariates == ("empty", "quoted")
    # no value to infer a type from: VARCHAR; an empty CSV field (quoted or not) is NULL
    assert dict(store.covariates().iter_rows()) == {"empty": "VARCHAR", "quoted": "VARCHAR"}
    assert store.sql("SELECT count(empty), count(quoted) FROM predictions").rows() == [(0, 0)]
    # the type is fixed by the first file: later numbers in that column are stored as text
    g = write(tmp_path / "n2.csv", "request_id,ts,model_version,prediction,empty\nc,2026-11-02,v1,x,1.5\n")
    ingest_and_check(store, "predictions", g)
    assert store.sql("SELECT empty FROM predictions WHERE request_id = 'c'")["empty"].to_list() == ["1.5"]


def test_a_file_with_only_quarantined_rows_is_logged(store, tmp_path):
    f = write(tmp_path / "q.csv", H + "a,never,v1,x\nb,2026-11-02,,x\n")
    r = ingest_and_check(store, "predictions", f)
    assert (r.status, r.rows_read, r.accepted, r.quarantined) == ("ingested", 2, 0, 2)
    assert store.counts()["predictions"] == 0 and store.counts()["quarantine"] == 2
    assert store.ingest_log()["accepted"].to_list() == [0]
    # the same content is recognised next time and not quarantined twice
    assert store.ingest("predictions", f).results[0].status == "skipped"


def test_lone_surrogates_in_each_format(store, tmp_path):
    """A lone surrogate cannot be UTF-8: CSV quarantines its line, JSON fails the file, Parquet cannot hold one."""
    cesu = b"request_id,ts,model_version,prediction\na,2026-11-02,v1,x\n" + b"b,2026-11-02,v\xed\xa0\x80,x\n"
    r = ingest_and_check(store, "predictions", write(tmp_path / "s.csv", cesu))
    assert (r.rows_read, r.accepted, r.quarantined) == (2, 1, 1)
    assert dict(r.reasons) == {"malformed CSV line: invalid encoding: …": 1}
    js = b'{"request_id": "a\\ud800", "ts": "2026-11-02", "model_version": "v1", "prediction": "x"}\n'
    r = ingest_and_check(store, "predictions", write(tmp_path / "s.jsonl", js))
    assert r.status == "failed" and "no low surrogate" in r.message
    with pytest.raises(UnicodeEncodeError):  # the writer refuses it before any file exists
        pl.DataFrame({"request_id": ["a\ud800"]}).write_parquet(tmp_path / "s.parquet")


def test_nested_values_are_text_not_numbers(store, tmp_path):
    f = write(tmp_path / "n.jsonl", '{"request_id": "a", "ts": "2026-11-02", "model_version": "v1", "prediction": "x", '
              '"ids": [1, 2], "score": [0.5], "cache_hit": {"a": 1}}\n')
    r = ingest_and_check(store, "predictions", f)
    # a list of integers is not a number: stored as text; a list where a number is required is quarantined
    assert (r.accepted, r.quarantined) == (0, 1)
    assert dict(r.reasons) == {R.SCORE + "; " + R.CACHE_HIT: 1}
    assert dict(store.covariates().iter_rows()) == {"ids": "VARCHAR"}
    g = write(tmp_path / "n2.jsonl", '{"request_id": "b", "ts": "2026-11-02", "model_version": "v1", "prediction": "x", '
              '"ids": [3]}\n')
    ingest_and_check(store, "predictions", g)
    assert store.sql("SELECT ids FROM predictions").rows() == [("[3]",)]


def test_csv_with_a_bare_carriage_return_fails_with_a_hint(store, tmp_path):
    f = write(tmp_path / "cr.csv", b"request_id,ts,model_version,prediction,c\nr1,2026-11-02,x,x,x\r\n")
    r = ingest_and_check(store, "predictions", f)
    assert r.status == "failed" and "line 2 ends in CR LF but line 1 ends in LF" in r.message, r.message
    assert "one kind of line break" in r.message


@pytest.mark.parametrize("where", [3, 21_000])
def test_mixed_line_breaks_name_the_line_also_past_the_sniffer_sample(store, tmp_path, where):
    """Found by tests/test_fuzz.py: a CR in a file of LF lines past DuckDB's 20,480-row sample failed with
    "The CSV Parser state machine reached an invalid state ... (if the file looks valid, please report this)",
    and a CR LF file whose last line ends in LF with "Error when sniffing file"."""
    rows = [f"r{i},2026-11-02T00:00:00Z,v1,ok,{i}" for i in range(25_000)]
    rows[where] = rows[where].replace("v1", "v\r1")
    f = write(tmp_path / "cr.csv", "request_id,ts,model_version,prediction,c\n" + "\n".join(rows) + "\n")
    r = ingest_and_check(store, "predictions", f)
    assert r.status == "failed" and f"line {where + 2:,} ends in CR but line 1 ends in LF" in r.message, r.message
    assert "please report" not in r.message
    g = write(tmp_path / "crlf.csv", b"request_id,ts,model_version,prediction\r\na,2026-11-02,v1,ok\r\n"
                                     b"b,2026-11-02,v1,ok\n")
    r = ingest_and_check(store, "predictions", g)
    assert r.status == "failed" and "line 3 ends in LF but line 1 ends in CR LF" in r.message, r.message


def test_a_file_growing_while_it_is_read_is_refused(store, tmp_path, monkeypatch):
    """A log still being written: the checksum would describe other bytes than those loaded."""
    from toolkit.store.ingest import load as ingest_mod  # where _prepare reads file_sha256

    f = write(tmp_path / "live.csv", H + "a,2026-11-02,v1,x\n")
    real = ingest_mod.file_sha256

    def hash_then_append(path):
        digest = real(path)
        with open(path, "a") as fh:  # the service writes another line right after the checksum
            fh.write("b,2026-11-02,v1,x\n")
        return digest

    before = snapshot(store)
    monkeypatch.setattr(ingest_mod, "file_sha256", hash_then_append)
    r = store.ingest("predictions", f).results[0]
    monkeypatch.undo()
    assert r.status == "failed" and "changed while it was being read" in r.message
    assert snapshot(store) == before
    assert store.ingest("predictions", f).results[0].accepted == 2  # once complete, it loads whole


def test_json_keys_with_mixed_types_store_values_not_json_text(store, tmp_path):
    f = write(tmp_path / "m.jsonl", '{"request_id": "a", "ts": "2026-11-02", "model_version": "v1", "prediction": 1, "c": "s"}\n'
              '{"request_id": "b", "ts": "2026-11-02", "model_version": 2, "prediction": "no", "c": 3}\n')
    ingest_and_check(store, "predictions", f)
    got = store.sql("SELECT model_version, prediction, c FROM predictions ORDER BY request_id").rows()
    assert got == [("v1", "1", "s"), ("2", "no", "3")]


def test_covariate_named_like_an_internal_alias_does_not_shadow_checks(store, tmp_path):
    f = write(tmp_path / "r.csv", "request_id,ts,model_version,prediction,_raw_ts,_raw_cov_4\n"
              "a,2026-11-02,v1,x,,hello\nb,2026-11-02,v1,x,7,\n")
    r = ingest_and_check(store, "predictions", f)
    assert (r.accepted, r.quarantined) == (2, 0)
    assert store.sql('SELECT "_raw_ts", "_raw_cov_4" FROM predictions ORDER BY request_id').rows() == [
        (None, "hello"), (7.0, None)]


def test_duplicate_and_case_clashing_headers_are_refused(store, tmp_path):
    # issue 16 item 8: DuckDB renamed them (x_1, amount_1); the store kept columns the file never named
    f = write(tmp_path / "d.csv", "request_id,ts,model_version,prediction,x,x,Amount,amount\na,2026-11-02,v1,p,1,2,3,4\n")
    r = store.ingest("predictions", f).results[0]
    assert r.status == "failed" and "column names repeat ('x' and 'x'; 'Amount' and 'amount')" in r.message
    assert store.counts()["predictions"] == 0
