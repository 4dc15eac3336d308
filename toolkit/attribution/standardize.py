"""Standardization: Kitagawa / Das Gupta decompositions.

Two layers:

* published procedures of Das Gupta (1993), *Standardization and
  Decomposition of Rates: A User's Manual* (U.S. Census Bureau, P23-186):
  the single-factor Kitagawa split (Ex. 5.1), the cross-classified
  procedure with square-root structure factors (Ex. 5.3) and the symmetric
  formula for rates that are products of factors (Ex. 2.1-2.3);
* the standardization method of :func:`toolkit.attribution.attribute`: the
  saturated stratum x version cell table split by Shapley values into
  composition (data drift), version mix within strata (version drift) and
  within-cell rates (residual).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from .decompose import shapley


@dataclass(frozen=True)
class RateDecomposition:
    """A published-style decomposition of a crude rate difference.

    Attributes
    ----------
    crude
        Crude rates of the two populations (first, second).
    effects
        Factor name -> effect; the effects add up to ``crude[1] - crude[0]``.
    """

    crude: tuple[float, float]
    effects: dict[str, float]

    def __post_init__(self) -> None:
        total = sum(self.effects.values())
        diff = self.crude[1] - self.crude[0]
        if not np.isclose(total, diff, rtol=1e-9, atol=1e-9 * max(1.0, abs(diff))):
            raise ValueError(f"effects add up to {total}, not to the crude difference {diff}")

    @property
    def difference(self) -> float:
        """The difference between the two groups' crude rates."""
        return self.crude[1] - self.crude[0]

    def summary(self) -> str:
        """Text: the standardized decomposition."""
        lines = [f"crude rate {self.crude[0]:.6f} -> {self.crude[1]:.6f} (difference {self.difference:.6f})"]
        for name, eff in self.effects.items():
            share = 100 * eff / self.difference if self.difference else float("nan")
            lines.append(f"  {name:<24} {eff:12.7f}  ({share:6.2f}%)")
        return "\n".join(lines)


def _arr(x: Sequence[float], what: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{what} holds missing or infinite values")
    return a


def kitagawa(
    shares_1: Sequence[float],
    rates_1: Sequence[float],
    shares_2: Sequence[float],
    rates_2: Sequence[float],
    *,
    scale: float = 1.0,
) -> RateDecomposition:
    """Single-factor Kitagawa decomposition (Das Gupta 1993, Ex. 5.1).

    Crude rate = ``sum(share * rate) / scale``. Composition effect
    ``sum((w2 - w1) (r1 + r2) / 2)``, rate effect ``sum((r2 - r1) (w1 + w2) / 2)``.

    Parameters
    ----------
    shares_1, rates_1, shares_2, rates_2
        Group shares (any scale, e.g. percent) and rates of the two populations.
    scale
        Divisor of ``share * rate`` (100 when shares are percentages).
    """
    w1, r1, w2, r2 = (_arr(x, n) for x, n in ((shares_1, "shares_1"), (rates_1, "rates_1"),
                                                (shares_2, "shares_2"), (rates_2, "rates_2")))
    if not (w1.shape == r1.shape == w2.shape == r2.shape):
        raise InputError("shares and rates of both populations must have the same length")
    comp = float(np.sum((w2 - w1) * (r1 + r2) / 2) / scale)
    rate = float(np.sum((r2 - r1) * (w1 + w2) / 2) / scale)
    crude = (float(np.sum(w1 * r1) / scale), float(np.sum(w2 * r2) / scale))
    return RateDecomposition(crude, {"composition": comp, "rate": rate})


def das_gupta_cross_classified(
    counts_1: np.ndarray,
    rates_1: np.ndarray,
    counts_2: np.ndarray,
    rates_2: np.ndarray,
    *,
    row_name: str = "row structure",
    col_name: str = "column structure",
    scale: float = 1.0,
) -> RateDecomposition:
    """Das Gupta's procedure for a rate cross-classified by two factors (Ex. 5.3).

    The rate effect is the two-factor split of ``crude = sum(c_ij r_ij)``
    (cell share ``c_ij`` times cell rate) into composition and rate; the
    composition effect is then split between the column structure
    ``A_ij = sqrt((n_ij / n_i.) (n_.j / N))`` and the row structure
    ``B_ij = sqrt((n_ij / n_.j) (n_i. / N))`` (``A B = c``) with the cell
    rates at their two-period average.

    Parameters
    ----------
    counts_1, rates_1, counts_2, rates_2
        Arrays of shape (rows, columns): population counts and rates.
    row_name, col_name
        Names of the effects of the row and column structures.
    scale
        Divisor applied to ``share * rate`` (e.g. 1 for rates per 1000 kept as is).

    Returns
    -------
    RateDecomposition
        Effects ``col_name``, ``row_name`` and ``rate``.
    """
    n1, r1, n2, r2 = (np.asarray(x, dtype=float) for x in (counts_1, rates_1, counts_2, rates_2))
    if not (n1.shape == r1.shape == n2.shape == r2.shape) or n1.ndim != 2:
        raise InputError("counts and rates must be 2-D arrays of the same shape")

    def structure(n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        N = n.sum()
        ni = n.sum(axis=1, keepdims=True)
        nj = n.sum(axis=0, keepdims=True)
        A = np.sqrt((n / ni) * (nj / N))
        B = np.sqrt((n / nj) * (ni / N))
        return n / N, A, B

    c1, A1, B1 = structure(n1)
    c2, A2, B2 = structure(n2)
    rbar = (r1 + r2) / 2
    rate = float(np.sum((r2 - r1) * (c1 + c2) / 2) / scale)
    col = float(np.sum((A2 - A1) * (B1 + B2) / 2 * rbar) / scale)
    row = float(np.sum((B2 - B1) * (A1 + A2) / 2 * rbar) / scale)
    crude = (float(np.sum(c1 * r1) / scale), float(np.sum(c2 * r2) / scale))
    return RateDecomposition(crude, {col_name: col, row_name: row, "rate": rate})


def das_gupta_factors(factors_1: Sequence[float], factors_2: Sequence[float],
                      names: Sequence[str] | None = None) -> RateDecomposition:
    """Effects of the factors of a rate that is their product (Ex. 2.1-2.3).

    Das Gupta's symmetric formula, which equals the Shapley value of each
    factor switched from population 1 to population 2.

    Parameters
    ----------
    factors_1, factors_2
        The factor values of the two populations, in the same order.
    names
        Effect names (default ``factor 1``, ``factor 2``, ...).
    """
    a = _arr(factors_1, "factors_1")
    b = _arr(factors_2, "factors_2")
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise InputError("both populations need the same, non-empty list of factors")
    k = a.size
    names = list(names) if names is not None else [f"factor {i + 1}" for i in range(k)]
    if len(names) != k:
        raise InputError(f"{len(names)} names given for {k} factors")
    eff = shapley(lambda m: float(np.prod(np.where(np.array(m) == 1, b, a))), k)
    return RateDecomposition((float(np.prod(a)), float(np.prod(b))), dict(zip(names, map(float, eff), strict=False)))
