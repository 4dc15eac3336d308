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
    assert "schema version 1, older than this vdrift's 2" in err and "vdrift upgrade --db" in err
    assert main(["upgrade", "--db", str(old)]) == 0
    assert "schema v2" in capsys.readouterr().out
    con = duckdb.connect(str(old), read_only=True)
    assert con.execute("SELECT count(*), count(request_key) FROM predictions").fetchone() == (41_634, 41_634)
    assert con.execute("SELECT is_nullable FROM information_schema.columns WHERE table_name = 'predictions' "
                       "AND column_name = 'request_key'").fetchone() == ("NO",)
    con.close()
    assert_frame_equal(_split(old), _split(fresh))


def test_an_attached_version_1_store_computes_the_key_on_read_after_the_upgrade(fresh, tmp_path, capsys):
    lake = tmp_path / "lake"
    with Store(fresh, read_only=True) as store:
        store.con.execute("COPY (SELECT * EXCLUDE (ingest_id, request_key), CAST(ts AS DATE) AS date "
                          f"FROM predictions ORDER BY ts) TO {sql_literal(str(lake))} "
                          "(FORMAT parquet, PARTITION_BY (date))")
    path = tmp_path / "attached.duckdb"
    with Store(path) as store:
        _history(store)
        store.attach(lake, partitioning="hive")
    _as_version_1(path, view=True)
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
