"""The audit's scale design gives the same answers as the row-by-row definition.

:func:`toolkit.audit.census.build_cells` reads the rows once into pre-cells
and attaches the intended state to pre-cells; the reference below is the
definition it replaces, written row by row (every request ASOF-joined to the
intended-state pieces). Both must give the same cells, including when
deployment events fall inside a bucket and the window does not start on a
bucket boundary. The repeated-input search runs in two passes; the tests
here cover digests that make one reported label two resolved versions and
one resolved version two labels.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from toolkit import Store
from toolkit.audit import AuditThresholds, audit
from toolkit.audit import census, intended
from toolkit.audit.intended import IV, PIECE, STREAMS

from .test_audit_support import deploy, digest, insert, new_store, predictions, t, traffic

DEMO = Path(__file__).resolve().parents[2] / "data" / "samples" / "demo"
REBUILT = "sha256-v1-rebuilt-0123456789"

# Row-level definition of the cells: every request is attached to its piece by an ASOF join.
_REFERENCE_SQL = f"""
CREATE OR REPLACE TEMP TABLE _reference_cells AS
WITH r AS (
  SELECT p.request_id, p.ts, p.component, p.region, p.instance_id,
         p.resolved_version, p.model_version, p.version_status,
         p.feature_version, p.expected_feature_version,
         (p.component = 'cache' OR coalesce(p.cache_hit, false)) AS is_cache,
         CASE WHEN p.component = 'shadow' THEN NULL
              WHEN p.component = 'cache' OR coalesce(p.cache_hit, false) THEN ?
              WHEN p.component = 'online' THEN 'serving'
              WHEN p.component = 'batch' THEN ? END AS gov
  FROM predictions_resolved AS p
  WHERE p.ts >= ? AND p.ts < ?
),
r2 AS (
  SELECT r.*, coalesce(st.eff_scope, 'all') AS eff_scope, coalesce(fst.eff_scope, 'all') AS fp_scope
  FROM r
  LEFT JOIN {STREAMS} AS st ON st.component = r.gov AND st.eff_scope = r.region
  LEFT JOIN {STREAMS} AS fst ON fst.component = 'feature_pipeline' AND fst.eff_scope = r.region
),
r3 AS (
  SELECT r2.*, pc.piece_id, pc.pos, pc.overdue
  FROM r2 ASOF LEFT JOIN {PIECE} AS pc
    ON pc.component = r2.gov AND pc.eff_scope = r2.eff_scope AND r2.ts >= pc.piece_start
),
r4 AS (
  SELECT r3.*, fp.pos AS fp_pos
  FROM r3 ASOF LEFT JOIN {PIECE} AS fp
    ON fp.component = 'feature_pipeline' AND fp.eff_scope = r3.fp_scope AND r3.ts >= fp.piece_start
),
c AS (
  SELECT date_trunc(?, ts) AS bucket_start, component, region, instance_id,
         resolved_version, model_version, version_status, feature_version,
         expected_feature_version, is_cache,
         gov, eff_scope, piece_id, pos, overdue, fp_scope, fp_pos,
         count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts,
         min_by(request_id, ts, ?) AS examples
  FROM r4
  GROUP BY ALL
)
SELECT c.*,
       c.pos IS NOT NULL AS governed,
       iv.version IS NOT NULL AS in_intent,
       CASE WHEN c.fp_pos IS NULL OR c.feature_version IS NULL THEN NULL
            ELSE fiv.version IS NOT NULL END AS fp_in_intent
FROM c
LEFT JOIN {IV} AS iv
  ON iv.component = c.gov AND iv.eff_scope = c.eff_scope AND iv.pos = c.pos
 AND iv.version = c.resolved_version
LEFT JOIN {IV} AS fiv
  ON fiv.component = 'feature_pipeline' AND fiv.eff_scope = c.fp_scope AND fiv.pos = c.fp_pos
 AND fiv.version = c.feature_version
"""


def _cells(store: Store, start: dt.datetime, end: dt.datetime, bucket: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(cells from build_cells, cells from the row-level reference), rows in one order."""
    con = store.con
    th = AuditThresholds()
    intended.build_intended(con, start, end, th)
    try:
        census.build_cells(con, start, end, bucket, th.n_examples)
        gov = intended.governing_components(con)
        con.execute(_REFERENCE_SQL, [gov["cache"], gov["batch"], start, end, bucket, th.n_examples])
        keys = ["bucket_start", "component", "region", "instance_id", "resolved_version", "model_version",
                "version_status", "feature_version", "is_cache", "piece_id", "fp_pos"]
        got = con.execute(f"SELECT * FROM {census.CELLS}").pl().sort(keys, nulls_last=True)
        ref = con.execute("SELECT * FROM _reference_cells").pl().sort(keys, nulls_last=True)
    finally:
        con.execute("DROP TABLE IF EXISTS _reference_cells")
        census.drop_temp(con)
        intended.drop_temp(con)
    return got, ref


def _mid_bucket_store() -> Store:
    """Serving, feature-pipeline, cache and batch histories whose events fall inside hours and days."""
    store = new_store((("v1", "fp-1"), ("v2", "fp-2"), ("v3", "fp-1")))
    # a rebuilt v1 artifact: two digests resolve to v1, their rows share cells
    insert(store, "artifacts", [{"version": "v1", "artifact_hash": REBUILT, "feature_version": "fp-1"}])
    deploy(store, [
        {"ts": t(-10), "event": "deploy", "version": "v1"},
        {"ts": t(5.5), "event": "rollout_start", "scope": "eu", "version": "v2", "traffic_pct": 20.0,
         "expected_end": t(8.6), "actor": "ann"},
        {"ts": t(7.25), "event": "rollout_step", "scope": "eu", "version": "v2", "traffic_pct": 50.0},
        {"ts": t(9.75), "event": "rollout_complete", "scope": "eu", "version": "v2"},
        {"ts": t(-10), "event": "deploy", "component": "feature_pipeline", "version": "fp-1"},
        {"ts": t(6.4), "event": "deploy", "component": "feature_pipeline", "scope": "eu", "version": "fp-2"},
        {"ts": t(8.1), "event": "rollback", "component": "feature_pipeline", "scope": "eu", "version": "fp-1"},
        {"ts": t(-10), "event": "deploy", "component": "batch", "version": "v1"},
        {"ts": t(3.3), "event": "deploy", "component": "batch", "version": "v3"},
    ])
    predictions(
        store,
        traffic(0, 12, every_min=7, version="v1", instance="eu-1", feature_version="fp-1"),
        traffic(5.6, 12, every_min=11, version="v2", instance="eu-2", feature_version="fp-2"),
        traffic(0, 12, every_min=13, version="v1", region="us", instance="us-1"),
        traffic(0, 12, every_min=17, version="v1", component="cache", instance="eu-c"),
        traffic(0, 12, every_min=19, version="v1", cache_hit=True, instance="eu-h"),
        traffic(0, 12, every_min=23, version="v1", component="batch", instance="eu-b1"),
        traffic(2, 12, every_min=29, version="v3", component="batch", instance="eu-b2"),
        traffic(0, 12, every_min=31, version="v2", reported="v1", instance="eu-m"),
        traffic(0, 12, every_min=37, version="v1", artifact=None, instance="eu-u"),
        traffic(1, 11, every_min=41, version="v2", component="shadow", instance="eu-s"),
        # interleaved with eu-1's other v1 rows, never at the same time
        traffic(0.5 / 60, 12, every_min=10, version="v1", artifact=REBUILT, instance="eu-1", feature_version="fp-1"),
        traffic(3, 9, every_min=43, version="v1", artifact="sha256-nobody-knows-this", instance="eu-x"),
    )
    return store


#: The pre-cell pass reads a row's epoch from a CASE over the few boundaries inside buckets (the default
#: here), or from the range join with the epochs table when there are more than ``EPOCH_CASE_MAX`` (-1: always).
EPOCH_PATHS = pytest.mark.parametrize("case_max", [census.EPOCH_CASE_MAX, -1], ids=["case", "join"])


@EPOCH_PATHS
@pytest.mark.parametrize("bucket", ["hour", "day"])
@pytest.mark.parametrize("window", [(t(0), t(12)), (t(0.5), t(11.3)), (t(6.9), t(7.7))])
def test_cells_match_the_row_level_definition(bucket: str, window: tuple[dt.datetime, dt.datetime], case_max: int,
                                              monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(census, "EPOCH_CASE_MAX", case_max)
    store = _mid_bucket_store()
    got, ref = _cells(store, *window, bucket)
    assert got.height > 0
    assert got.columns == ref.columns
    assert got.to_dicts() == ref.to_dicts()  # examples included: no two requests of a cell share a time
    # the serving rollout cut the eu online cells inside the bucket: both pieces are there
    eu_v1 = got.filter(pl.col("instance_id") == "eu-1")
    assert eu_v1["n"].sum() == ref.filter(pl.col("instance_id") == "eu-1")["n"].sum()
    assert set(got["version_status"]) == {"verified", "mismatch", "unverified", "unregistered"}
    assert "unregistered:sha256-nobod" in set(got["resolved_version"])
    if window == (t(0), t(12)) and bucket == "day":
        # one day bucket, cut by deploy / rollout_start / step / deadline / complete and by the
        # feature pipeline's deploy and rollback
        assert eu_v1["pos"].n_unique() == 4
        assert eu_v1["piece_id"].n_unique() == 5
        assert eu_v1["fp_pos"].n_unique() == 3
        assert eu_v1["overdue"].sum() == 1


@EPOCH_PATHS
@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_cells_match_the_row_level_definition_on_the_demo_sample(tmp_path: Path, bucket: str, case_max: int,
                                                                 monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(census, "EPOCH_CASE_MAX", case_max)
    with Store(tmp_path / "demo.duckdb") as store:
        store.ingest("artifacts", DEMO / "artifacts.csv")
        store.ingest("deployments", DEMO / "deployments.jsonl")
        store.ingest("predictions", DEMO / "predictions.csv.gz")
        start, end = store.time_span()
        got, ref = _cells(store, start, end + dt.timedelta(seconds=1), bucket)
    assert got.height > 100
    # requests sharing a timestamp inside a cell may be picked as examples either way
    assert got.drop("examples").to_dicts() == ref.drop("examples").to_dicts()
    assert got["n"].sum() == ref["n"].sum()


def test_finding_lists_are_sorted_and_examples_follow_time():
    store = new_store()
    deploy(store, [{"ts": t(-10), "event": "deploy", "version": "v1"}])
    predictions(store, traffic(0, 5, every_min=10, version="v1", instance="eu-9"))
    # the label says v1 but the artifact is v2's, on two instances in the same hour buckets
    rows = []
    for instance, offset, prefix in (("eu-3", 5, "b"), ("eu-2", 0, "a")):
        for k in range(6):
            rows.append({"request_id": f"{prefix}-{k}", "ts": t(0) + dt.timedelta(minutes=offset + 10 * k),
                         "model_version": "v1", "prediction": "approve", "artifact_hash": digest("v2"),
                         "component": "online", "region": "eu", "instance_id": instance})
    insert(store, "predictions", rows)
    first = audit(store, bucket="hour")
    mismatch = first.findings.filter(pl.col("kind") == "artifact_mismatch").row(0, named=True)
    assert json.loads(mismatch["evidence"])["instances"] == ["eu-2", "eu-3"]
    # eu-2's cell starts first (t0 + 0 min), so its earliest requests are the examples
    assert mismatch["examples"] == ["a-0", "a-1", "a-2"]
    assert audit(store, bucket="hour").findings.equals(first.findings)


def _with_amount(store: Store) -> None:
    store.con.execute("ALTER TABLE predictions ADD COLUMN amount DOUBLE")
    store.con.execute("INSERT INTO covariates VALUES ('amount', 'DOUBLE', 0)")
    store.refresh_views()


def test_repeated_inputs_follow_the_resolved_version_not_the_label():
    store = new_store()
    deploy(store, [{"ts": t(-10), "event": "deploy", "version": "v1"}])
    _with_amount(store)
    base = {"component": "online", "region": "eu", "instance_id": "eu-1", "model_version": "v1"}
    rows = []
    for i in range(30):
        # same label v1 twice; the second answer came from v2's artifact: a real v1/v2 pair
        rows.append({**base, "request_id": f"m-{i}-a", "ts": t(1 + i / 10), "entity_id": f"m{i}", "amount": 1.0 + i,
                     "artifact_hash": digest("v1"), "prediction": "approve"})
        rows.append({**base, "request_id": f"m-{i}-b", "ts": t(1 + i / 10) + dt.timedelta(seconds=5),
                     "entity_id": f"m{i}", "amount": 1.0 + i, "artifact_hash": digest("v2"),
                     "prediction": "decline" if i < 4 else "approve"})
        # labels v1 and v2 but both answers from v1's artifact: one resolved version, no pair
        rows.append({**base, "request_id": f"s-{i}-a", "ts": t(5 + i / 10), "entity_id": f"s{i}", "amount": 1.0 + i,
                     "artifact_hash": digest("v1"), "prediction": "approve"})
        rows.append({**base, "request_id": f"s-{i}-b", "ts": t(5 + i / 10) + dt.timedelta(seconds=5),
                     "entity_id": f"s{i}", "amount": 1.0 + i, "model_version": "v2",
                     "artifact_hash": digest("v1"), "prediction": "decline"})
        # no digest: resolved by label, v1 and v2 differ
        rows.append({**base, "request_id": f"u-{i}-a", "ts": t(8 + i / 10), "entity_id": f"u{i}", "amount": 1.0 + i,
                     "artifact_hash": None, "prediction": "approve"})
        rows.append({**base, "request_id": f"u-{i}-b", "ts": t(8 + i / 10) + dt.timedelta(seconds=5),
                     "entity_id": f"u{i}", "amount": 1.0 + i, "model_version": "v2", "artifact_hash": None,
                     "prediction": "approve"})
    insert(store, "predictions", rows)
    result = audit(store, bucket="hour")
    div = [d for d in result.findings.to_dicts()
           if d["kind"] == "prediction_divergence" and json.loads(d["evidence"])["source"] == "repeated_inputs"]
    assert len(div) == 1
    found = div[0]
    assert found["versions"] == ["v1", "v2"]
    assert found["n_requests"] == 60  # the m- and u- inputs; the s- inputs were answered by v1 twice
    assert json.loads(found["evidence"])["differing"] == 4
    assert found["examples"] == ["m-0-a", "m-1-a", "m-2-a"]  # differing pairs first, in time order
    assert (found["start"], found["end"]) == (t(1), t(1.3) + dt.timedelta(seconds=5))
