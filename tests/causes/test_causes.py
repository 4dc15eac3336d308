"""vdrift explain: off-intent cost by finding, against the simulator's replay cost of each planted problem."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

import toolkit
from toolkit.causes.impact import shapley_shares
from toolkit.causes.intent import intended_shares
from toolkit.samples import load_simulation, simulate

BASELINE, COMPARISON = "2026-11-02..2026-11-09", "2026-11-09..2026-11-16"
METRIC = "rate:prediction=approved"
#: The finding kinds each planted scenario should produce (the audit's names).
PLANTED_KINDS = {
    "canary": {"stuck_rollout"},
    "rollback": {"incomplete_rollback", "stale_cache", "batch_online_divergence"},
    "config_mismatch": {"artifact_mismatch", "unexpected_multi_version"},
    "experiment": {"abandoned_experiment"},
}
_CACHE: dict = {}


def _explain(scenario: str, baseline: str | None = None, seed: int = 0):
    key = (scenario, baseline, seed)
    if key not in _CACHE:
        sim = simulate([scenario], rows=60_000, seed=seed)
        with load_simulation(sim) as store:
            _CACHE[key] = (toolkit.explain(store, METRIC, COMPARISON, baseline=baseline, n_boot=60, seed=seed),
                           sim.ground_truth)
    return _CACHE[key]


@pytest.mark.parametrize("scenario", ["canary", "rollback", "config_mismatch", "experiment"])
def test_one_window_cost_splits_exactly_and_matches_the_replay_cost(scenario) -> None:
    res, truth = _explain(scenario)
    cost = res.window_costs.row(0, named=True)
    priced = res.causes.filter(pl.col("impact").is_not_nan())
    # the parts (findings + the unnamed remainder) add up to the window's cost exactly
    assert abs(float(priced["impact"].sum()) - cost["cost"]) < 1e-9
    assert abs(res.total - cost["cost"]) < 1e-9
    # the planted problem's findings carry the largest impact
    top = priced.row(0, named=True)
    assert top["cause"] == "finding" and top["kind"] in PLANTED_KINDS[scenario], top
    # against the replay truth: the affected rows replayed with the version they would have had
    true = truth.problem_costs[METRIC][scenario]["comparison"]
    assert abs(cost["cost"] - true) <= max(0.003, 0.3 * abs(true)), (cost["cost"], true)
    planted = priced.filter(pl.col("kind").is_in(list(PLANTED_KINDS[scenario])))
    assert abs(float(planted["impact"].sum()) - cost["cost"]) < 1e-9  # nothing else is priced


def test_clean_scenario_prices_nothing() -> None:
    res, truth = _explain("clean")
    assert truth.problem_costs[METRIC]["all"]["comparison"] == 0.0
    cost = res.window_costs.row(0, named=True)
    assert cost["off_intent_rows"] == 0 and cost["cost"] == 0.0
    assert (res.causes["impact"].fill_nan(0.0) == 0.0).all()


def test_two_windows_causes_add_up_to_the_shift_and_split_the_version_drift() -> None:
    res, truth = _explain("canary", BASELINE)
    assert abs(float(res.causes["impact"].fill_nan(0.0).sum()) - res.total) < 1e-9
    att = res.attribution
    assert res.total == pytest.approx(att.total, abs=1e-12)
    vd = att.component(att.primary, "version_drift")[0]
    routing = res.causes.filter(pl.col("cause").is_in(["finding", "unnamed_off_intent", "intended_change"]))
    assert float(routing["impact"].fill_nan(0.0).sum()) == pytest.approx(vd, abs=1e-9)
    # the stuck canary held the metric above what the completed rollout intended; the intended change is the
    # other way, and the two nearly cancel in the observed version drift
    stuck = res.causes.filter(pl.col("kind") == "stuck_rollout").row(0, named=True)
    intended = res.causes.filter(pl.col("cause") == "intended_change").row(0, named=True)
    assert stuck["impact"] > 0.01 and intended["impact"] < -0.01
    assert stuck["ci_low"] < stuck["impact"] < stuck["ci_high"]
    # data drift parts come from the attribution and the residual is named
    assert res.causes.filter(pl.col("cause") == "residual").height == 1
    assert res.causes.filter(pl.col("cause") == "data_drift").height >= 3


def test_intended_shares_overdue_rules() -> None:
    pieces = pl.DataFrame({
        "gov": ["serving"] * 5, "eff_scope": ["eu", "eu", "apac", "apac", "us"], "pos": [2, 2, 3, 3, 1],
        "kind": ["rollout", "rollout", "experiment", "experiment", "full"],
        "target_version": ["v2", "v2", "v3", "v3", "v1"], "base_version": ["v1", "v1", "v1", "v1", None],
        "version": ["v2", "v1", "v3", "v1", "v1"], "share": [0.1, 0.9, 0.5, 0.5, 1.0],
    })
    out = intended_shares(pieces)

    def shares(scope, overdue):
        sub = out.filter((pl.col("eff_scope") == scope) & (pl.col("overdue") == overdue))
        return dict(zip(sub["version"], sub["share"], strict=True))
    assert shares("eu", False) == {"v2": 0.1, "v1": 0.9}
    assert shares("eu", True) == {"v2": 1.0}          # an overdue rollout completes
    assert shares("apac", True) == {"v1": 1.0}        # an overdue experiment ends on its control
    assert shares("us", False) == shares("us", True) == {"v1": 1.0}


def test_shapley_shares_of_the_covering_game() -> None:
    cover = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 1, 0, 0]], dtype=bool)
    sh = shapley_shares(cover)
    assert sh[:, 0].tolist() == [1.0, 0.0, 0.0]
    assert sh[:, 1] == pytest.approx([1 / 3] * 3)
    assert sh[:, 3].tolist() == [0.0, 0.0, 0.0]       # no finding covers it: the unnamed part
    # a row's cost is shared out in full or not at all
    assert sh.sum(axis=0).tolist() == pytest.approx([1.0, 1.0, 1.0, 0.0])


def test_cli_explain_json(tmp_path) -> None:
    sim = simulate(["experiment"], rows=8_000, seed=3)
    db = tmp_path / "s.duckdb"
    load_simulation(sim, db).close()
    proc = subprocess.run([sys.executable, "-m", "toolkit.cli", "explain", "--db", str(db), "--metric", METRIC,
                           "--comparison", COMPARISON, "--bootstrap", "20", "--json"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["baseline"] is None and out["comparison"].startswith("2026-11-09")
    priced = [c for c in out["causes"] if c["impact"] is not None]
    assert abs(sum(c["impact"] for c in priced) - out["total"]) < 1e-9
    assert priced[0]["kind"] == "abandoned_experiment" and "abandoned experiment" in priced[0]["sentence"]
    text = subprocess.run([sys.executable, "-m", "toolkit.cli", "explain", "--db", str(db), "--metric", METRIC,
                           "--comparison", COMPARISON, "--bootstrap", "20"],
                          capture_output=True, text=True, check=False)
    assert text.returncode == 0 and "Ranked causes" in text.stdout and "abandoned experiment" in text.stdout


def test_cli_explain_bad_metric_is_a_clear_error(tmp_path) -> None:
    sim = simulate(["clean"], rows=3_000, seed=1)
    db = tmp_path / "s.duckdb"
    load_simulation(sim, db).close()
    proc = subprocess.run([sys.executable, "-m", "toolkit.cli", "explain", "--db", str(db), "--metric",
                           "rate:prediction=Approved", "--comparison", COMPARISON],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 4 and proc.stderr.startswith("vdrift:") and "approved" in proc.stderr


def test_rows_no_history_governs_are_flagged_not_priced() -> None:
    sim = simulate(["canary"], rows=8_000, seed=2)
    with load_simulation(sim) as store:
        store.con.execute("DELETE FROM deployments")
        res = toolkit.explain(store, METRIC, COMPARISON, n_boot=20)
    cost = res.window_costs.row(0, named=True)
    assert cost["ungoverned_rows"] == cost["rows"] > 0 and cost["off_intent_rows"] == 0
    assert res.headline().startswith("CAUTION, 100% of the rows are governed by no deployment history")
    assert "largest cause" not in res.headline()


def test_one_hourly_pass_gives_each_windows_rows_and_the_series_counting_a_row_once() -> None:
    """:func:`hours` over overlapping windows against the rows counted directly in SQL."""
    from toolkit.causes.timeline import hours, series, window_hours
    from toolkit.timeutil import parse_window

    windows = [parse_window("2026-11-05..2026-11-10"), parse_window("2026-11-09 06:30..2026-11-12")]
    sim = simulate(["rollback"], rows=20_000, seed=1)
    with load_simulation(sim) as store:
        frame = hours(store.con, METRIC, windows, ["region"])
        rows = ("FROM predictions_resolved WHERE component IS DISTINCT FROM 'shadow' AND prediction IS NOT NULL "
                "AND ts >= ? AND ts < ?")
        for k, w in enumerate(windows):
            got = window_hours(frame, k).sort("bucket_start", "component", "region", "instance_id", "version")
            want = store.con.execute(
                "SELECT date_trunc('hour', ts) AS bucket_start, component, region, instance_id, "
                "resolved_version AS version, count(*) AS n_y, CAST(sum(CAST(prediction = 'approved' AS INTEGER)) "
                f"AS DOUBLE) AS sy {rows} GROUP BY ALL ORDER BY ALL", [w.start, w.end]).pl()
            assert got.height == want.height > 0
            assert got.select(want.columns).equals(want, null_equal=True), k
        hourly = series(frame)
        want = store.con.execute(
            "SELECT coalesce(region, '(missing)') AS cell, resolved_version AS version, date_trunc('hour', ts) AS hour, "
            f"count(*) AS n {rows} GROUP BY ALL ORDER BY ALL", [windows[0].start, windows[1].end]).pl()
        assert hourly.select("cell", "version", "hour", "n").equals(want)
        # the overlap's rows are in both windows' rows, once in the series
        both = frame.filter(pl.col("w0") & pl.col("w1"))["n"].sum()
        assert both > 0
        assert (window_hours(frame, 0)["n_y"].sum() + window_hours(frame, 1)["n_y"].sum()
                == hourly["n"].sum() + both)
