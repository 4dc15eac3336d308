"""The drift statistics taken from scipy agree with the hand-written formulas they replaced.

The two ``_old_*`` functions below are the former implementations of
:func:`toolkit.attribution.drift.js_divergence` and of the Wasserstein part of
``_cdf_stats``, kept verbatim as an independent oracle: do not replace them
with calls into the toolkit or scipy.
"""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.attribution.drift import _cdf_stats, js_divergence


def _old_js_divergence(a: np.ndarray, b: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2) of two count vectors (the former hand-written formula)."""
    pa, pb = a / a.sum(), b / b.sum()
    m = (pa + pb) / 2

    def kl(p: np.ndarray) -> float:
        nz = p > 0
        return float(np.sum(p[nz] * np.log2(p[nz] / m[nz])))

    return 0.5 * kl(pa) + 0.5 * kl(pb)


def _old_wasserstein(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """1-Wasserstein distance from counts at sorted distinct values (the former hand-written formula)."""
    fa = np.cumsum(a) / a.sum()
    fb = np.cumsum(b) / b.sum()
    gap = np.abs(fa - fb)
    return float(np.sum(gap[:-1] * np.diff(x)))


def _old_ks(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.cumsum(a) / a.sum() - np.cumsum(b) / b.sum()).max())


_RNG = np.random.default_rng(7)
COUNTS = [
    (np.array([80.0, 20.0]), np.array([40.0, 60.0])),
    (np.array([5.0, 0.0, 3.0, 0.0]), np.array([0.0, 2.0, 3.0, 1.0])),     # empty bins on either side
    (np.array([10.0, 0.0, 0.0]), np.array([0.0, 0.0, 7.0])),              # disjoint supports
    (np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])),               # identical
    (np.array([3.0, 1.0, 4.0]), np.array([30.0, 10.0, 40.0])),            # same shares, other totals
    (np.array([1.0]), np.array([9.0])),                                   # one bin
    (_RNG.integers(0, 50, 200).astype(float), _RNG.integers(0, 50, 200).astype(float)),
    (_RNG.poisson(0.3, 500).astype(float) + np.r_[1.0, np.zeros(499)], _RNG.poisson(3.0, 500).astype(float)),
]


@pytest.mark.parametrize(("a", "b"), COUNTS)
def test_js_divergence_matches_the_hand_formula(a: np.ndarray, b: np.ndarray) -> None:
    assert js_divergence(a, b) == pytest.approx(_old_js_divergence(a, b), rel=1e-12, abs=1e-12)
    assert 0.0 <= js_divergence(a, b) <= 1.0 + 1e-12


@pytest.mark.parametrize(("a", "b"), COUNTS)
def test_wasserstein_and_ks_match_the_hand_formula(a: np.ndarray, b: np.ndarray) -> None:
    for x in (np.arange(len(a), dtype=float),
              np.sort(_RNG.normal(0, 100, len(a))),
              np.cumsum(_RNG.exponential(1e-3, len(a))) + 1e6):   # tiny steps at a large offset
        ks, w1 = _cdf_stats(x, a, b)
        assert ks == _old_ks(a, b)
        assert w1 == pytest.approx(_old_wasserstein(x, a, b), rel=1e-12, abs=1e-12)
