"""Published reference values reproduced by the toolkit's own procedures.

Sources
-------
* Das Gupta, P. (1993). *Standardization and Decomposition of Rates: A User's
  Manual*. U.S. Bureau of the Census, Current Population Reports P23-186.
  Inputs copied from the book's tables (also in the DasGuptR documentation;
  see ../shared/reference/das_gupta_1993.md).
* statsmodels' Stata-checked Oaxaca-Blinder test
  (statsmodels/stats/tests/test_oaxaca.py) on the bundled ``ccard`` data.
"""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.attribution import das_gupta_cross_classified, das_gupta_factors, kitagawa, oaxaca_blinder


def test_das_gupta_example_5_1_kitagawa_household_headship() -> None:
    # Ex. 5.1 (Table 5.1): age composition (%) and headship rates per 100, 1970 and 1985
    w1970 = [12.9, 10.9, 9.5, 8.0, 7.8, 8.4, 8.6, 7.8, 7.0, 5.9, 4.7, 3.6, 4.9]
    w1985 = [10.1, 11.2, 11.6, 10.9, 9.4, 7.7, 6.3, 6.0, 6.3, 5.9, 5.1, 4.0, 5.5]
    r1970 = [1.9, 25.8, 45.7, 49.6, 51.2, 51.6, 51.8, 54.9, 58.7, 60.4, 62.8, 66.6, 66.8]
    r1985 = [2.2, 24.3, 45.8, 52.5, 56.1, 55.6, 56.0, 57.4, 57.2, 61.2, 63.9, 68.6, 72.2]
    res = kitagawa(w1970, r1970, w1985, r1985, scale=100)
    assert round(res.crude[0], 4) == 44.7268
    assert round(res.crude[1], 4) == 47.6940
    assert round(res.difference, 4) == 2.9672
    assert round(res.effects["composition"], 4) == 1.2269
    assert round(res.effects["rate"], 4) == 1.7403
    assert round(100 * res.effects["composition"] / res.difference, 2) == 41.35
    assert round(100 * res.effects["rate"] / res.difference, 2) == 58.65


def test_das_gupta_example_5_3_cross_classified_age_race() -> None:
    # Ex. 5.3 (Table 5.3): population (thousands) and death rates per 1000 by race (rows) x age (columns)
    pop1970 = np.array([
        [2968, 11484, 34614, 30992, 21983, 20314, 20928, 16897, 11339, 5720, 1315],
        [535, 2162, 6120, 4781, 3096, 2718, 2363, 1767, 1149, 448, 117],
    ])
    pop1985 = np.array([
        [3041, 11577, 27450, 32711, 35480, 27411, 19555, 19795, 15254, 8022, 2472],
        [707, 2692, 6473, 6841, 6547, 4352, 3034, 2540, 1749, 804, 236],
    ])
    rate1970 = np.array([
        [18.469, 0.751, 0.391, 1.146, 1.287, 2.672, 6.636, 15.691, 34.723, 79.763, 176.837],
        [36.993, 1.352, 0.541, 2.040, 3.523, 6.746, 12.967, 24.471, 45.091, 74.902, 123.205],
    ])
    rate1985 = np.array([
        [9.163, 0.462, 0.248, 0.929, 1.084, 1.810, 4.715, 12.187, 27.728, 64.068, 157.570],
        [17.208, 0.738, 0.328, 1.103, 2.045, 3.724, 8.052, 17.812, 34.128, 68.276, 125.161],
    ])
    res = das_gupta_cross_classified(pop1970, rate1970, pop1985, rate1985, row_name="race", col_name="age")
    assert round(res.crude[0], 6) == 9.421833
    assert round(res.crude[1], 6) == 8.735618
    assert round(res.difference, 7) == -0.6862158
    assert round(res.effects["age"], 7) == 1.5217347
    assert round(res.effects["race"], 7) == 0.0197749
    assert round(res.effects["rate"], 7) == -2.2277254


@pytest.mark.parametrize(
    "f1, f2, expected",
    [
        # Ex. 2.1: two factors
        ([10930, 0.717892], [16591, 0.825974], [4369.9127, 1487.2624]),
        # Ex. 2.2: three factors
        ([51.78746, 0.45919, 0.52638], [84.90502, 0.75756, 0.51065], [10.4340333, 10.5608476, -0.6670084]),
        # Ex. 2.3: four factors
        ([25.3, 0.214, 0.279, 0.949], [32.7, 0.290, 0.473, 0.986], [0.6889411, 0.8125381, 1.3829055, 0.1047547]),
    ],
)
def test_das_gupta_examples_2_1_to_2_3_multiplicative_factors(f1, f2, expected) -> None:
    res = das_gupta_factors(f1, f2)
    decimals = [len(str(x).split(".")[1]) for x in expected]
    for got, want, d in zip(res.effects.values(), expected, decimals, strict=True):
        assert round(got, d) == pytest.approx(want, abs=10 ** -(d + 3))
    assert sum(res.effects.values()) == pytest.approx(np.prod(f2) - np.prod(f1), rel=1e-12)


def test_oaxaca_blinder_ccard_matches_stata() -> None:
    from statsmodels.datasets.ccard.data import load_pandas

    d = load_pandas().data
    res = oaxaca_blinder(d["AVGEXP"].to_numpy(), d[["AGE", "INCOME", "INCOMESQ"]].to_numpy(),
                         d["OWNRENT"].to_numpy(), names=["AGE", "INCOME", "INCOMESQ"])
    # Stata `oaxaca` results quoted in statsmodels/stats/tests/test_oaxaca.py
    assert res.gap == pytest.approx(158.7504, abs=5e-4)
    assert res.endowment == pytest.approx(321.7482, abs=5e-4)
    assert res.coefficient == pytest.approx(75.45371, abs=5e-5)
    assert res.interaction == pytest.approx(-238.4515, abs=5e-4)
    assert res.explained == pytest.approx(130.8095, abs=5e-4)
    assert res.unexplained == pytest.approx(27.94091, abs=5e-5)
    # the detailed split adds up to the aggregate effects
    assert res.detail["endowment"].sum() == pytest.approx(res.endowment, rel=1e-12)


def test_oaxaca_on_cells_equals_rows() -> None:
    # A regressor constant within cells: weighted cell means give the row-level decomposition.
    rng = np.random.default_rng(3)
    g = rng.integers(0, 2, 400)
    x = rng.integers(0, 4, 400).astype(float)
    y = 1.0 + 0.5 * x + 0.3 * g + 0.2 * g * x + rng.normal(0, 1, 400)
    rows = oaxaca_blinder(y, x[:, None], g)
    keys = sorted({(gi, xi) for gi, xi in zip(g, x, strict=True)})
    cy = np.array([y[(g == a) & (x == b)].mean() for a, b in keys])
    cw = np.array([((g == a) & (x == b)).sum() for a, b in keys])
    cells = oaxaca_blinder(cy, np.array([[b] for _, b in keys]), np.array([a for a, _ in keys]), weights=cw)
    for name in ("endowment", "coefficient", "interaction", "explained", "unexplained"):
        assert getattr(cells, name) == pytest.approx(getattr(rows, name), rel=1e-10, abs=1e-12)
