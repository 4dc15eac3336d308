"""toolkit.checks: assertions a team puts in its own pytest suite."""

from __future__ import annotations

import pytest

from toolkit import Store, checks
from toolkit.errors import InputError

from .test_audit_support import deploy, insert, new_store, predictions, t, traffic


@pytest.fixture
def store():
    """v1 everywhere; a v2 rollout in us (never served there); eu-3 answers with the
    undeclared v2 in [5, 15) h, reporting v1 in [10, 15); apac logs no digests."""
    s = new_store()
    deploy(s, [
        {"ts": t(-10), "event": "deploy", "version": "v1"},
        {"ts": t(-5), "event": "rollout_start", "version": "v1", "traffic_pct": 50.0, "expected_end": t(0)},
        {"ts": t(-1), "event": "rollout_complete", "version": "v1"},
        {"ts": t(2), "event": "rollout_start", "scope": "us", "version": "v2", "traffic_pct": 10.0,
         "expected_end": t(8), "actor": "dee"},
    ])
    predictions(
        s,
        traffic(0, 20, version="v1"),
        traffic(5, 10, version="v2", instance="eu-3"),
        traffic(10, 15, version="v2", reported="v1", instance="eu-3"),
        traffic(0, 20, every_min=20, version="v1", region="us", instance="us-1"),
        traffic(0, 20, every_min=60, version="v1", artifact=None, region="apac", instance="apac-1"),
    )
    yield s
    s.close()


def test_single_version(store):
    assert checks.assert_single_version(store, window=(t(0), t(5)), region="eu") == "v1"
    assert checks.assert_single_version(store, start=t(15), region="eu", version="v1") == "v1"
    with pytest.raises(AssertionError, match=r"2 versions served component=online, region=eu .*v1 \(120 requests\), v2 \(60 requests\)"):
        checks.assert_single_version(store, window=(t(0), t(20)), region="eu")
    with pytest.raises(AssertionError, match="expected v2"):
        checks.assert_single_version(store, window=(t(0), t(5)), version="v2")
    with pytest.raises(AssertionError, match="no predictions"):
        checks.assert_single_version(store, region="latam")


def test_reported_matches_loaded(store):
    # eu in [0, 10): 60 + 30 rows, all verified
    assert checks.assert_reported_matches_loaded(store, window=(t(0), t(10)), region="eu") == 90
    with pytest.raises(AssertionError, match="30 requests reported v1 but loaded v2"):
        checks.assert_reported_matches_loaded(store, region="eu")
    with pytest.raises(AssertionError, match="logged no artifact digest"):
        checks.assert_reported_matches_loaded(store, window=(t(0), t(5)))
    # eu 30 + us 15 + apac 5 in [0, 5)
    assert checks.assert_reported_matches_loaded(store, window=(t(0), t(5)), allow_unverified=True) == 50


def test_rollout_completed(store):
    assert checks.assert_rollout_completed(store, "v1") == t(-1)
    assert checks.assert_rollout_completed(store, "v1", by=t(0)) == t(-1)
    with pytest.raises(AssertionError, match="after"):
        checks.assert_rollout_completed(store, "v1", by=t(-2))
    with pytest.raises(AssertionError, match=r"v2 on serving scope us started 2026-11-02 02:00 has no rollout_complete \(it was due 2026-11-02 08:00\)"):
        checks.assert_rollout_completed(store, "v2", scope="us")
    with pytest.raises(AssertionError, match="no event"):
        checks.assert_rollout_completed(store, "v9")


def test_no_findings_and_consistency(store):
    with pytest.raises(AssertionError, match="stuck_rollout|artifact_mismatch"):
        checks.assert_no_findings(store, at_least="warning")
    # before eu-3 and the v2 deadline only the designed rollout remains, at info
    result = checks.assert_no_findings(store, window=(t(0), t(5)), at_least="warning")
    assert result.max_severity in (None, "info")
    with pytest.raises(AssertionError, match="artifact_mismatch"):
        checks.assert_no_findings(store, kinds=["artifact_mismatch"], at_least="critical")
    with pytest.raises(InputError):
        checks.assert_no_findings(store, kinds=["typo"])
    assert checks.assert_consistent(store, window=(t(0), t(5))) == 1.0
    with pytest.raises(AssertionError, match="below consistency"):
        checks.assert_consistent(store, min_score=0.99)
    # governed: eu 120 + eu-3 60 + us 60 + apac 20 = 260, of which eu-3's 60 are not intended;
    # worst hour (5..14 h): 16 requests, 10 as intended = 0.625
    assert checks.assert_consistent(store, min_score=0.6) == pytest.approx(200 / 260)
    with pytest.raises(AssertionError, match=r"10 of 16 requests as intended \(0.625\)"):
        checks.assert_consistent(store, min_score=0.7)


def test_checks_accept_a_path(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        insert(s, "predictions", traffic(0, 2, version="v1", artifact=None))
    assert checks.assert_single_version(path) == "v1"
    with pytest.raises(AssertionError, match="12 requests reported v1 but logged no artifact digest"):
        checks.assert_reported_matches_loaded(path)
