"""Hand-built cases for every audit detector, with their edge cases.

Each test writes its whole world (registry, deployment history, traffic at a
fixed cadence) and the expected numbers are counted by hand in comments:
``traffic(a, b, every_min=m)`` logs one request at t(a) + k*m minutes for
every k with t < t(b).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import polars as pl
import pytest

from toolkit.audit import AuditThresholds, audit
from toolkit.errors import InputError

from .test_audit_support import deploy, digest, insert, new_store, predictions, t, traffic


def kinds(result) -> list[str]:
    return result.findings["kind"].to_list()


def only(result, kind: str) -> dict:
    rows = result.findings.filter(pl.col("kind") == kind)
    assert rows.height == 1, f"expected one {kind}, got {rows.height}:\n{result.summary()}"
    row = rows.row(0, named=True)
    row["evidence"] = json.loads(row["evidence"])
    return row


# -- intended state --------------------------------------------------------------
def test_intended_state_replays_a_rollout_with_region_override():
    store = new_store()
    deploy(store, [
        {"ts": t(-10), "event": "deploy", "version": "v1"},
        {"ts": t(10), "event": "rollout_start", "scope": "eu", "version": "v2", "traffic_pct": 20.0,
         "expected_end": t(30), "actor": "ann"},
        {"ts": t(20), "event": "rollout_step", "scope": "eu", "version": "v2", "traffic_pct": 50.0},
        {"ts": t(25), "event": "rollout_complete", "scope": "eu", "version": "v2"},
    ])
    predictions(
        store,
        traffic(0, 25, version="v1"),
        traffic(10, 25, every_min=30, version="v2", instance="eu-5"),
        traffic(25, 40, version="v2"),
        traffic(0, 40, version="v1", region="us", instance="us-1"),
    )
    result = audit(store, bucket="hour")
    got = result.intended.select("start", "end", "scope", "version", "traffic_share", "source_event", "actor",
                                 "expected_end")
    expected = [
        (t(-10), None, "all", "v1", 1.0, "deploy", None, None),
        (t(-10), t(10), "eu", "v1", 1.0, "deploy", None, None),
        (t(10), t(20), "eu", "v1", 0.8, "rollout_start", "ann", t(30)),
        (t(10), t(20), "eu", "v2", 0.2, "rollout_start", "ann", t(30)),
        (t(20), t(25), "eu", "v1", 0.5, "rollout_step", "ann", t(30)),  # actor and deadline inherited
        (t(20), t(25), "eu", "v2", 0.5, "rollout_step", "ann", t(30)),
        (t(25), None, "eu", "v2", 1.0, "rollout_complete", None, None),
    ]
    rows = sorted(got.iter_rows(), key=lambda r: (r[2], r[0], r[3]))
    assert [(r[0], r[1], r[2], r[3], round(r[4], 6), r[5], r[6], r[7]) for r in rows] == sorted(
        expected, key=lambda r: (r[2], r[0], r[3])
    )
    # completed before its deadline, owned, verified digests: designed diversity at info only
    assert result.max_severity == "info"
    designed = only(result, "designed_multi_version")
    assert designed["severity"] == "info"
    assert designed["versions"] == ["v1", "v2"]
    assert designed["evidence"]["owner"] == "ann"
    assert designed["evidence"]["failed_tests"] == []
    assert designed["end"] == t(25)
    assert "stuck_rollout" not in kinds(result)
    assert result.overall_score == 1.0


# -- stuck rollout ---------------------------------------------------------------
_DEFAULT_END = object()  # None is a real value here: a rollout with no expected end


def _canary_store(expected_end=_DEFAULT_END):
    expected_end = t(30) if expected_end is _DEFAULT_END else expected_end
    store = new_store()
    deploy(store, [
        {"ts": t(-10), "event": "deploy", "version": "v1"},
        {"ts": t(10), "event": "rollout_start", "scope": "eu", "version": "v2", "traffic_pct": 20.0,
         "expected_end": expected_end, "actor": "ann"},
    ])
    predictions(
        store,
        traffic(0, 60, version="v1"),
        traffic(10, 60, every_min=40, version="v2", instance="eu-5"),
        traffic(0, 60, version="v1", region="us", instance="us-1"),
    )
    return store


def test_stuck_rollout_counts_the_requests_after_the_deadline():
    result = audit(_canary_store(), bucket="hour")
    stuck = only(result, "stuck_rollout")
    # after t(30): v1 every 10 min in [30, 60) = 180; v2 at 10 h + k*40 min >= 30 h -> k = 30..74 = 45
    assert stuck["n_requests"] == 225
    assert stuck["share"] == pytest.approx(45 / 225)
    assert stuck["evidence"]["requests_by_version_after_deadline"] == {"v1": 180, "v2": 45}
    assert (stuck["component"], stuck["region"], stuck["instance_id"]) == ("online", "eu", "eu-5")
    assert stuck["versions"] == ["v1", "v2"]
    assert stuck["start"] == t(30)
    assert stuck["end"] == t(60) - dt.timedelta(minutes=10)
    assert stuck["severity"] == "warning"
    designed = only(result, "designed_multi_version")
    assert designed["severity"] == "warning"
    assert designed["evidence"]["failed_tests"] == ["time_bound"]


def test_rollout_without_expected_end_uses_the_default_age():
    store = _canary_store(expected_end=None)
    result = audit(store, bucket="hour", thresholds=AuditThresholds(max_rollout_age=dt.timedelta(hours=12)))
    stuck = only(result, "stuck_rollout")
    assert stuck["start"] == t(22)  # rollout_start t(10) + 12 h
    # v1 in [22, 60): 38 h * 6 = 228; v2 at 10 h + k*40 min in [22, 60): k = 18..74 = 57
    assert stuck["n_requests"] == 228 + 57
    designed = only(result, "designed_multi_version")
    assert "no expected_end was declared" in designed["explanation"]


def test_rollout_before_its_deadline_is_not_stuck():
    result = audit(_canary_store(), end=t(29), bucket="hour")
    assert "stuck_rollout" not in kinds(result)
    assert only(result, "designed_multi_version")["severity"] == "info"


# -- incomplete rollback and batch/online divergence ------------------------------
def _rollback_store(batch_fixed_at: float):
    store = new_store()
    deploy(store, [
        {"ts": t(-10), "event": "deploy", "version": "v1"},
        {"ts": t(-10), "event": "deploy", "component": "batch", "version": "v1"},
        {"ts": t(10), "event": "deploy", "version": "v2"},
        {"ts": t(10), "event": "deploy", "component": "batch", "version": "v2"},
        {"ts": t(20), "event": "rollback", "version": "v1", "actor": "rui"},
        {"ts": t(20), "event": "rollback", "component": "batch", "version": "v1", "actor": "rui"},
    ])
    predictions(
        store,
        traffic(0, 10, version="v1"),
        traffic(10, 20, version="v2"),
        traffic(20, 40, version="v1"),
        traffic(0, 10, every_min=30, version="v1", component="batch", instance="eu-batch"),
        traffic(10, batch_fixed_at, every_min=30, version="v2", component="batch", instance="eu-batch"),
        traffic(batch_fixed_at, 40, every_min=30, version="v1", component="batch", instance="eu-batch"),
    )
    return store


def test_incomplete_rollback_on_batch():
    result = audit(_rollback_store(batch_fixed_at=26), bucket="hour")
    rb = only(result, "incomplete_rollback")
    # batch v2 rows at 10, 10.5, ..., 25.5 h; after the rollback at 20 h: 20 .. 25.5 = 12 rows
    assert rb["n_requests"] == 12
    assert (rb["component"], rb["region"], rb["versions"]) == ("batch", "eu", ["v2"])
    assert rb["start"] == t(20) and rb["end"] == t(25.5)
    assert rb["severity"] == "critical"
    assert rb["evidence"]["lasted_seconds"] == 5.5 * 3600
    div = only(result, "batch_online_divergence")
    assert div["n_requests"] == 12
    assert div["versions"] == ["v2", "v1"]
    assert div["severity"] == "warning"
    assert (div["start"], div["end"]) == (t(20), t(25.5))


def test_rollback_that_completed_everywhere_is_clean():
    result = audit(_rollback_store(batch_fixed_at=20), bucket="hour")
    assert "incomplete_rollback" not in kinds(result)
    assert "batch_online_divergence" not in kinds(result)
    assert result.findings.height == 0
    assert result.overall_score == 1.0


def test_feature_pipeline_rollback_that_did_not_reach_the_rows():
    store = new_store([("v1", "fp-1"), ("v2", "fp-2")])
    deploy(store, [
        {"ts": t(-10), "event": "deploy", "version": "v1"},
        {"ts": t(-10), "event": "deploy", "component": "feature_pipeline", "version": "fp-1"},
        {"ts": t(5), "event": "deploy", "component": "feature_pipeline", "version": "fp-2"},
        {"ts": t(10), "event": "rollback", "component": "feature_pipeline", "version": "fp-1"},
    ])
    predictions(
        store,
        traffic(0, 5, version="v1", feature_version="fp-1"),
        traffic(5, 13, version="v1", feature_version="fp-2"),
        traffic(13, 20, version="v1", feature_version="fp-1"),
    )
    result = audit(store, bucket="hour")
    rb = only(result, "incomplete_rollback")
    # fp-2 rows after the rollback at 10 h: [10, 13) every 10 min = 18
    assert (rb["component"], rb["n_requests"], rb["start"]) == ("feature_pipeline", 18, t(10))
    assert rb["evidence"]["feature_version"] == "fp-2"
    pre = only(result, "preprocessing_mismatch")
    # every fp-2 row served by v1 (expects fp-1): [5, 13) = 48
    assert pre["n_requests"] == 48
    assert pre["versions"] == ["v1"]
    assert pre["evidence"]["expected_feature_version"] == "fp-1"


# -- abandoned experiment --------------------------------------------------------
def _experiment_store(end_at: float | None):
    store = new_store()
    events = [
        {"ts": t(-10), "event": "deploy", "version": "v1"},
        {"ts": t(5), "event": "experiment_start", "version": "v2", "traffic_pct": 50.0, "expected_end": t(20),
         "actor": "bo", "experiment": "exp1"},
    ]
    if end_at is not None:
        events.append({"ts": t(end_at), "event": "experiment_end", "version": "v2", "experiment": "exp1"})
    deploy(store, events)
    stop = end_at if end_at is not None else 40
    predictions(
        store,
        traffic(0, stop, version="v1", experiment=None),
        traffic(5, 40, version="v2", instance="eu-2"),
        traffic(stop, 40, version="v2") if end_at is not None else [],
    )
    return store


def test_abandoned_experiment():
    result = audit(_experiment_store(end_at=None), bucket="hour")
    ab = only(result, "abandoned_experiment")
    # after t(20): v1 [20, 40) = 120 rows; v2 at 5 h + k*10 min in [20, 40) = 120 rows
    assert ab["n_requests"] == 240
    assert ab["share"] == pytest.approx(0.5)
    assert ab["versions"] == ["v1", "v2"]
    assert ab["start"] == t(20)
    assert ab["evidence"]["experiment"] == "exp1"
    assert "stuck_rollout" not in kinds(result)


def test_experiment_concluded_on_time():
    result = audit(_experiment_store(end_at=18), bucket="hour")
    assert "abandoned_experiment" not in kinds(result)
    designed = only(result, "designed_multi_version")
    assert designed["severity"] == "info"
    assert designed["evidence"]["closed_at"] == t(18).isoformat()
    assert result.max_severity == "info"


# -- artifact and preprocessing mismatch -----------------------------------------
def test_artifact_mismatch_and_unregistered_digest():
    store = new_store()
    deploy(store, [{"ts": t(-10), "event": "deploy", "version": "v1"}])
    predictions(
        store,
        traffic(0, 10, version="v1", instance="eu-1"),
        # eu-2 reports v1 but loads v2's artifact: every 20 min in [0, 10) = 30 rows
        traffic(0, 10, every_min=20, version="v2", reported="v1", instance="eu-2"),
        # eu-3 reports v1 with a digest no registry entry knows: every 30 min = 20 rows
        traffic(0, 10, every_min=30, version="v1", artifact="feedfacecafe0000", instance="eu-3"),
        # eu-4 logs no digest: unverified, not a mismatch
        traffic(0, 10, every_min=30, version="v1", artifact=None, instance="eu-4"),
    )
    result = audit(store, bucket="hour")
    found = result.findings.filter(pl.col("kind") == "artifact_mismatch").sort("instance_id")
    assert found["instance_id"].to_list() == ["eu-2", "eu-3"]
    mismatch, unregistered = found.to_dicts()
    assert mismatch["n_requests"] == 30 and mismatch["versions"] == ["v2"]
    assert mismatch["share"] == pytest.approx(30 / (60 + 30 + 20 + 20))
    assert json.loads(mismatch["evidence"])["reported_version"] == "v1"
    assert unregistered["n_requests"] == 20
    assert unregistered["versions"] == ["unregistered:feedfacecafe"]
    assert json.loads(unregistered["evidence"])["version_status"] == "unregistered"
    assert set(result.findings.filter(pl.col("severity") == "critical")["kind"]) == {"artifact_mismatch"}
    # the loaded v2 was never declared: also an unexpected extra version, service-wide
    unexpected = result.findings.filter(
        (pl.col("kind") == "unexpected_multi_version") & (pl.col("versions").list.first() == "v2")
    )
    assert unexpected.height == 1 and unexpected["region"][0] is None


def test_preprocessing_mismatch():
    store = new_store([("v1", "fp-1")])
    deploy(store, [{"ts": t(-10), "event": "deploy", "version": "v1"}])
    predictions(
        store,
        traffic(0, 5, version="v1", feature_version="fp-1"),
        traffic(5, 10, version="v1", feature_version="fp-9", instance="eu-2"),
        traffic(0, 10, version="v1", feature_version=None, instance="eu-3"),  # not logged: not judged
    )
    result = audit(store, bucket="hour")
    pre = only(result, "preprocessing_mismatch")
    assert pre["n_requests"] == 30
    assert (pre["instance_id"], pre["start"], pre["end"]) == ("eu-2", t(5), t(10) - dt.timedelta(minutes=10))
    assert pre["evidence"]["feature_version"] == "fp-9"
    # share of the scope's requests over the same hours [5, 10): eu-2's 30 and eu-3's 30
    assert pre["share"] == pytest.approx(30 / (30 + 30))


# -- stale cache -----------------------------------------------------------------
def _cache_store(stale_until: float, flush_at: float | None = None, every_min: float = 15):
    store = new_store()
    events = [
        {"ts": t(-10), "event": "deploy", "version": "v1"},
        {"ts": t(10), "event": "deploy", "version": "v2"},
    ]
    if flush_at is not None:
        events.append({"ts": t(flush_at), "event": "cache_flush", "component": "cache"})
    deploy(store, events)
    predictions(
        store,
        traffic(0, 10, version="v1"),
        traffic(10, 30, version="v2"),
        traffic(0, stale_until, every_min=every_min, version="v1", component="cache", instance="eu-cache",
                cache_hit=True),
        traffic(stale_until, 30, every_min=every_min, version="v2", component="cache", instance="eu-cache",
                cache_hit=True),
    )
    return store


def test_stale_cache():
    result = audit(_cache_store(stale_until=14), bucket="hour")
    stale = only(result, "stale_cache")
    # v1 cache hits after the deploy of v2 at 10 h: 10, 10.25, ..., 13.75 = 16
    assert stale["n_requests"] == 16
    assert (stale["start"], stale["end"]) == (t(10), t(13.75))
    assert stale["severity"] == "warning"
    assert stale["evidence"]["lasted_seconds"] == 3.75 * 3600
    assert "incomplete_rollback" not in kinds(result)  # a deploy, not a rollback


def test_stale_cache_after_a_flush_is_critical():
    result = audit(_cache_store(stale_until=14, flush_at=12), bucket="hour")
    assert only(result, "stale_cache")["severity"] == "critical"


def test_cache_within_its_time_to_live_is_not_stale():
    # v1 hits every 5 min until 10:25, within the default 1 h cache grace
    result = audit(_cache_store(stale_until=10.5, every_min=5), bucket="hour")
    assert "stale_cache" not in kinds(result)


# -- batch/online divergence ---------------------------------------------------------
def _batch_store(batch_history: bool):
    store = new_store()
    events = [
        {"ts": t(-10), "event": "deploy", "version": "v1"},
        {"ts": t(10), "event": "deploy", "version": "v2"},
    ]
    if batch_history:
        events.append({"ts": t(-10), "event": "deploy", "component": "batch", "version": "v1"})
    deploy(store, events)
    predictions(
        store,
        traffic(0, 10, version="v1"),
        traffic(10, 30, version="v2"),
        traffic(0, 30, every_min=60, version="v1", component="batch", instance="eu-batch"),
    )
    return store


def test_batch_online_divergence_undeclared():
    result = audit(_batch_store(batch_history=False), bucket="hour")
    div = only(result, "batch_online_divergence")
    # batch v1 once an hour in [10, 30) = 20 rows while online serves v2
    assert div["n_requests"] == 20
    assert div["severity"] == "warning"
    assert div["versions"] == ["v1", "v2"]
    assert "unexpected_multi_version" not in kinds(result)


def test_batch_online_divergence_declared_by_batch_history_is_info():
    result = audit(_batch_store(batch_history=True), bucket="hour")
    div = only(result, "batch_online_divergence")
    assert div["severity"] == "info"
    assert div["evidence"]["declared_by_batch_history"] is True


# -- unexpected multi-version ----------------------------------------------------------
def test_unexpected_multi_version_and_consistency():
    store = new_store()
    deploy(store, [{"ts": t(-10), "event": "deploy", "version": "v1"}])
    predictions(
        store,
        traffic(0, 20, version="v1"),
        traffic(5, 15, version="v2", instance="eu-3"),
    )
    result = audit(store, bucket="hour")
    un = only(result, "unexpected_multi_version")
    assert un["n_requests"] == 60
    assert un["share"] == pytest.approx(0.5)  # 60 of the 120 online requests in hours 5..14
    assert un["versions"] == ["v2", "v1"]
    assert un["region"] is None and un["evidence"]["regions"] == ["eu"]
    assert (un["start"], un["end"]) == (t(5), t(15) - dt.timedelta(minutes=10))
    cons = result.consistency
    assert cons.height == 20
    mixed = cons.filter(pl.col("bucket_start").is_between(t(5), t(14)))
    assert mixed["n"].to_list() == [12] * 10
    assert mixed["n_as_intended"].to_list() == [6] * 10
    assert mixed["score"].to_list() == [0.5] * 10
    assert mixed["n_versions"].to_list() == [2] * 10
    assert result.overall_score == pytest.approx((120) / 180)


def test_ungoverned_traffic_has_no_consistency_score():
    store = new_store()
    predictions(store, traffic(0, 5, version="v1"))
    result = audit(store)
    assert result.overall_score is None
    assert result.findings.height == 0


# -- prediction divergence ----------------------------------------------------------------
def test_prediction_divergence_shadow_and_repeated_inputs():
    store = new_store()
    deploy(store, [{"ts": t(-10), "event": "deploy", "version": "v1"},
                   {"ts": t(-10), "event": "experiment_start", "version": "v2", "traffic_pct": 50.0,
                    "expected_end": t(100), "actor": "cy", "experiment": "e"}])
    store.con.execute("ALTER TABLE predictions ADD COLUMN amount DOUBLE")
    store.con.execute("INSERT INTO covariates VALUES ('amount', 'DOUBLE', 0)")
    store.refresh_views()
    rows = []
    # 30 shadow pairs: v2 in shadow disagrees on 6 of them
    for i in range(30):
        base = {"ts": t(1 + i / 10), "region": "eu", "instance_id": "eu-1", "amount": 100.0 + i,
                "entity_id": f"s{i}"}
        rows.append({**base, "request_id": f"s-{i}", "model_version": "v1", "artifact_hash": digest("v1"),
                     "prediction": "approve", "component": "online"})
        rows.append({**base, "request_id": f"s-{i}", "model_version": "v2", "artifact_hash": digest("v2"),
                     "prediction": "decline" if i < 6 else "approve", "component": "shadow",
                     "instance_id": "eu-shadow"})
    # 25 customers retried the same input and got v1 then v2: 10 answered differently
    for i in range(25):
        base = {"region": "eu", "instance_id": "eu-1", "amount": 5.0 + i, "entity_id": f"c{i}",
                "component": "online"}
        rows.append({**base, "ts": t(10 + i / 10), "request_id": f"c-{i}-a", "model_version": "v1",
                     "artifact_hash": digest("v1"), "prediction": "approve"})
        rows.append({**base, "ts": t(10 + i / 10) + dt.timedelta(seconds=20), "request_id": f"c-{i}-b",
                     "model_version": "v2", "artifact_hash": digest("v2"),
                     "prediction": "decline" if i < 10 else "approve"})
    # same customer, different amount: not an identical input
    rows.append({"ts": t(20), "request_id": "x-1", "model_version": "v1", "artifact_hash": digest("v1"),
                 "prediction": "approve", "component": "online", "region": "eu", "entity_id": "c0", "amount": 999.0})
    insert(store, "predictions", rows)
    result = audit(store, bucket="hour")
    div = result.findings.filter(pl.col("kind") == "prediction_divergence").to_dicts()
    by_source = {json.loads(d["evidence"])["source"]: d for d in div}
    shadow = by_source["shadow"]
    assert (shadow["n_requests"], shadow["share"], shadow["severity"]) == (30, pytest.approx(0.2), "info")
    assert shadow["versions"] == ["v1", "v2"]
    assert set(shadow["examples"]) <= {f"s-{i}" for i in range(6)}
    repeated = by_source["repeated_inputs"]
    assert repeated["n_requests"] == 25
    assert repeated["share"] == pytest.approx(0.4)
    assert repeated["severity"] == "warning"
    assert repeated["region"] == "eu"
    assert repeated["start"] == t(10)  # first differing pair
    assert repeated["end"] == t(10 + 9 / 10) + dt.timedelta(seconds=20)


# -- options, result object ----------------------------------------------------------------
def test_options_are_checked():
    store = _canary_store()
    with pytest.raises(InputError, match="bucket"):
        audit(store, bucket="week")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not both"):
        audit(store, window="2026-11-02..2026-11-03", start="2026-11-02")
    with pytest.raises(InputError, match="share"):
        AuditThresholds(min_share=2.0)
    assert audit(store).bucket == "hour"  # 60 h of data
    assert audit(store, bucket="day").bucket == "day"


def test_result_renders_and_escapes():
    store = new_store([("v1", "fp-1"), ("<b>v2</b>", "fp-2")])
    deploy(store, [{"ts": t(-10), "event": "deploy", "version": "v1"}])
    predictions(store, traffic(0, 10, version="v1"), traffic(0, 10, version="<b>v2</b>", instance="eu-9"))
    result = audit(store)
    html_text = result._repr_html_()
    assert "<b>v2</b>" not in html_text and "&lt;b&gt;v2&lt;/b&gt;" in html_text
    data = json.loads(result.to_json())
    assert data["max_severity"] == result.max_severity == "warning"
    assert {f["kind"] for f in data["findings"]} == {"unexpected_multi_version"}
    assert isinstance(data["findings"][0]["evidence"], dict)
    assert "unexpected_multi_version" in result.summary()
    assert result.to_frame() is result.findings
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.bucket = "day"  # type: ignore[misc]


def test_scope_all_event_applies_to_regions_with_own_history():
    store = new_store([("v1", "fp-1"), ("v2", "fp-1"), ("v3", "fp-1")])
    deploy(store, [
        {"ts": t(-10), "event": "deploy", "version": "v1"},
        {"ts": t(0), "event": "deploy", "scope": "eu", "version": "v2"},
        {"ts": t(10), "event": "deploy", "version": "v3"},
    ])
    predictions(
        store,
        traffic(0, 10, version="v2"),
        traffic(10, 20, version="v3"),
        traffic(0, 10, version="v1", region="us", instance="us-1"),
        traffic(10, 20, version="v3", region="us", instance="us-1"),
    )
    result = audit(store, bucket="hour")
    eu = result.intended.filter(pl.col("scope") == "eu").sort("start")
    # the window opens at t(0): the v1 segment [t(-10), t(0)) does not overlap it
    assert eu.select("start", "end", "version").rows() == [(t(0), t(10), "v2"), (t(10), None, "v3")]
    assert result.overall_score == 1.0
    assert result.findings.height == 0


def test_window_after_the_deadline():
    # audited from t(40) on: the stuck split is already overdue when the window opens
    result = audit(_canary_store(), start=t(40), bucket="hour")
    stuck = only(result, "stuck_rollout")
    # v1 in [40, 60) = 120; v2 at 10 h + k*40 min in [40, 60): k = 45..74 = 30
    assert stuck["n_requests"] == 150
    assert stuck["start"] == t(40)
    assert result.window_start == t(40)
