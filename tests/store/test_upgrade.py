"""Schema version 2 (each prediction row's request key, computed once): stores of version 1 are upgraded in place.

A version-1 store is made from a fresh one by dropping the column and
setting the version back; the analyses open stores read-only, so they ask
for ``vdrift upgrade``, which migrates the store and gives the same answers
as a store ingested by this version.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from toolkit import Store
from toolkit.errors import StoreError
from toolkit.attribution import attribute
from toolkit.cli import main
from toolkit.store.attach import sql_literal

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "samples" / "demo"
BASELINE, COMPARISON = "2026-11-02..2026-11-09", "2026-11-09..2026-11-16"
METRIC = "rate:prediction=approved"

pytestmark = pytest.mark.skipif(not (DEMO / "predictions.csv.gz").exists(), reason="committed demo sample missing")


def _history(store: Store) -> None:
    store.ingest("artifacts", [DEMO / "artifacts.csv"])
    store.ingest("deployments", [DEMO / "deployments.jsonl"])


def _split(path: Path) -> pl.DataFrame:
    with Store(path, read_only=True) as store:
        return attribute(store, METRIC, BASELINE, COMPARISON, method="all", n_boot=50, seed=0).to_frame()


def _as_version_1(path: Path, *, view: bool) -> None:
    """Make the store look as version 1 wrote it: no request key anywhere."""
    con = duckdb.connect(str(path))
    if view:
        con.execute("ALTER VIEW predictions RENAME TO _old_predictions")
        con.execute("CREATE VIEW predictions AS SELECT * EXCLUDE (request_key) FROM _old_predictions")
    else:
        con.execute("DROP VIEW IF EXISTS predictions_resolved")
        con.execute("ALTER TABLE predictions DROP COLUMN request_key")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.close()


def _attached_version_1(fresh: Path, tmp_path: Path, *, history: bool) -> tuple[Path, Path]:
    """A version-1 store with the fresh store's predictions attached as a hive lake: (store, lake)."""
    lake = tmp_path / "lake"
    with Store(fresh, read_only=True) as store:
        store.con.execute("COPY (SELECT * EXCLUDE (ingest_id, request_key), CAST(ts AS DATE) AS date "
                          f"FROM predictions ORDER BY ts) TO {sql_literal(str(lake))} "
                          "(FORMAT parquet, PARTITION_BY (date))")
    path = tmp_path / "attached.duckdb"
    with Store(path) as store:
        if history:
            _history(store)
        store.attach(lake, partitioning="hive")
    _as_version_1(path, view=True)
    return path, lake


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("upgrade") / "fresh.duckdb"
    with Store(path) as store:
        _history(store)
        store.ingest("predictions", [DEMO / "predictions.csv.gz"])
    return path


def test_a_fresh_store_holds_every_rows_md5_key_and_refuses_a_row_without_one(fresh):
    with Store(fresh) as store:
        rows = store.con.execute("SELECT request_id, request_key FROM predictions LIMIT 500").fetchall()
        assert len(rows) == 500
        assert all(key == int(hashlib.md5(rid.encode()).hexdigest()[:8], 16) for rid, key in rows)
        with pytest.raises(duckdb.ConstraintException, match="request_key"):
            store.con.execute("INSERT INTO predictions (request_id, ts, model_version, prediction, ingest_id) "
                              "VALUES ('x', TIMESTAMP '2026-11-03', 'v1', 'approved', 1)")


def test_a_version_1_store_is_refused_read_only_then_upgraded_to_the_same_answers(fresh, tmp_path, capsys):
    old = tmp_path / "old.duckdb"
    old.write_bytes(fresh.read_bytes())
    _as_version_1(old, view=False)
    code = main(["attribute", "--db", str(old), "--metric", METRIC, "--baseline", BASELINE,
                 "--comparison", COMPARISON])
    err = capsys.readouterr().err
    assert code == 3
    assert "schema version 1, older than this vdrift's 2" in err and f"vdrift upgrade --db {old}" in err
    assert main(["upgrade", "--db", str(old)]) == 0
    assert "migrated from schema v1 to schema v2" in capsys.readouterr().out
    assert main(["upgrade", "--db", str(old)]) == 0
    assert "already at schema v2" in capsys.readouterr().out
    con = duckdb.connect(str(old), read_only=True)
    assert con.execute("SELECT count(*), count(request_key) FROM predictions").fetchone() == (41_634, 41_634)
    assert con.execute("SELECT is_nullable FROM information_schema.columns WHERE table_name = 'predictions' "
                       "AND column_name = 'request_key'").fetchone() == ("NO",)
    con.close()
    assert_frame_equal(_split(old), _split(fresh))


def test_an_attached_version_1_store_computes_the_key_on_read_after_the_upgrade(fresh, tmp_path, capsys):
    path, _ = _attached_version_1(fresh, tmp_path, history=True)
    assert main(["upgrade", "--db", str(path)]) == 0
    capsys.readouterr()
    assert_frame_equal(_split(path), _split(fresh))
    # a validation rebuilds the views with the key in place
    with Store(path) as store:
        store.validate()
    assert_frame_equal(_split(path), _split(fresh))


def test_upgrade_of_a_missing_store_is_an_input_error(tmp_path, capsys):
    assert main(["upgrade", "--db", str(tmp_path / "none.duckdb")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vdrift: ") and "no store at" in err and "vdrift ingest" in err
    assert not (tmp_path / "none.duckdb").exists()


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def test_a_version_1_column_named_request_key_is_kept_under_another_name(fresh, tmp_path, capsys):
    """Version 1 took a log column `request_key` as a covariate; the upgrade keeps its values as input_request_key."""
    old = _copy(fresh, tmp_path / "old.duckdb")
    _as_version_1(old, view=False)
    con = duckdb.connect(str(old))
    con.execute("ALTER TABLE predictions ADD COLUMN request_key DOUBLE")
    con.execute("UPDATE predictions SET request_key = length(request_id)")
    con.execute("INSERT INTO covariates VALUES ('request_key', 'DOUBLE', 3)")
    con.close()
    assert main(["upgrade", "--db", str(old)]) == 0
    capsys.readouterr()
    con = duckdb.connect(str(old), read_only=True)
    rows = con.execute("SELECT request_id, request_key, input_request_key FROM predictions LIMIT 200").fetchall()
    assert all(key == int(hashlib.md5(rid.encode()).hexdigest()[:8], 16) and kept == len(rid)
               for rid, key, kept in rows)
    assert con.execute("SELECT name FROM covariates WHERE name LIKE '%request_key' ORDER BY 1").fetchall() == [
        ("input_request_key",)]
    con.close()


def test_an_attached_version_1_store_whose_files_are_gone_upgrades_and_detaches(fresh, tmp_path, capsys):
    path, lake = _attached_version_1(fresh, tmp_path, history=False)
    lake.rename(tmp_path / "moved")
    assert main(["upgrade", "--db", str(path)]) == 0
    capsys.readouterr()
    assert main(["audit", "--db", str(path)]) == 3
    assert f"vdrift validate --db {path}" in capsys.readouterr().err  # the files are gone: validate or detach
    assert main(["detach", "predictions", "--db", str(path)]) == 0
    with Store(path) as store:
        assert not [t for t in store.tables() if t.startswith("_vdrift_predictions")]
        store.ingest("predictions", [DEMO / "predictions.csv.gz"])
        assert store.con.execute("SELECT count(*) FROM predictions WHERE request_key IS NULL").fetchone() == (0,)


def test_a_failed_migration_names_its_cause_and_leaves_the_store_as_it_was(fresh, tmp_path, capsys, monkeypatch):
    from toolkit.store import schema

    old = _copy(fresh, tmp_path / "old.duckdb")
    _as_version_1(old, view=False)

    def fails(con):
        con.execute("ALTER TABLE predictions ADD COLUMN request_key UINTEGER")
        raise duckdb.IOException("IO Error: could not write to the disk")

    monkeypatch.setitem(schema._MIGRATIONS, 2, fails)
    assert main(["upgrade", "--db", str(old)]) == 3
    err = capsys.readouterr().err
    assert "migrating the store from schema version 1 to 2 failed, and it is unchanged: IO Error" in err
    con = duckdb.connect(str(old), read_only=True)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    assert "request_key" not in {c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'predictions'").fetchall()}
    con.close()


def test_a_store_with_an_index_of_its_own_is_upgraded_and_refuses_a_row_without_a_key(fresh, tmp_path, capsys):
    """DuckDB refuses NOT NULL on a table with a user's index: the key is filled, and a NULL key is refused on read."""
    old = _copy(fresh, tmp_path / "old.duckdb")
    _as_version_1(old, view=False)
    duckdb.connect(str(old)).execute("CREATE INDEX my_rid ON predictions(request_id)").close()
    assert main(["upgrade", "--db", str(old)]) == 0
    capsys.readouterr()
    assert_frame_equal(_split(old), _split(fresh))
    with Store(old) as store:
        store.con.execute("INSERT INTO predictions (request_id, ts, model_version, prediction, ingest_id, region) "
                          "VALUES ('by-hand', TIMESTAMP '2026-11-03', 'v1.4', 'approved', 1, 'eu')")
        with pytest.raises(StoreError, match="1 prediction row.s. have no request_key"):
            attribute(store, METRIC, BASELINE, COMPARISON, n_boot=0)
    with Store(old) as store:  # the next open for writing fills it
        assert store.con.execute("SELECT count(*) FROM predictions WHERE request_key IS NULL").fetchone() == (0,)


def test_an_open_for_writing_fills_and_constrains_a_key_left_nullable(fresh, tmp_path):
    """A process stopped between the migration's commit and the constraint: the next open for writing finishes."""
    path = _copy(fresh, tmp_path / "s.duckdb")
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE predictions ALTER COLUMN request_key DROP NOT NULL")
    con.execute("UPDATE predictions SET request_key = NULL WHERE request_id IN "
                "(SELECT request_id FROM predictions ORDER BY request_id LIMIT 3)")
    con.close()
    with Store(path) as store:
        assert store.con.execute("SELECT count(*) FROM predictions WHERE request_key IS NULL").fetchone() == (0,)
        assert store.con.execute("SELECT is_nullable FROM information_schema.columns WHERE table_name = "
                                 "'predictions' AND column_name = 'request_key'").fetchone() == ("NO",)
    assert_frame_equal(_split(path), _split(fresh))


def test_upgrade_refuses_a_duckdb_file_that_is_no_vdrift_store(tmp_path, capsys):
    plain = tmp_path / "plain.duckdb"
    duckdb.connect(str(plain)).execute("CREATE TABLE t (a INTEGER)").close()
    assert main(["upgrade", "--db", str(plain)]) == 2
    assert "is not a vdrift store" in capsys.readouterr().err
    con = duckdb.connect(str(plain), read_only=True)
    assert con.execute("SELECT table_name FROM information_schema.tables").fetchall() == [("t",)]
    con.close()
