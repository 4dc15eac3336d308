"""The outcome models of the estimators: one linear fit per (period, version, routing cell).

:func:`fit_models` fits them on the hash sample (:class:`~toolkit.attribution.sums.ModelSample`)
with a sandwich covariance, :func:`draw_models` draws the coefficients of one
bootstrap replicate; the fills of :mod:`toolkit.attribution.routed` evaluate them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sums import ModelSample

#: Prior weight, in rows, that pulls a routing cell's outcome model towards its version's pooled model.
CELL_SHRINK = 50.0


@dataclass(frozen=True)
class Models:
    """Outcome models per (period, version, routing cell): ``beta[c, v, r]`` (intercept first).

    ``root[c, v, r]`` is a square root of the coefficients' sandwich
    covariance (a draw is ``beta + root @ N(0, I)``); ``rows[c, v]`` the rows
    each version's model was fitted on; ``pooled[c, v]`` marks an outcome
    metric's period that fell back to the version's fit on both periods.
    """

    beta: np.ndarray
    root: np.ndarray
    rows: np.ndarray
    pooled: np.ndarray


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    """The symmetric square root ``U diag(sqrt(w)) U'`` of a covariance (negative eigenvalues clipped to 0).

    The symmetric root is unique. ``U * sqrt(w)`` alone is a square root too, but the
    signs of ``U``'s columns (and their rotation inside a repeated eigenvalue) are
    LAPACK's choice, which differs between BLAS kernels: the same seed then drew
    other coefficients on another processor, and the intervals moved in their
    third digit.
    """
    w, U = np.linalg.eigh((cov + cov.T) / 2)
    return (U * np.sqrt(np.clip(w, 0, None))) @ U.T


def _solve(X: np.ndarray, y: np.ndarray, pen: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Penalised least squares towards ``prior``, and the HC0 sandwich covariance of the fit."""
    xtx = X.T @ X + np.diag(pen)
    inv = np.linalg.pinv(xtx)
    b = inv @ (X.T @ y + pen * prior)
    e = y - X @ b
    meat = (X * (e ** 2)[:, None]).T @ X
    return b, inv @ meat @ inv


def fit_models(sample: ModelSample, n_versions: int, p: int, *, per_period: bool, parent: np.ndarray,
               ridge: float = 1e-3, shrink: float | None = None) -> Models:
    """Least squares per (period, version), then per routing cell shrunk towards it, with HC0 covariance.

    A version's function may depend on its routing cell (a model that reads
    the region, or a scope's own feature values), so each routing cell gets
    its own coefficients, pulled towards the version's pooled fit with a
    prior worth ``shrink`` rows: a cell the version served richly keeps its
    own slopes, a thin one borrows the pooled ones (a cell it never served
    uses them outright). The intercept is free. ``per_period=False`` (model
    outputs: a resolved version is a fixed function) fits each version on
    both periods' rows; ``True`` (outcome metrics) fits each period's own
    behaviour, falling back to the fit on both periods (flagged in
    ``pooled``) where a version served no row in a period.
    """
    shrink = CELL_SHRINK if shrink is None else shrink
    R = int(parent.max()) + 1 if len(parent) else 1
    beta = np.zeros((2, n_versions, R, p + 1))
    root = np.zeros((2, n_versions, R, p + 1, p + 1))
    rows = np.zeros((2, n_versions), dtype=int)
    pooled = np.zeros((2, n_versions), dtype=bool)
    Z1 = np.column_stack([np.ones(len(sample.y)), sample.z])
    cell = parent[sample.r] if len(sample.r) else np.zeros(0, dtype=int)

    def fit(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = int(mask.sum())
        if n == 0:
            return np.zeros((R, p + 1)), np.zeros((R, p + 1, p + 1))
        pen = np.full(p + 1, ridge * n)
        pen[0] = 0.0
        b0, c0 = _solve(Z1[mask], sample.y[mask], pen, np.zeros(p + 1))
        bs, rs = np.tile(b0, (R, 1)), np.tile(_sqrt_psd(c0), (R, 1, 1))
        cpen = np.full(p + 1, shrink)
        cpen[0] = 0.0
        for r in range(R):
            mr = mask & (cell == r)
            if mr.sum() > 1:
                b, c = _solve(Z1[mr], sample.y[mr], cpen, b0)
                bs[r], rs[r] = b, _sqrt_psd(c)
        return bs, rs

    for v in range(n_versions):
        mv = sample.v == v
        both = fit(mv)
        for c in (0, 1):
            mc = mv & (sample.t == c)
            rows[c, v] = int(mc.sum()) if per_period else int(mv.sum())
            if per_period and mc.sum() > p + 1:
                beta[c, v], root[c, v] = fit(mc)
            else:
                beta[c, v], root[c, v] = both
                pooled[c, v] = per_period
    return Models(beta, root, rows, pooled)


def row_weights(sample: ModelSample) -> np.ndarray:
    """The rows each sampled row stands for (1 each when the sample carries no weights)."""
    return sample.weight if len(sample.weight) == len(sample.y) else np.ones(len(sample.y))


def pooled_fit(sample: ModelSample, ridge: float = 1e-3) -> np.ndarray:
    """One least-squares fit of the metric on the design terms, versions pooled (intercept first).

    Each sampled row is weighted by the rows it stands for; the slopes are
    ridged by ``ridge`` times the total weight. Used where one rough set of
    slopes serves (choosing the matching covariates, grouping collinear ones).
    """
    w = row_weights(sample)
    X = np.column_stack([np.ones(len(sample.y)), sample.z])
    pen = np.full(X.shape[1], ridge * w.sum())
    pen[0] = 0.0
    return np.linalg.pinv((X * w[:, None]).T @ X + np.diag(pen)) @ ((X * w[:, None]).T @ sample.y)


def draw_models(models: Models, rng: np.random.Generator) -> np.ndarray:
    """One draw of the coefficients from their estimated sampling distribution."""
    noise = rng.standard_normal(models.beta.shape)
    out = models.beta + np.einsum("cvrpq,cvrq->cvrp", models.root, noise)
    if not models.pooled.any() and np.array_equal(models.beta[0], models.beta[1]):
        out[1] = out[0]
    return out
