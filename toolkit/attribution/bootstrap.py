"""Cell-level bootstrap equivalent to a row-level Poisson bootstrap.

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


def resample(cells: CellArrays, rng: np.random.Generator, *, is_rate: bool) -> CellArrays:
    """One bootstrap replicate of the cell arrays.

    Parameters
    ----------
    cells
        The observed cells.
    rng
        Source of randomness (seeded by the caller).
    is_rate
        True for 0/1 metrics (exact Poisson split of successes and failures).
    """
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
    ratio = np.divide(n_new, n, out=np.zeros_like(n), where=n > 0)
    sx = cells.sx * ratio[..., None]
    sxx = cells.sxx * ratio[..., None]
    su = cells.su * ratio[..., None] if cells.su is not None else None
    return dataclasses.replace(cells, n=n_new, sy=sy_new, syy=syy_new, sx=sx, sxx=sxx, su=su)


def normal_interval(estimate: np.ndarray, draws: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Normal-approximation interval: estimate +/- z * SD of the bootstrap draws.

    Centred on the point estimate, so a bootstrap distribution shifted by
    resampling artefacts (cells emptied by the resample) cannot move the
    interval away from the estimate; its spread still comes from the draws.
    """
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    sd = np.nanstd(draws, axis=0, ddof=1)
    return estimate - z * sd, estimate + z * sd
