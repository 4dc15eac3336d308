"""Covariates the data cannot tell apart are one part of the data drift by covariate."""

from __future__ import annotations

import numpy as np

from toolkit.attribution.groups import COLLINEAR, collinear_groups
from toolkit.attribution.sums import ModelSample


def _sample(seed: int = 0, n: int = 3000) -> ModelSample:
    """temp and dewp move together across the windows (seasons) and offset each other; wind is on its own."""
    rng = np.random.default_rng(seed)
    t = np.repeat([0, 1], n // 2)
    temp = rng.normal(0.0, 1.0, n) + 3.0 * t
    dewp = temp + rng.normal(0.0, 0.3, n)
    wind = rng.normal(0.0, 1.0, n)
    y = 0.5 * temp - 0.45 * dewp + 0.2 * wind + rng.normal(0.0, 0.1, n)
    z = np.column_stack([temp, dewp, wind])
    return ModelSample(t, np.zeros(n, dtype=int), np.zeros(n, dtype=int), y, z)


def test_offsetting_covariates_that_move_together_are_merged_and_the_rest_kept() -> None:
    groups, merged = collinear_groups({"temp": [0], "dewp": [1], "wind": [2]}, _sample())
    assert groups == {"temp + dewp": [0, 1], "wind": [2]}
    assert set(merged) == {"temp + dewp"} and merged["temp + dewp"] >= COLLINEAR


def test_independent_covariates_stay_apart() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    z = rng.normal(0.0, 1.0, (n, 3))
    y = z @ np.array([0.3, -0.2, 0.1]) + rng.normal(0.0, 0.1, n)
    s = ModelSample(np.repeat([0, 1], n // 2), np.zeros(n, dtype=int), np.zeros(n, dtype=int), y, z)
    groups, merged = collinear_groups({"a": [0], "b": [1], "c": [2]}, s)
    assert groups == {"a": [0], "b": [1], "c": [2]} and merged == {}


def test_a_covariate_without_effect_is_never_merged() -> None:
    """A covariate whose slope is 0 contributes a constant: it has no correlation to join on."""
    s = _sample()
    z = np.column_stack([s.z, np.zeros(len(s.y))])
    s0 = ModelSample(s.t, s.v, s.r, s.y, z)
    groups, _ = collinear_groups({"temp": [0], "dewp": [1], "wind": [2], "flat": [3]}, s0)
    assert "flat" in groups and groups["flat"] == [3]


def test_the_attribution_reports_the_merged_part_and_says_why(tmp_path) -> None:
    """End to end on the flights case: temperature and dew point are one part, with a note."""
    from toolkit.attribution import attribute
    from toolkit.samples.real import load_case_store

    store, _ = load_case_store("flights", seed=3, fraction=0.5)
    res = attribute(store, "rate:prediction=delayed", "2026-11-02..2026-11-09", "2026-11-09..2026-11-16",
                    method="regression", n_boot=20)
    parts = res.data_drift_parts["part"].to_list()
    assert "dewp + temp" in parts and "dewp" not in parts and "temp" not in parts
    note = [n for n in res.diagnostics.notes if n.code == "feature_groups"]
    assert len(note) == 1 and "dewp + temp" in note[0].message and "only their sum is identified" in note[0].message
    # the parts still add up to the data drift
    dd = res.frame.filter((res.frame["method"] == "regression") & (res.frame["component"] == "data_drift"))
    assert abs(float(res.data_drift_parts["estimate"].sum()) - float(dd["estimate"][0])) < 1e-9
