"""Late labels: ``ingest outcomes`` joins labels to stored predictions, idempotent and atomic, with quarantine."""

from __future__ import annotations

import gzip

import polars as pl
import pytest

from tests.conftest import SAMPLES, write
from toolkit import Store, attribute
from toolkit.cli import main

DEMO = SAMPLES / "demo"
BASELINE, COMPARISON = "2026-11-02..2026-11-09", "2026-11-09..2026-11-16"


def _demo() -> pl.DataFrame:
    with gzip.open(DEMO / "predictions.csv.gz", "rt") as fh:
        return pl.read_csv(fh, infer_schema_length=0)


def _store(path, predictions) -> Store:
    store = Store(path)
    store.ingest("artifacts", DEMO / "artifacts.csv")
    store.ingest("deployments", DEMO / "deployments.jsonl")
    store.ingest("predictions", predictions)
    return store


def _split(est) -> dict[str, float]:
    return {r["component"]: r["estimate"] for r in est.to_frame().iter_rows(named=True)}


def test_labels_in_three_batches_give_the_split_of_labels_present_from_the_start(tmp_path, capsys):
    demo = _demo()
    labelled = demo.filter(pl.col("outcome").is_not_null() & (pl.col("component") != "shadow"))
    assert labelled.height > 10_000
    unlabelled = tmp_path / "unlabelled.csv"
    demo.with_columns(pl.lit(None, pl.Utf8).alias("outcome")).write_csv(unlabelled)
    labels = (labelled.select("request_id", "outcome", "ts").unique("request_id", keep="first")
              .with_columns(pl.col("ts").alias("labeled_at"), batch=pl.col("request_id").hash(7) % 3))
    paths = []
    for b in range(3):
        path = tmp_path / f"labels_{b}.csv"
        labels.filter(pl.col("batch") == b).select("request_id", "outcome", "labeled_at").write_csv(path)
        paths.append(path)
    with _store(tmp_path / "a.duckdb", DEMO / "predictions.csv.gz") as a, \
         _store(tmp_path / "b.duckdb", unlabelled) as b:
        metric = "accuracy"
        want = attribute(a, metric=metric, baseline=BASELINE, comparison=COMPARISON, method="regression")
        with pytest.raises(Exception, match="no row in these windows has an outcome yet"):
            attribute(b, metric=metric, baseline=BASELINE, comparison=COMPARISON, method="regression")
        for i, path in enumerate(paths):
            r = b.ingest("outcomes", path).results[0]
            assert (r.rows_read, r.accepted, r.quarantined) == (len(pl.read_csv(path)), r.rows_read, 0)
            if i == 1:  # two of three batches in: the attribution says how much is still unlabelled
                part = attribute(b, metric=metric, baseline=BASELINE, comparison=COMPARISON, method="regression")
                rows = part.diagnostics.details["unlabeled"]
                assert {d["window"] for d in rows} == {"baseline", "comparison"}
                for d in rows:
                    n_unlabelled = b.con.execute(
                        "SELECT count(*) FROM predictions_resolved WHERE resolved_version = ? AND outcome IS NULL "
                        "AND component <> 'shadow' AND ts >= ? AND ts < ?",
                        [d["version"], *(("2026-11-02", "2026-11-09") if d["window"] == "baseline"
                                         else ("2026-11-09", "2026-11-16"))]).fetchone()[0]
                    assert d["unlabeled"] == n_unlabelled
                assert "still unlabelled: baseline v" in part.summary()
        got = attribute(b, metric=metric, baseline=BASELINE, comparison=COMPARISON, method="regression")
        assert _split(got) == pytest.approx(_split(want), abs=1e-12)
        assert b.counts()["outcomes"] == labels.height
        arrived = b.con.execute("SELECT count(*) FROM outcomes WHERE arrived_at IS NOT NULL").fetchone()[0]
        assert arrived == labels.height


def test_unmatched_conflicting_and_repeated_labels_are_quarantined_naming_the_value(tmp_path):
    preds = write(tmp_path / "p.csv", "request_id,ts,model_version,prediction,outcome\n"
                  "a,2026-11-09 10:00,v1,yes,\nb,2026-11-09 10:01,v1,no,\nc,2026-11-09 10:02,v1,no,no\n")
    with _store(tmp_path / "s.duckdb", preds) as store:
        first = write(tmp_path / "l1.csv", "request_id,outcome\na,yes\nzz,no\nc,yes\nc,no\n")
        r = store.ingest("outcomes", first).results[0]
        assert (r.rows_read, r.accepted, r.quarantined) == (4, 1, 3)
        reasons = set(store.quarantine(ingest_id=r.ingest_id)["reason"].to_list())
        assert reasons == {
            'no stored prediction has request_id "zz" (ingest its predictions, then release it with vdrift '
            "quarantine --release)",
            'conflicting label for request_id "c": "yes" here, "no" in the predictions log',
            'duplicate label for request_id "c" within the file (first kept)',
        }
        again = write(tmp_path / "l2.csv", "request_id,outcome\na,no\nb,no\na,yes\n")
        r2 = store.ingest("outcomes", again).results[0]
        assert (r2.accepted, r2.quarantined) == (1, 2)
        reasons = set(store.quarantine(ingest_id=r2.ingest_id)["reason"].to_list())
        assert f'conflicting label for request_id "a": "no" here, "yes" stored by ingest {r.ingest_id}' in reasons
        assert store.con.execute("SELECT request_id, outcome FROM predictions ORDER BY 1").fetchall() == [
            ("a", "yes"), ("b", "no"), ("c", "no")]
        # the same file again is skipped; --force replaces it and leaves the same state
        assert store.ingest("outcomes", first).results[0].status == "skipped"
        store.ingest("outcomes", first, force=True)
        assert store.con.execute("SELECT request_id, outcome FROM predictions ORDER BY 1").fetchall() == [
            ("a", "yes"), ("b", "no"), ("c", "no")]
        assert store.con.execute("SELECT count(*) FROM outcomes").fetchone()[0] == 2


def test_the_cli_ingests_labels(tmp_path, capsys):
    preds = write(tmp_path / "p.csv", "request_id,ts,model_version,prediction\na,2026-11-09 10:00,v1,yes\n")
    labels = write(tmp_path / "l.csv", "id,label,when\na,yes,2026-11-12 08:00\n")
    mapping = write(tmp_path / "m.toml", '[columns]\nrequest_id = "id"\noutcome = "label"\nlabeled_at = "when"\n')
    db = tmp_path / "s.duckdb"
    _store(db, preds).close()
    assert main(["ingest", "outcomes", str(labels), "--db", str(db), "--mapping", str(mapping)]) == 0
    assert "1 rows read = 1 accepted + 0 quarantined" in capsys.readouterr().out
    with Store(db) as store:
        assert store.con.execute("SELECT outcome FROM predictions").fetchone()[0] == "yes"
        assert str(store.con.execute("SELECT labeled_at FROM outcomes").fetchone()[0]) == "2026-11-12 08:00:00"
