"""The estimand of DESIGN.md section 4 on cells, and its Shapley split.

``M(P, Pi, f) = sum_s P(s) sum_v Pi(v|s) f(s, v)``. Each factor comes from
period A (index 0) or B (index 1); the eight values ``M[a, b, c]`` (data from
a, routing from b, mechanism from c) give the Shapley effects of switching
data, routing and mechanism from A to B, which add up to the observed shift
exactly.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


def shapley(value: Callable[[tuple[int, ...]], float], k: int) -> np.ndarray:
    """Shapley values of ``k`` factors each switched from state 0 to state 1.

    Parameters
    ----------
    value
        Function of a 0/1 tuple of length ``k`` (which factors are at state 1).
    k
        Number of factors.

    Returns
    -------
    numpy.ndarray
        Effect of each factor; they sum to ``value((1,)*k) - value((0,)*k)``.
    """
    cache: dict[tuple[int, ...], float] = {}

    def val(mask: tuple[int, ...]) -> float:
        if mask not in cache:
            cache[mask] = float(value(mask))
        return cache[mask]

    out = np.zeros(k)
    for i in range(k):
        others = [j for j in range(k) if j != i]
        for r in range(k):
            w = math.factorial(r) * math.factorial(k - r - 1) / math.factorial(k)
            for subset in itertools.combinations(others, r):
                lo = [0] * k
                for j in subset:
                    lo[j] = 1
                hi = list(lo)
                hi[i] = 1
                out[i] += w * (val(tuple(hi)) - val(tuple(lo)))
    return out


@dataclass(frozen=True)
class Factors:
    """The three factors of M on a stratum x version grid.

    Attributes
    ----------
    P
        Shape (2, S): stratum shares of each period.
    Pi
        Shape (2, S, V): routing of each period (rows of strata a period
        lacks are borrowed from the other period).
    F
        Shape (2, 2, S, V): ``F[c, a]`` is the mechanism of period c
        evaluated on the data of period a (equal for all a when the
        mechanism does not depend on within-stratum covariate values).
    """

    P: np.ndarray
    Pi: np.ndarray
    F: np.ndarray

    def M(self, a: int, b: int, c: int) -> float:
        """M(P_a, Pi_b, f_c)."""
        return float(np.einsum("s,sv,sv->", self.P[a], self.Pi[b], self.F[c, a]))

    def table(self) -> np.ndarray:
        """All eight M values, shape (2, 2, 2) indexed [data, routing, mechanism]."""
        out = np.empty((2, 2, 2))
        for a, b, c in itertools.product((0, 1), repeat=3):
            out[a, b, c] = self.M(a, b, c)
        return out


def effects(Mtab: np.ndarray) -> np.ndarray:
    """Shapley (data, version, residual) effects from the (2, 2, 2) M table."""
    return shapley(lambda m: Mtab[m[0], m[1], m[2]], 3)


def composition(n: np.ndarray) -> np.ndarray:
    """Stratum shares P_t(s) from counts of shape (2, S, V)."""
    ns = n.sum(axis=2)
    tot = ns.sum(axis=1, keepdims=True)
    return np.divide(ns, tot, out=np.zeros_like(ns), where=tot > 0)


def routing(n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Routing Pi_t(v|s) with unsupported strata borrowed from the other period.

    Returns
    -------
    Pi, borrowed
        ``borrowed[t, s]`` is true where period t has no rows in stratum s
        and its routing was taken from the other period.
    """
    ns = n.sum(axis=2, keepdims=True)
    Pi = np.divide(n, ns, out=np.zeros_like(n), where=ns > 0)
    borrowed = ns[..., 0] == 0
    for t in (0, 1):
        rows = borrowed[t] & ~borrowed[1 - t]
        Pi[t, rows] = Pi[1 - t, rows]
    return Pi, borrowed & ~borrowed[::-1]


def cell_means(n: np.ndarray, sy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Within-cell means f_t(s, v) with unseen cells borrowed from the other period.

    For a model-output metric a resolved version is a fixed function of its
    inputs, so f_A(s, v) = f_B(s, v) is the natural value where one period
    never saw version v in stratum s; the residual then reflects only cells
    seen in both periods.

    Returns
    -------
    f, borrowed
        ``f`` shape (2, S, V) (0 where neither period saw the cell, which
        then carries no weight); ``borrowed[t, s, v]`` marks borrowed cells.
    """
    f = np.divide(sy, n, out=np.full_like(sy, np.nan), where=n > 0)
    borrowed = np.zeros(n.shape, dtype=bool)
    for t in (0, 1):
        fill = np.isnan(f[t]) & ~np.isnan(f[1 - t])
        f[t][fill] = f[1 - t][fill]
        borrowed[t] = fill
    return np.nan_to_num(f, nan=0.0), borrowed


def cell_factors(n: np.ndarray, sy: np.ndarray) -> Factors:
    """The nonparametric (saturated) factors of a cell grid."""
    f, _ = cell_means(n, sy)
    Pi, _ = routing(n)
    F = np.stack([np.stack([f[0], f[0]]), np.stack([f[1], f[1]])])
    return Factors(composition(n), Pi, F)
