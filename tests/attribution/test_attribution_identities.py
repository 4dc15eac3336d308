"""Identities of the routing-cell attribution, checked on stores built by hand.

The numbers are worked out by hand in the comments (the estimand of
docs/methods.md: M(a, b) = sum_r w_a(r) sum_v Pi_b(v|r) mu_a(r, v)); none
comes from running the code.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from toolkit.attribution import attribute
from toolkit.attribution.estimate import _weights
from toolkit.attribution.results import METHODS

from .test_attribution_helpers import BASELINE, COMPARISON, make_store


def hand_cells() -> list[dict]:
    """Two routing cells (region x/y), two versions; written out in test_hand_computed_shapley."""
    return [
        dict(period=0, region="x", version="v1", n=60, k=30),
        dict(period=0, region="x", version="v2", n=20, k=16),
        dict(period=0, region="y", version="v1", n=20, k=4),
        dict(period=1, region="x", version="v1", n=20, k=10),
        dict(period=1, region="x", version="v2", n=20, k=16),
        dict(period=1, region="y", version="v1", n=30, k=6),
        dict(period=1, region="y", version="v2", n=30, k=12),
    ]


def test_hand_computed_shapley_and_methods_agree_on_saturated_design() -> None:
    # w_A = (.8, .2), w_B = (.4, .6); Pi_A(v2|x) = .25, Pi_A(v2|y) = 0; Pi_B = .5 everywhere;
    # mu(x) = (.5, .8), mu(y) = (.2, .4) in both windows (mu_A(y, v2) unserved: the region term of v2's
    # model, the other window's rate plus the shared change 0, or the stratum's rate: .4 in all three).
    # M(A,A) = .8*.575 + .2*.2 = .50; M(B,B) = .4*.65 + .6*.3 = .44;
    # M(A data, B routing) = .8*.65 + .2*.3 = .58; M(B data, A routing) = .4*.575 + .6*.2 = .35.
    # data = 1/2[(.35-.50) + (.44-.58)] = -.145; version = 1/2[(.58-.50) + (.44-.35)] = .085.
    with make_store(hand_cells()) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=50)
    assert res.observed == pytest.approx((0.50, 0.44), abs=1e-12)
    for m in METHODS:
        assert res.component(m, "data_drift")[0] == pytest.approx(-0.145, abs=1e-9)
        assert res.component(m, "version_drift")[0] == pytest.approx(0.085, abs=1e-9)
        assert res.component(m, "residual")[0] == pytest.approx(0.0, abs=1e-9)
    ext = res.diagnostics.details["support"]["extrapolations"]
    assert [(e["window"], e["cell"], e["version"]) for e in ext] == [("baseline", "y", "v2")]
    # its weight in M(A data, B routing): w_A(y) * Pi_B(v2|y) = .2 * .5
    assert ext[0]["weight"] == pytest.approx(0.1, abs=1e-12)
    assert res.routing_by == ("region",)


def test_parts_add_up_to_the_observed_total_exactly() -> None:
    rng = np.random.default_rng(7)
    cells = []
    for period in (0, 1):
        for region in ("a", "b", "c"):
            for version in ("v1", "v2", "v3"):
                n = int(rng.integers(5, 60))
                cells.append(dict(period=period, region=region, version=version, n=n, k=int(rng.integers(0, n + 1))))
    with make_store(cells) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=20)
    f = res.to_frame()
    for m in METHODS:
        sub = f.filter((pl.col("method") == m) & (pl.col("component") != "total"))
        assert sub["estimate"].sum() == pytest.approx(res.total, abs=1e-12)
    # the regression's data drift split by covariate adds up to its data drift
    assert res.data_drift_parts["estimate"].sum() == pytest.approx(res.component("regression", "data_drift")[0],
                                                                   abs=1e-12)


def test_same_model_under_two_labels_gives_zero_version_drift() -> None:
    # v1 and v2 have identical rates in every routing cell; routing moves from v1 to v2.
    cells = []
    for period, share_v2 in ((0, 0.2), (1, 0.7)):
        for region, rate, n in (("x", 0.6, 100), ("y", 0.3, 100 if period == 0 else 300)):
            n2 = int(n * share_v2)
            cells.append(dict(period=period, region=region, version="v1", n=n - n2, k=int(rate * (n - n2))))
            cells.append(dict(period=period, region=region, version="v2", n=n2, k=int(rate * n2)))
    with make_store(cells) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=100)
    for m in METHODS:
        est, lo, hi = res.component(m, "version_drift")
        assert est == pytest.approx(0.0, abs=1e-12)
        assert lo <= 0.0 <= hi
    # the shift is all composition of the routing cells: .5*.6+.5*.3 = .45 -> .25*.6+.75*.3 = .375
    assert res.total == pytest.approx(-0.075, abs=1e-12)
    assert res.component("standardization", "data_drift")[0] == pytest.approx(-0.075, abs=1e-12)


def test_no_covariate_shift_gives_zero_data_drift() -> None:
    # identical inputs per routing cell in both windows; each version serves whole cycles of the values
    # (a random-like, balanced share) with the same rate, and only the routing shares change:
    # every estimator's mu is the same in both windows, so data drift is exactly 0
    cells = []
    for period in (0, 1):
        for region, cycle in (("x", [1.0, 2.0, 3.0, 4.0]), ("y", [5.0, 9.0])):
            amounts = cycle * (160 // len(cycle))
            n2 = 40 if period == 0 else 80
            cells.append(dict(period=period, region=region, version="v1", n=160 - n2, k=(160 - n2) // 2,
                              values={"amount": amounts[: 160 - n2]}))
            cells.append(dict(period=period, region=region, version="v2", n=n2, k=int(0.8 * n2),
                              values={"amount": amounts[160 - n2:]}))
    with make_store(cells, {"amount": "DOUBLE"}) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=30, bins=2)
    for m in METHODS:
        assert res.component(m, "data_drift")[0] == pytest.approx(0.0, abs=1e-12)
        # all of the shift is version drift: .5 -> .25*.8 + .75*.5 = .575 -> .5*.8 + .5*.5 = .65
        assert res.component(m, "version_drift")[0] == pytest.approx(0.075, abs=1e-12)


def test_swapping_periods_flips_every_sign() -> None:
    with make_store(hand_cells()) as store:
        fwd = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=0)
        bwd = attribute(store, "rate:prediction=approved", COMPARISON, BASELINE, n_boot=0)
    a = fwd.to_frame().sort(["method", "component"])["estimate"].to_numpy()
    b = bwd.to_frame().sort(["method", "component"])["estimate"].to_numpy()
    np.testing.assert_allclose(a, -b, atol=1e-12)


def test_swapping_periods_flips_signs_with_numeric_covariate() -> None:
    rng = np.random.default_rng(11)
    cells = []
    for period in (0, 1):
        for version, share in (("v1", 0.7 - 0.4 * period), ("v2", 0.3 + 0.4 * period)):
            n = int(400 * share)
            vals = list(np.round(rng.lognormal(1 + 0.3 * period, 0.5, n), 3))
            cells.append(dict(period=period, region="eu", version=version, n=n, k=int(n * 0.4),
                              values={"amount": vals}))
    with make_store(cells, {"amount": "DOUBLE"}) as store:
        fwd = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=0, bins=3)
        bwd = attribute(store, "rate:prediction=approved", COMPARISON, BASELINE, n_boot=0, bins=3)
    a = fwd.to_frame().sort(["method", "component"])["estimate"].to_numpy()
    b = bwd.to_frame().sort(["method", "component"])["estimate"].to_numpy()
    np.testing.assert_allclose(a, -b, atol=1e-9)


def test_same_version_behaving_differently_is_reported() -> None:
    # v1 approves 50% in the baseline and 30% in the comparison on the same inputs (2000 rows per cell):
    # the change is -20 pt with an SE of about sqrt(.25/2000 * 2) = 1.6 pt, z about -13
    cells = [dict(period=p, region=r, version="v1", n=2000, k=1000 if p == 0 else 600)
             for p in (0, 1) for r in ("x", "y")]
    with make_store(cells) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=20)
    notes = [n for n in res.diagnostics.notes if n.code == "behaviour_change"]
    assert notes and "same resolved version behaved differently" in notes[0].message
    changes = res.diagnostics.details["behaviour_change"]
    assert all(c["change"] == pytest.approx(-0.2, abs=1e-9) for c in changes)


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    with make_store(hand_cells()) as store:
        a = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=40, seed=5)
        b = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=40, seed=5)
        c = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=40, seed=6)
    assert a.to_frame().equals(b.to_frame())
    assert not a.to_frame().equals(c.to_frame())


def test_conditional_weights_have_the_finite_population_variance() -> None:
    # a version serving share pi of a cell whose inputs are fixed: its row count has variance n pi (1 - pi),
    # so each group's weight has mean 1 and variance 1 - pi; the input side is not reweighted
    rng = np.random.default_rng(0)
    pi = np.array([[[0.25, 0.75]]])                      # one period, one cell, two versions
    draws = np.stack([_weights(rng, (1, 1, 2, 64), pi, "conditional")[0] for _ in range(3000)])
    assert draws.mean() == pytest.approx(1.0, abs=0.01)
    assert draws[..., 0, :].var() == pytest.approx(0.75, rel=0.05)
    assert draws[..., 1, :].var() == pytest.approx(0.25, rel=0.05)
    assert _weights(rng, (1, 1, 2, 64), pi, "conditional")[1] is None
    # population: one Poisson weight per group shared by the versions and the inputs
    w, win = _weights(rng, (1, 1, 2, 64), pi, "population")
    assert win is w and (w[:, :, 0] == w[:, :, 1]).all()


def test_single_version_cells_are_exact_under_the_conditional_scheme() -> None:
    # one version everywhere: nothing is redrawn with the inputs held fixed, the split is exact for this
    # traffic; the population scheme still gives the uncertainty about the inputs
    cells = [dict(period=p, region=r, version="v1", n=200, k=k)
             for p, r, k in ((0, "x", 100), (0, "y", 20), (1, "x", 50), (1, "y", 60))]
    with make_store(cells) as store:
        cond = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=50)
        pop = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=50, interval="population")
    assert cond.diagnostics.has("exact")
    _, lo, hi = pop.component("regression", "data_drift")
    assert hi - lo > 0.01
