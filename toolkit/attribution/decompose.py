"""Shapley values over factors, and the split of an M table into effects.

``M(P, Pi, f) = sum_s P(s) sum_v Pi(v|s) f(s, v)``. Each factor comes from
period A (index 0) or B (index 1); the eight values ``M[a, b, c]`` (data from
a, routing from b, mechanism from c) give the Shapley effects of switching
data, routing and mechanism from A to B, which add up to the observed shift
exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

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


def effects(Mtab: np.ndarray) -> np.ndarray:
    """Shapley (data, version, residual) effects from the (2, 2, 2) M table."""
    return shapley(lambda m: Mtab[m[0], m[1], m[2]], 3)
