"""End to end on the sample scenarios: intervals against the simulator's replay truth.

The ground truth is the exact replay decomposition (every logged input through
every version, DESIGN.md section 4) written by ``toolkit.samples``. Regression
and matched must cover the true data drift and version drift with their 95%
intervals on every scenario. Standardization cannot see covariate shifts
inside its bins (they become residual); where that bias exceeds its interval
the result must say so in its diagnostics (the ``binning`` warning), which is
what this test checks for it instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit import Store
from toolkit.attribution import attribute
from toolkit.samples import SCENARIOS, simulate

from .test_attribution_helpers import BASELINE, COMPARISON, load_simulation

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "samples" / "demo"
METRICS = ("rate:prediction=approved", "mean:score")


def check(res, truth: dict[str, float]) -> None:
    for method in res.methods:
        for comp in ("data_drift", "version_drift"):
            est, lo, hi = res.component(method, comp)
            covered = lo <= truth[comp] <= hi
            if method == "standardization" and not covered:
                assert any(n.code == "binning" and n.level == "warning" for n in res.diagnostics.notes), (
                    f"standardization misses {comp} ({est:.5f} [{lo:.5f}, {hi:.5f}] vs {truth[comp]:.5f}) "
                    "without reporting its binning limitation")
                continue
            assert covered, f"{res.metric} {method} {comp}: {est:.5f} [{lo:.5f}, {hi:.5f}] misses {truth[comp]:.5f}"


@pytest.mark.skipif(not (DEMO / "ground_truth.json").exists(), reason="committed demo sample missing")
def test_committed_demo_sample(tmp_path: Path) -> None:
    truth = json.loads((DEMO / "ground_truth.json").read_text())["attribution"]
    with Store(tmp_path / "demo.duckdb") as store:
        store.ingest("predictions", [DEMO / "predictions.csv"])
        store.ingest("artifacts", [DEMO / "artifacts.csv"])
        for metric in METRICS:
            res = attribute(store, metric, BASELINE, COMPARISON, n_boot=100, seed=0)
            assert res.observed[0] == pytest.approx(truth[metric]["observed"]["baseline"], abs=1e-12)
            assert res.observed[1] == pytest.approx(truth[metric]["observed"]["comparison"], abs=1e-12)
            check(res, truth[metric])
            # model outputs of fixed versions: no residual flagged by the regression
            assert "regression" not in res.diagnostics.details["residual"]["methods_flagged"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_interval_contains_replay_truth(scenario: str) -> None:
    sim = simulate(scenarios=[scenario], rows=20_000, seed=0)
    gt = sim.ground_truth
    with load_simulation(sim) as store:
        for metric in METRICS:
            res = attribute(store, metric, BASELINE, COMPARISON, n_boot=100, seed=0)
            assert res.total == pytest.approx(gt.effect(metric, "total"), abs=1e-12)
            check(res, {c: gt.effect(metric, c) for c in ("data_drift", "version_drift")})
