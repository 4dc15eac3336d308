"""Cell-level bootstraps: conditional on the inputs (default) or over the population.

Two resampling schemes, both on cells (no rows are touched):

``conditional`` (the default of :func:`toolkit.attribute`)
    The inputs each period actually received are held fixed: every
    (period, stratum) keeps its row count and only what is random *given the
    inputs* is redrawn: which version served them (the stratum's rows are
    redistributed over versions, multinomial with the observed shares) and
    the metric values (binomial for 0/1 metrics, normal with the cell's
    within-cell variance for means). This is the uncertainty about the
    effects on *this* traffic, the quantity a postmortem asks about and the
    one a replay of the logged requests through every version measures.

``population``
    A row-level Poisson bootstrap: inputs are resampled too, so the interval
    also covers how different another week drawn from the same input
    distribution could have been. Data-drift intervals are much wider
    (about 2x in the calibration benchmark) because the composition of both
    periods is resampled.

In a Poisson bootstrap every row gets an independent Poisson(1) weight. Summed
over the rows of a cell this gives, without touching rows:

* rate cells (k successes of n): ``k* ~ Poisson(k)``, ``(n - k)* ~ Poisson(n - k)``
  (exact);
* mean cells: ``n* ~ Poisson(n)`` and ``sum* | n* ~ Normal(n* ybar, n* s2)``
  where ``s2`` is the within-cell variance, which matches the first two
  moments of the row-level weighted sum exactly;
* numeric covariate sums are scaled with ``n* / n`` (cell means held fixed).
"""

from __future__ import annotations

import dataclasses
import numpy as np

from .cells import CellArrays


SCHEMES = ("conditional", "population")


def resample(cells: CellArrays, rng: np.random.Generator, *, is_rate: bool,
             scheme: str = "population") -> CellArrays:
    """One bootstrap replicate of the cell arrays.

    Parameters
    ----------
    cells
        The observed cells.
    rng
        Source of randomness (seeded by the caller).
    is_rate
        True for 0/1 metrics (exact Poisson split of successes and failures).
    scheme
        ``population`` (row-level Poisson bootstrap) or ``conditional``
        (inputs held fixed; see the module docstring).
    """
    if scheme == "conditional":
        return _conditional(cells, rng, is_rate=is_rate)
    if scheme != "population":
        raise ValueError(f"unknown bootstrap scheme {scheme!r}: choose from {', '.join(SCHEMES)}")
    n, sy, syy = cells.n, cells.sy, cells.syy
    if is_rate:
        k = rng.poisson(np.clip(sy, 0, None))
        m = rng.poisson(np.clip(n - sy, 0, None))
        n_new = (k + m).astype(float)
        sy_new = k.astype(float)
        syy_new = sy_new.copy()
    else:
        n_new = rng.poisson(n).astype(float)
        mean = np.divide(sy, n, out=np.zeros_like(sy), where=n > 0)
        var = np.divide(syy, n, out=np.zeros_like(syy), where=n > 0) - mean**2
        var = np.clip(var, 0, None)
        sy_new = n_new * mean + rng.standard_normal(n.shape) * np.sqrt(n_new * var)
        syy_new = n_new * (var + mean**2)
    return _scaled(cells, n_new, sy_new, syy_new)


def _conditional(cells: CellArrays, rng: np.random.Generator, *, is_rate: bool) -> CellArrays:
    """Replicate with each (period, stratum) row count fixed: routing and values redrawn."""
    n, sy, syy = cells.n, cells.sy, cells.syy
    total = n.sum(axis=-1)  # (period, stratum)
    shares = np.divide(n, total[..., None], out=np.zeros_like(n), where=total[..., None] > 0)
    # strata without rows: any valid probability vector, zero draws
    empty = total <= 0
    if empty.any():
        shares[empty] = 1.0 / n.shape[-1]
    n_new = rng.multinomial(np.rint(total).astype(np.int64), shares).astype(float)
    mean = np.divide(sy, n, out=np.zeros_like(sy), where=n > 0)
    if is_rate:
        sy_new = rng.binomial(n_new.astype(np.int64), np.clip(mean, 0.0, 1.0)).astype(float)
        syy_new = sy_new.copy()
    else:
        var = np.clip(np.divide(syy, n, out=np.zeros_like(syy), where=n > 0) - mean**2, 0, None)
        sy_new = n_new * mean + rng.standard_normal(n.shape) * np.sqrt(n_new * var)
        syy_new = n_new * (var + mean**2)
    return _scaled(cells, n_new, sy_new, syy_new)


def _scaled(cells: CellArrays, n_new: np.ndarray, sy_new: np.ndarray, syy_new: np.ndarray) -> CellArrays:
    """The replicate's cells: new counts and sums, covariate sums scaled with the count (cell means fixed)."""
    n = cells.n
    ratio = np.divide(n_new, n, out=np.zeros_like(n), where=n > 0)
    sx = cells.sx * ratio[..., None]
    sxx = cells.sxx * ratio[..., None]
    su = cells.su * ratio[..., None] if cells.su is not None else None
    return dataclasses.replace(cells, n=n_new, sy=sy_new, syy=syy_new, sx=sx, sxx=sxx, su=su)


def normal_interval(estimate: np.ndarray, draws: np.ndarray, level: float = 0.95, *,
                    scheme: str = "population") -> tuple[np.ndarray, np.ndarray]:
    """Normal-approximation interval: estimate +/- z * SD of the bootstrap draws.

    ``estimate`` and the columns of ``draws`` are (data drift, version drift,
    residual, total). Centred on the point estimate, so a bootstrap
    distribution shifted by resampling artefacts (cells emptied by the
    resample) cannot move the interval away from the estimate; its spread
    still comes from the draws.

    Under the ``conditional`` scheme the data-drift SD is
    ``sqrt(SD(data)^2 + SD(residual)^2)``. With the inputs held fixed, what
    separates the estimated data drift from the replayed truth is the shift
    of the inputs *inside* a stratum between the periods: the replay counts
    it as data drift, cells cannot see it and book it as a change of the
    within-cell means, i.e. as residual (the calibration benchmark measured
    a correlation of -0.98 between the data-drift error and the estimated
    residual). The residual's replicate spread is that uncertainty.
    """
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    sd = np.nanstd(draws, axis=0, ddof=1)
    if scheme == "conditional":
        sd = sd.copy()
        sd[0] = np.hypot(sd[0], sd[2])
    return estimate - z * sd, estimate + z * sd
