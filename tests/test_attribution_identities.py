"""Identities every attribution method must satisfy, on hand-built cells."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from toolkit.attribution import attribute
from toolkit.attribution.bootstrap import resample
from toolkit.attribution.cells import CellArrays
from toolkit.attribution.decompose import effects, cell_factors

from .test_attribution_helpers import BASELINE, COMPARISON, make_store

METHODS = ("regression", "matched", "standardization")


def hand_cells() -> list[dict]:
    """Two strata (region x/y), two versions; written out in test_hand_computed_shapley."""
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
    # P_A = (.8, .2), P_B = (.4, .6); Pi_A(v2|x) = .25, Pi_A(v2|y) = 0; Pi_B = .5 everywhere;
    # f(x) = (.5, .8), f(y) = (.2, .4) in both periods (f_A(y, v2) unobserved -> borrowed .4).
    # M(A,A) = .8*.575 + .2*.2 = .50; M(B,B) = .4*.65 + .6*.3 = .44;
    # M(A data, B routing) = .8*.65 + .2*.3 = .58; M(B data, A routing) = .4*.575 + .6*.2 = .35.
    # data = 1/2[(.35-.50) + (.44-.58)] = -.145; version = 1/2[(.58-.50) + (.44-.35)] = .085.
    with make_store(hand_cells()) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=50)
    assert res.observed == pytest.approx((0.50, 0.44), abs=1e-12)
    for m in METHODS:
        assert res.component(m, "data_drift")[0] == pytest.approx(-0.145, abs=1e-12)
        assert res.component(m, "version_drift")[0] == pytest.approx(0.085, abs=1e-12)
        assert res.component(m, "residual")[0] == pytest.approx(0.0, abs=1e-12)
    assert res.diagnostics.has("positivity")  # (y, v2) unseen in the baseline is reported
    pos = res.diagnostics.details["positivity"]
    assert pos["cells_only_comparison"] == 1 and pos["cells_only_baseline"] == 0


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


def test_same_model_under_two_labels_gives_zero_version_drift() -> None:
    # v1 and v2 have identical rates in every stratum; routing moves from v1 to v2.
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
    # the shift is all composition: .5*.6+.5*.3 = .45 -> .25*.6+.75*.3 = .375
    assert res.total == pytest.approx(-0.075, abs=1e-12)
    assert res.component("standardization", "data_drift")[0] == pytest.approx(-0.075, abs=1e-12)


def test_no_covariate_shift_gives_zero_data_drift() -> None:
    # identical stratum counts and identical numeric values in both periods; routing and rates change
    cells = []
    for period in (0, 1):
        for region, amounts in (("x", [1.0, 2.0, 3.0, 4.0] * 10), ("y", [5.0, 9.0] * 30)):
            n = len(amounts)
            n2 = n // 4 if period == 0 else n // 2
            cells.append(dict(period=period, region=region, version="v1", n=n - n2, k=(n - n2) // 2,
                              values={"amount": amounts[: n - n2]}))
            cells.append(dict(period=period, region=region, version="v2", n=n2, k=int(0.8 * n2),
                              values={"amount": amounts[n - n2:]}))
    with make_store(cells, {"amount": "DOUBLE"}) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=30, bins=2)
    assert res.diagnostics.details["regression_model"]["uses_model"]
    for m in METHODS:
        assert res.component(m, "data_drift")[0] == pytest.approx(0.0, abs=1e-12)


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
    np.testing.assert_allclose(a, -b, atol=1e-10)


def test_residual_flagged_when_same_version_behaves_differently() -> None:
    # v1 approves 50% in the baseline and 30% in the comparison on the same inputs
    cells = [dict(period=p, region=r, version="v1", n=2000, k=1000 if p == 0 else 600)
             for p in (0, 1) for r in ("x", "y")]
    with make_store(cells) as store:
        res = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=100)
    for m in METHODS:
        est, lo, hi = res.component(m, "residual")
        assert est == pytest.approx(-0.2, abs=1e-12)
        assert hi < 0
    msgs = [n.message for n in res.diagnostics.notes if n.code == "residual"]
    assert msgs and "same resolved version behaved differently" in msgs[0]


def test_cell_bootstrap_matches_row_poisson_variance() -> None:
    # one rate cell k of n: the Poisson bootstrap SD of the rate is sqrt(p(1-p)/n) = sqrt(.3*.7/1000)
    n = np.zeros((2, 1, 1)); sy = np.zeros((2, 1, 1))
    n[:] = 1000; sy[:] = 300
    cells = CellArrays(n, sy, sy.copy(), pl.DataFrame({"x": [0]}), ("v",), np.zeros((2, 1, 1, 0)),
                       np.zeros((2, 1, 1, 0)), ())
    rng = np.random.default_rng(0)
    draws = [resample(cells, rng, is_rate=True) for _ in range(4000)]
    rates = np.array([d.sy[0, 0, 0] / d.n[0, 0, 0] for d in draws])
    assert rates.std() == pytest.approx(np.sqrt(0.3 * 0.7 / 1000), rel=0.05)
    # total shift between two independent equal cells: SD sqrt(2) times larger, mean 0
    tot = np.array([effects(cell_factors(d.n, d.sy).table()).sum() for d in draws])
    assert tot.mean() == pytest.approx(0.0, abs=0.002)
    assert tot.std() == pytest.approx(np.sqrt(2 * 0.3 * 0.7 / 1000), rel=0.06)


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    with make_store(hand_cells()) as store:
        a = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=40, seed=5)
        b = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=40, seed=5)
        c = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=40, seed=6)
    assert a.to_frame().equals(b.to_frame())
    assert not a.to_frame().equals(c.to_frame())


def _hand_arrays() -> CellArrays:
    with make_store(hand_cells()) as store:
        from toolkit.attribution.cells import build_cells
        from toolkit.attribution.metrics import parse_metric
        from toolkit.timeutil import parse_window

        table = build_cells(store.con, parse_metric("rate:prediction=approved"), parse_window(BASELINE),
                            parse_window(COMPARISON), ["region"])
    return table.arrays()


def test_conditional_bootstrap_holds_each_period_and_stratum_count_fixed() -> None:
    cells = _hand_arrays()
    rng = np.random.default_rng(1)
    draws = [resample(cells, rng, is_rate=True, scheme="conditional") for _ in range(3000)]
    totals = cells.n.sum(axis=-1)
    for d in draws:
        np.testing.assert_array_equal(d.n.sum(axis=-1), totals)  # the inputs each period received
        assert (d.sy <= d.n).all() and (d.sy >= 0).all()
        assert (d.n[cells.n == 0] == 0).all()  # no version appears where none served
    # period 0, region x: 80 rows, 60 on v1 -> routing redrawn, binomial SD sqrt(80 * .75 * .25)
    s = cells.strata["region"].to_list().index("x")
    v1 = cells.versions.index("v1")
    n_v1 = np.array([d.n[0, s, v1] for d in draws])
    assert n_v1.mean() == pytest.approx(60, abs=0.3)
    assert n_v1.std() == pytest.approx(np.sqrt(80 * 0.75 * 0.25), rel=0.06)
    # period 0, region y: only v1 served (20 rows, 4 approved): n fixed, approvals binomial(20, .2)
    y = cells.strata["region"].to_list().index("y")
    k = np.array([d.sy[0, y, v1] for d in draws])
    assert {d.n[0, y, v1] for d in draws} == {20.0}
    assert k.std() == pytest.approx(np.sqrt(20 * 0.2 * 0.8), rel=0.06)
    # the population scheme moves the counts of the periods
    pop = [resample(cells, rng, is_rate=True, scheme="population") for _ in range(50)]
    assert any((d.n.sum(axis=-1) != totals).any() for d in pop)
    with pytest.raises(ValueError, match="unknown bootstrap scheme"):
        resample(cells, rng, is_rate=True, scheme="rows")


def test_conditional_data_drift_interval_adds_the_residual_spread() -> None:
    # with the inputs held fixed, the within-stratum input shift that the replay counts as data drift
    # is booked by cells as residual: the data-drift SD is hypot(SD data, SD residual)
    from toolkit.attribution.bootstrap import normal_interval

    rng = np.random.default_rng(3)
    draws = np.column_stack([rng.normal(0, 3.0, 20000), rng.normal(0, 1.0, 20000), rng.normal(0, 4.0, 20000),
                             rng.normal(0, 2.0, 20000)])
    est = np.array([1.0, 2.0, 3.0, 6.0])
    lo_c, hi_c = normal_interval(est, draws, 0.95, scheme="conditional")
    lo_p, hi_p = normal_interval(est, draws, 0.95, scheme="population")
    half_c, half_p = (hi_c - lo_c) / 2, (hi_p - lo_p) / 2
    assert half_c[0] == pytest.approx(1.959964 * 5.0, rel=0.02)  # hypot(3, 4) = 5
    assert half_p[0] == pytest.approx(1.959964 * 3.0, rel=0.02)
    np.testing.assert_allclose(half_c[1:], half_p[1:])
    np.testing.assert_allclose((hi_c + lo_c) / 2, est)

    with make_store(hand_cells()) as store:
        cond = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=400,
                         method="standardization")
        pop = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, n_boot=400,
                        method="standardization", interval="population")
        with pytest.raises(Exception, match="interval must be one of"):
            attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, interval="rows")
    assert cond.interval == "conditional" and pop.interval == "population"
    assert cond.component("standardization", "data_drift")[0] == pop.component("standardization", "data_drift")[0]

    def width(r, comp):
        _, lo, hi = r.component("standardization", comp)
        return hi - lo

    assert width(cond, "data_drift") >= width(cond, "residual")
    assert width(cond, "version_drift") == pytest.approx(width(pop, "version_drift"), rel=0.35)
    assert "conditional" in cond.summary() and '"interval": "population"' in pop.to_json()
