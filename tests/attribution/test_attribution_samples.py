"""End to end on the sample scenarios: estimates and intervals against the simulator's replay truth.

The ground truth is the exact replay decomposition (every logged input through
every version, docs/methods.md) written by ``toolkit.samples``. Every method's
data drift and version drift must lie within max(0.6 pt, 30%) of the truth
(0.006 in raw units for rates and for mean scores, which are probabilities),
and its 95% interval must cover the truth.

Chance misses: each test makes 12 checks of 95% intervals (2 metrics x 2
components x 3 methods), so even perfectly calibrated intervals miss at
least once with probability 46%. A test therefore accepts at most two misses,
each only if the truth lies within the 99.9% interval (estimate +/- 3.29 SD,
SD = half-width / 1.96). Coverage itself is measured by
benchmarks/attribution_calibration.py over many replications.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit import Store
from toolkit.attribution import attribute
from toolkit.samples import SCENARIOS, simulate

from .test_attribution_helpers import BASELINE, COMPARISON, load_simulation

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "samples" / "demo"
METRICS = ("rate:prediction=approved", "mean:score")


Z95, Z999 = 1.959964, 3.290527


def check(res, truth: dict[str, float], misses: list[str]) -> None:
    for method in res.methods:
        for comp in ("data_drift", "version_drift"):
            est, lo, hi = res.component(method, comp)
            tol = max(0.006, 0.3 * abs(truth[comp]))
            msg = f"{res.metric} {method} {comp}: {est:.5f} [{lo:.5f}, {hi:.5f}] vs truth {truth[comp]:.5f}"
            assert abs(est - truth[comp]) <= tol, msg + f": off by more than {tol:.4f}"
            slack = 1e-12 * max(1.0, abs(truth[comp]))  # an exact split has an interval of no width
            if not lo - slack <= truth[comp] <= hi + slack:
                sd = (hi - lo) / (2 * Z95)
                assert abs(truth[comp] - est) <= Z999 * sd + slack, msg + " misses by more than 3.29 SD"
                misses.append(msg)


@pytest.mark.skipif(not (DEMO / "ground_truth.json").exists(), reason="committed demo sample missing")
def test_committed_demo_sample(tmp_path: Path) -> None:
    truth = json.loads((DEMO / "ground_truth.json").read_text())["attribution"]
    misses: list[str] = []
    with Store(tmp_path / "demo.duckdb") as store:
        store.ingest("predictions", [DEMO / "predictions.csv.gz"])
        store.ingest("artifacts", [DEMO / "artifacts.csv"])
        for metric in METRICS:
            res = attribute(store, metric, BASELINE, COMPARISON, n_boot=60, seed=0)
            assert res.observed[0] == pytest.approx(truth[metric]["observed"]["baseline"], abs=1e-12)
            assert res.observed[1] == pytest.approx(truth[metric]["observed"]["comparison"], abs=1e-12)
            check(res, truth[metric], misses)
            if metric.startswith("rate"):
                # the demo's regression split stays within 0.2 pt of its truth
                for comp in ("data_drift", "version_drift"):
                    assert abs(res.component("regression", comp)[0] - truth[metric][comp]) <= 0.002
    assert len(misses) <= 2, misses


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_scenario_interval_contains_replay_truth(scenario: str) -> None:
    sim = simulate(scenarios=[scenario], rows=20_000, seed=0)
    gt = sim.ground_truth
    misses: list[str] = []
    with load_simulation(sim) as store:
        for metric in METRICS:
            res = attribute(store, metric, BASELINE, COMPARISON, n_boot=60, seed=0)
            assert res.total == pytest.approx(gt.effect(metric, "total"), abs=1e-12)
            check(res, {c: gt.effect(metric, c) for c in ("data_drift", "version_drift")}, misses)
    assert len(misses) <= 2, misses
