"""Quarantine you can work with: export in the original columns, release after a mapping fix, purge."""

from __future__ import annotations

import polars as pl
import pytest

from tests.conftest import write
from toolkit import Store
from toolkit.cli import main
from toolkit.errors import InputError
from toolkit.store import quarantine as q

ROWS = ("request_id,ts,model_version,prediction,score,amount\n"
        "a,09/11/2026 10:00,v1,ok,0.5,1.5\n"
        "b,09/11/2026 11:00,v1,ok,0.7,2.5\n"
        "c,2026-11-09 12:00,v1,ok,high,3.5\n"
        "d,10/11/2026 09:30,v2,ok,0.1,4.5\n")


def _first_wrong_try(tmp_path) -> tuple[Store, object]:
    f = write(tmp_path / "p.csv", ROWS)
    store = Store(tmp_path / "s.duckdb")
    r = store.ingest("predictions", f).results[0]
    assert (r.accepted, r.quarantined) == (0, 4)  # day-first times are not ISO 8601; "high" is no number
    return store, r


def test_release_after_a_mapping_fix_loads_what_now_passes_and_requarantines_the_rest(tmp_path):
    store, first = _first_wrong_try(tmp_path)
    with store:
        fixed = {"timestamps": {"format": "%d/%m/%Y %H:%M"}}
        result = q.release(store, q.Selection(ingest_id=first.ingest_id, reason="cannot read ts"), mapping=fixed)
        assert (result.released, result.accepted, result.quarantined) == (3, 3, 0)
        got = store.con.execute("SELECT request_id, ts, amount FROM predictions ORDER BY 1").fetchall()
        assert [(r, str(t), a) for r, t, a in got] == [
            ("a", "2026-11-09 10:00:00", 1.5), ("b", "2026-11-09 11:00:00", 2.5), ("d", "2026-11-10 09:30:00", 4.5)]
        left = store.quarantine()
        assert left["reason"].to_list() == ['cannot read score as double: "high" (expected a double number)']
        log = store.ingest_log()
        assert log.filter(pl.col("kind") == "release")["rows_read"].to_list() == [3]
        # the remaining row fails again under the fixed mapping with its (new) reason; nothing is lost
        again = q.release(store, q.Selection(reason="score"), mapping=fixed)
        assert (again.released, again.accepted, again.quarantined) == (1, 0, 1)
        assert store.counts()["quarantine"] == 1 and store.counts()["predictions"] == 3


def test_export_writes_the_original_columns_and_the_fixed_file_ingests(tmp_path):
    store, first = _first_wrong_try(tmp_path)
    with store:
        out = tmp_path / "fix.csv"
        res = q.export(store, out, q.Selection(reason="score"))
        assert res.rows == 1 and res.columns == ("request_id", "ts", "model_version", "prediction", "score", "amount")
        assert out.read_text() == ("request_id,ts,model_version,prediction,score,amount\n"
                                   "c,2026-11-09 12:00,v1,ok,high,3.5\n")
        out.write_text(out.read_text().replace("high", "0.9"))
        r = store.ingest("predictions", out).results[0]
        assert (r.accepted, r.quarantined) == (1, 0)
        for ending in ("jsonl", "parquet"):
            assert q.export(store, tmp_path / f"all.{ending}").rows == 4


def test_purge_drops_one_ingests_quarantine_and_leaves_a_record(tmp_path, capsys):
    store, first = _first_wrong_try(tmp_path)
    db = store.path
    store.close()
    assert main(["quarantine", "--db", str(db), "--purge", "--ingest", str(first.ingest_id),
                 "--reason", "cannot read ts"]) == 0
    assert "purged 3 quarantined row(s) of ingest 1, reason containing 'cannot read ts'" in capsys.readouterr().out
    with Store(db) as store:
        assert store.counts()["quarantine"] == 1
        rec = store.ingest_log().filter(pl.col("kind") == "purge").row(0, named=True)
        assert (rec["rows_read"], rec["path"]) == (3, "quarantine of ingest 1")
        with pytest.raises(InputError, match="give its id"):
            q.purge(store, q.Selection(reason="score"))
        with pytest.raises(InputError, match="no quarantined row matches ingest 99"):
            q.purge(store, q.Selection(ingest_id=99))


def test_the_cli_shows_exports_and_releases(tmp_path, capsys):
    store, first = _first_wrong_try(tmp_path)
    db = store.path
    store.close()
    assert main(["quarantine", "--db", str(db), "--reason", "timestamp"]) == 0
    out = capsys.readouterr().out
    assert "3 quarantined row(s); by reason:" in out and '"09/11/2026 10:00"' in out
    assert main(["quarantine", "--db", str(db), "--export", str(tmp_path / "q.jsonl")]) == 0
    assert "exported 4 quarantined row(s)" in capsys.readouterr().out
    mapping = write(tmp_path / "m.toml", '[timestamps]\nformat = "%d/%m/%Y %H:%M"\n')
    assert main(["quarantine", "--db", str(db), "--release", "--reason", "timestamp", "--mapping", str(mapping)]) == 0
    assert "released 3 row(s) from quarantine: 3 now stored, 0 quarantined again" in capsys.readouterr().out
    assert main(["quarantine", "--db", str(db), "--mapping", str(mapping)]) == 2
    assert "--mapping goes with --release" in capsys.readouterr().err
