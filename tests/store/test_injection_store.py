"""Injection and hostile names through ingestion and the store (issue 7, item 3).

Names and values from logs, mapping files, file paths and CLI arguments must
never be spliced into SQL: each test feeds hostile strings (quotes,
semicolons, comments, ``DROP TABLE``) and checks that no statement ran (every
table is still there with the rows it should have) and that the string either
loads faithfully (it round-trips exactly) or is refused with a clear message.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import InputError, Store
from toolkit.sqlutil import checked_column, quote_ident

from tests.conftest import ROOT, write
from .test_hardening_ingest import check_store_consistent, snapshot
from tests import reasons as R

HOSTILE = [
    '"; DROP TABLE predictions; --',
    "'; DROP TABLE predictions; --",
    "x'); DROP TABLE ingest_log; --",
    'a"b',
    "a'b",
    "a;b",
    "/* comment */ v1",
    "-- v1",
    "v1\n; DELETE FROM predictions",
    "$1",
    "?",
    "\\'",
    "Robert'); DROP TABLE artifacts;--",
    "\u202eltr\u202c; DROP",
    "😀'\"",
]
EXPECTED_TABLES = ["artifacts", "covariates", "deployments", "ingest_log", "meta", "predictions",
                   "predictions_resolved", "quarantine"]  # information_schema.tables lists the view too


def _intact(store: Store) -> None:
    """No hostile string ran: every table is still there and the bookkeeping agrees."""
    assert store.tables() == EXPECTED_TABLES
    check_store_consistent(store)


def _write(fmt: str, path: Path, rows: list[dict]) -> Path:
    if fmt == "csv":
        pl.DataFrame(rows).write_csv(path)
    elif fmt == "parquet":
        pl.DataFrame(rows).write_parquet(path)
    else:
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


# --------------------------------------------------------------------------- names and values in logs
@pytest.mark.parametrize("fmt, ext", [("csv", "csv"), ("parquet", "parquet"), ("json", "jsonl")])
def test_hostile_column_names_become_covariates_verbatim(store, tmp_path, fmt, ext):
    names = [n for n in HOSTILE if "\n" not in n]  # CSV headers in this test stay on one line
    rows = [{"request_id": f"r{i}", "ts": "2026-11-02T10:00:00", "model_version": "v1", "prediction": "p",
             **{n: f"value of {n}" for n in names}} for i in range(2)]
    r = store.ingest("predictions", _write(fmt, tmp_path / f"h.{ext}", rows)).results[0]
    assert r.status == "ingested" and r.accepted == 2, r.summary()
    assert set(r.new_covariates) == set(names)
    _intact(store)
    for n in names:
        col = checked_column(store.con, "predictions", n)
        assert store.sql(f"SELECT {col} AS v FROM predictions")["v"].to_list() == [f"value of {n}"] * 2
    assert store.sql("SELECT count(*) AS n FROM predictions_resolved")["n"].item() == 2


@pytest.mark.parametrize("fmt, ext", [("csv", "csv"), ("parquet", "parquet"), ("json", "jsonl")])
def test_hostile_values_in_every_text_column_round_trip(store, tmp_path, fmt, ext):
    text_cols = ["model_version", "prediction", "artifact_hash", "feature_version", "component", "region",
                 "instance_id", "entity_id", "experiment", "arm", "outcome"]
    rows = [{"request_id": f"{v} #{i}", "ts": "2026-11-02T10:00:00", **{c: v for c in text_cols}}
            for i, v in enumerate(HOSTILE)]
    r = store.ingest("predictions", _write(fmt, tmp_path / f"v.{ext}", rows)).results[0]
    assert r.accepted == len(HOSTILE), r.summary()
    _intact(store)
    got = store.sql(f"SELECT request_id, {', '.join(text_cols)} FROM predictions ORDER BY rowid").rows()
    assert got == [(row["request_id"], *[row[c] for c in text_cols]) for row in rows]
    # the hostile hash is not in the registry: unregistered with the first 12 characters, exactly
    res = store.sql("SELECT artifact_hash, resolved_version, version_status FROM predictions_resolved").rows()
    assert all(rv == "unregistered:" + h[:12] and st_ == "unregistered" for h, rv, st_ in res)


def test_hostile_versions_resolve_through_the_registry(store, tmp_path):
    arts = [{"version": v, "artifact_hash": f"hash {v}", "feature_version": v} for v in HOSTILE]
    assert store.ingest("artifacts", _write("csv", tmp_path / "a.csv", arts)).accepted == len(HOSTILE)
    preds = [{"request_id": f"r{i}", "ts": "2026-11-02T10:00:00", "model_version": v, "prediction": "p",
              "artifact_hash": f"hash {HOSTILE[(i + 1) % len(HOSTILE)]}"} for i, v in enumerate(HOSTILE)]
    store.ingest("predictions", _write("parquet", tmp_path / "p.parquet", preds))
    _intact(store)
    got = store.sql("SELECT model_version, resolved_version, version_status, expected_feature_version "
                    "FROM predictions_resolved ORDER BY CAST(substr(request_id, 2) AS INTEGER)").rows()
    expected = [(v, HOSTILE[(i + 1) % len(HOSTILE)], "mismatch", HOSTILE[(i + 1) % len(HOSTILE)])
                for i, v in enumerate(HOSTILE)]
    assert got == expected


def test_hostile_deployment_values(store, tmp_path):
    rows = [{"ts": "2026-11-02", "component": v, "scope": v, "event": "deploy", "version": v, "actor": v,
             "note": v} for v in HOSTILE]
    r = store.ingest("deployments", _write("json", tmp_path / "d.jsonl", rows)).results[0]
    assert r.accepted == len(HOSTILE)
    assert store.sql("SELECT version, actor, note FROM deployments ORDER BY rowid").rows() == [(v, v, v) for v in HOSTILE]
    # an event outside the list is quarantined by a bound list, never evaluated
    bad = [{"ts": "2026-11-02", "component": "serving", "scope": "all", "event": e} for e in HOSTILE]
    r = store.ingest("deployments", _write("json", tmp_path / "e.jsonl", bad)).results[0]
    assert (r.accepted, r.quarantined) == (0, len(HOSTILE)) and dict(r.reasons) == {R.UNKNOWN_EVENT: len(HOSTILE)}
    _intact(store)


# --------------------------------------------------------------------------- mapping entries
def test_hostile_mapping_entries_load_faithfully(store, tmp_path):
    src = {"request_id": HOSTILE[0], "ts": HOSTILE[1], "model_version": HOSTILE[2], "prediction": HOSTILE[3]}
    keep, drop = HOSTILE[4], HOSTILE[5]
    rows = [{src["request_id"]: "r1", src["ts"]: "02/11/2026 10:00", src["model_version"]: "v1",
             src["prediction"]: "p", keep: "kept", drop: "dropped"}]
    f = _write("parquet", tmp_path / "m.parquet", rows)
    mapping_file = tmp_path / "it's a \"mapping\"; DROP TABLE x.toml"
    toml_str = json.dumps  # a JSON string literal is a valid TOML basic string
    mapping_file.write_text(
        f"covariates = [{toml_str(keep)}]\n[columns]\n"
        + "".join(f"{k} = {toml_str(v)}\n" for k, v in src.items())
        + '[timestamps]\nformat = "%d/%m/%Y %H:%M"\ntimezone = "Europe/Berlin"\n'
        + f"[defaults]\nregion = {toml_str(HOSTILE[0])}\ncomponent = {toml_str(HOSTILE[1])}\n"
    )
    r = store.ingest("predictions", f, mapping=mapping_file).results[0]
    assert r.accepted == 1, r.summary()
    assert r.new_covariates == (keep,) and r.ignored_columns == (drop,)
    got = store.sql(f"SELECT request_id, ts, model_version, region, component, {quote_ident(keep)} AS k "
                    "FROM predictions").rows()
    assert got == [("r1", dt.datetime(2026, 11, 2, 9, 0), "v1", HOSTILE[0], HOSTILE[1], "kept")]
    assert store.ingest_log()["mapping"][0].startswith(str(mapping_file))
    _intact(store)


@pytest.mark.parametrize(
    "mapping, message",
    [
        ({"timestamps": {"timezone": "UTC'; DROP TABLE predictions; --"}}, "unknown time zone"),
        ({"timestamps": {"timezone": "Europe/Berlin\x00"}}, "unknown time zone"),
        ({"timestamps": {"format": "%Y'; DROP TABLE predictions; --%Q"}}, "not a valid strptime format"),
        ({"columns": {'model_version"; DROP TABLE predictions; --': "v"}}, "not a predictions contract column"),
        ({"defaults": {"score": "1; DROP TABLE predictions"}}, "cannot be read as double"),
        ({"defaults": {"cache_hit": "'; DROP TABLE predictions; --"}}, "cannot be read as boolean"),
        ({"covariates": "'; DROP TABLE predictions; --"}, "covariates must be a list"),
        ({"'; DROP TABLE predictions; --": 1}, "unknown key"),
    ],
)
def test_hostile_mapping_entries_are_refused_clearly(store, tmp_path, mapping, message):
    store.ingest("predictions", write(tmp_path / "ok.csv", "request_id,ts,model_version,prediction\na,2026-11-02,v,p\n"))
    f = write(tmp_path / "p.csv", "request_id,ts,model_version,prediction\nb,2026-11-02,v,p\n")
    before = snapshot(store)
    with pytest.raises(InputError, match=message):
        store.ingest("predictions", f, mapping=mapping)
    assert snapshot(store) == before
    _intact(store)


def test_hostile_strptime_text_is_only_a_format(store, tmp_path):
    """Literal text in a valid format is matched, not executed: rows that do not fit are quarantined."""
    f = write(tmp_path / "p.csv", "request_id,ts,model_version,prediction\n"
              "a,2026'; DROP TABLE predictions; --11,v,p\nb,2026-11,v,p\n")
    r = store.ingest("predictions", f, mapping={"timestamps": {"format": "%Y'; DROP TABLE predictions; --%m"}}).results[0]
    assert (r.accepted, r.quarantined) == (1, 1)
    assert store.sql("SELECT request_id, ts FROM predictions").rows() == [("a", dt.datetime(2026, 11, 1))]
    _intact(store)


def test_mapped_source_column_that_does_not_exist_is_named_in_the_message(store, tmp_path):
    f = write(tmp_path / "p.csv", "request_id,ts,model_version,prediction\nb,2026-11-02,v,p\n")
    r = store.ingest("predictions", f, mapping={"columns": {"model_version": HOSTILE[0]}}).results[0]
    assert r.status == "failed" and repr(HOSTILE[0]) in r.message and "no such column" in r.message
    _intact(store)


# --------------------------------------------------------------------------- paths and file names
ROW = "request_id,ts,model_version,prediction\n{rid},2026-11-02,v1,p\n"
HOSTILE_FILE_NAMES = [
    "with space.csv",
    "it's.csv",
    'say "hi".csv',
    "'; DROP TABLE predictions; --.csv",
    "a[1].csv",
    "a*.csv",
    "a?.csv",
    "{a,b}.csv",
    "$(touch pwned).csv",
    "ünï 😀.csv",
]


def test_hostile_file_names_are_read_literally(store, tmp_path):
    d = tmp_path / "dir with 'quotes' and [brackets]"
    d.mkdir()
    write(d / "a1.csv", ROW.format(rid="decoy-a1"))  # what a glob a[1].csv / a?.csv would match
    write(d / "ab.csv", ROW.format(rid="decoy-ab"))
    for i, name in enumerate(HOSTILE_FILE_NAMES):
        f = write(d / name, ROW.format(rid=f"file-{i}"))
        r = store.ingest("predictions", f).results[0]
        assert (r.status, r.rows_read, r.accepted) == ("ingested", 1, 1), (name, r.summary())
        assert r.path == str(f)
        assert store.sql("SELECT request_id FROM predictions WHERE ingest_id = ?", [r.ingest_id]).rows() == [(f"file-{i}",)]
    assert store.sql("SELECT count(*) FROM predictions WHERE request_id LIKE 'decoy%'").item() == 0
    assert sorted(store.ingest_log()["path"].to_list()) == sorted(str(d / n) for n in HOSTILE_FILE_NAMES)
    assert not (Path.cwd() / "pwned").exists()
    _intact(store)


def test_hostile_store_and_mapping_paths_through_the_cli(tmp_path):
    d = tmp_path / "it's; DROP TABLE predictions; --"
    d.mkdir()
    db = d / 'store "x" [1].duckdb'
    f = write(d / "'; DROP TABLE x; --.csv", ROW.format(rid="r1"))
    m = write(d / "map 'quoted'.toml", '[defaults]\nregion = "\'; DROP TABLE predictions; --"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "toolkit.cli", "ingest", "predictions", str(f), "--db", str(db),
                          "--mapping", str(m), "--temp-directory", str(d / "tmp 'x'")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "1 rows read = 1 accepted + 0 quarantined" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "toolkit.cli", "status", "--db", str(db),
                          "--memory-limit", "1GB'; DROP TABLE predictions; --"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "vdrift: error: memory limit" in bad.stderr and "Traceback" not in bad.stderr
    with Store(db, read_only=True) as store:
        assert store.sql("SELECT request_id, region FROM predictions").rows() == [("r1", "'; DROP TABLE predictions; --")]
        assert store.ingest_log()["path"].to_list() == [str(f)]
        _intact(store)


# --------------------------------------------------------------------------- the store API and identifier quoting
def test_store_api_refuses_unknown_names(store):
    with pytest.raises(InputError, match="unknown table"):
        store.table("predictions; DROP TABLE predictions")
    with pytest.raises(InputError, match="unknown column"):
        checked_column(store.con, "predictions", 'ts" FROM predictions; DROP TABLE predictions; --')
    with pytest.raises(InputError, match="invalid column name"):
        quote_ident("a\x00b")
    with pytest.raises(InputError, match="ingest id must be an integer"):
        store.quarantine(ingest_id="1 OR 1=1")
    _intact(store)


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20))
def test_quote_ident_round_trips_any_name(name):
    """Any name without NUL is one identifier: a column created with it has exactly that name."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({quote_ident(name)} VARCHAR, other VARCHAR)")
    assert [r[0] for r in con.execute("DESCRIBE t").fetchall()] == [name, "other"]
    con.execute(f"INSERT INTO t ({quote_ident(name)}, other) VALUES (?, ?)", [name, "o"])
    assert con.execute(f"SELECT {quote_ident(name)}, other FROM t").fetchall() == [(name, "o")]
    con.close()


def test_cli_output_escapes_terminal_control_characters(tmp_path):
    """Names and values from logs cannot recolour, clear or reorder the terminal (ESC, BEL, U+202E)."""
    esc_name = "\x1b[2J\x1b[31mred\x07"
    rtl_name = "amount\u202etxt.exe"
    f = tmp_path / "esc \x1b[1m.csv"
    f.write_text(f"request_id,ts,model_version,prediction,{esc_name},{rtl_name}\n"
                 "a,2026-11-02,v1,p,x,y\nb,bad,v1,p,\x1b]0;title\x07,z\n")
    db = tmp_path / "t.duckdb"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = [subprocess.run([sys.executable, "-m", "toolkit.cli", *args, "--db", str(db)],
                           capture_output=True, text=True, env=env, timeout=120)
            for args in (["ingest", "predictions", str(f)], ["status"], ["quarantine"])]
    for out in outs:
        assert out.returncode == 0, out.stderr
        assert "\x1b" not in out.stdout and "\x07" not in out.stdout and "\u202e" not in out.stdout
    assert "\\x1b[2J\\x1b[31mred\\x07" in outs[0].stdout and "amount\\u202etxt.exe" in outs[1].stdout
    with Store(db, read_only=True) as store:  # escaping is for display only: the store keeps the names
        assert {esc_name, rtl_name} <= set(store.columns("predictions"))


# --------------------------------------------------------------------------- random mappings
_names = st.sampled_from(["request_id", "ts", "model_version", "prediction", "score", "region", "component",
                          "cache_hit", "amount", "nope", *HOSTILE])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8),
                     st.sampled_from(HOSTILE), st.just(dt.datetime(2026, 11, 2, 10)))
_values = st.recursive(_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(_names, c, max_size=3),
                       max_leaves=6)
_mappings = st.one_of(
    st.fixed_dictionaries({}, optional={
        "columns": st.dictionaries(_names, st.one_of(_names, _values), max_size=3),
        "timestamps": st.fixed_dictionaries({}, optional={
            "timezone": st.sampled_from(["UTC", "Europe/Berlin", "utc", "Mars/Base", *HOSTILE]) | _values,
            "format": st.sampled_from(["%Y-%m-%d", "%d/%m/%Y %H:%M", "epoch_ms", "%z", "%Q", *HOSTILE]) | _values,
        }),
        "defaults": st.dictionaries(_names, _values, max_size=3),
        "covariates": st.one_of(st.lists(_names, max_size=3), _values),
    }),
    st.dictionaries(st.text(max_size=6) | _names, _values, max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(_mappings)
def test_random_mappings_load_or_are_refused_clearly(mapping):
    """Any mapping dict: InputError before anything is read, or a per-file result; never another exception."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        f = write(Path(tmp) / "p.csv", "request_id,ts,model_version,prediction,amount\n"
                  "a,2026-11-02,v1,p,1.5\nb,02/11/2026 10:00,v2,q,x\n")
        with Store(":memory:") as store:
            before = snapshot(store)
            try:
                report = store.ingest("predictions", f, mapping=mapping)
            except InputError as exc:
                assert str(exc).startswith("mapping "), str(exc)
                assert snapshot(store) == before
                return
            (r,) = report.results
            assert r.status in ("ingested", "failed"), r
            if r.status == "failed":
                assert snapshot(store) == before and str(f) in r.message
            _intact(store)
