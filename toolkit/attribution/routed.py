"""The estimand on routing cells, and its three estimators.

Notation (docs/methods.md): periods ``a, b, c`` in {0 baseline, 1
comparison}, routing cells ``r`` (the deployment scope: which version
answers is decided there, independently of the request's inputs), resolved
versions ``v``.

    M(a, b, c) = sum_r w_a(r) sum_v Pi_b(v | r) mu_c(a, r, v)

``w_a(r)`` is the share of period a's rows in cell r, ``Pi_b(v | r)`` the
share of cell r's rows of period b that v served, and ``mu_c(a, r, v)`` the
mean metric version v would give (with period c's behaviour) on period a's
inputs in cell r. Data drift, version drift and the mechanism effect are the
Shapley values of switching a, b and c from 0 to 1.

Within a routing cell the rows v served are a random sample of the cell's
inputs, so where v served (a, r) their mean estimates ``mu_a(a, r, v)``
without a model. The three methods differ in how they fill the rest:

* ``regression``: a linear outcome model per version (all rows the version
  served, both periods for a model output, per period for an outcome
  metric), evaluated on the cell's mean design vector, plus the mean residual
  of the version's own rows in the same cell (augmented, doubly robust);
* ``matched``: the version's rows in the same matching stratum (bins of the
  covariates that moved most) of the same routing cell, from the same period
  if any, else the other period, else any cell; the model only for strata
  the version never served;
* ``standardization``: Das Gupta's rates per (cell, version); a rate the
  period lacks is the other period's plus the within-cell change that the
  versions serving both periods share (parallel drift).

Every estimator works on the additive sums of :mod:`toolkit.attribution.sums`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .sums import CellSums, ModelSample

#: Shapley weight of each (routing state, mechanism state) pair in the data effect.
DATA_WEIGHTS = {(0, 0): 1 / 3, (1, 0): 1 / 6, (0, 1): 1 / 6, (1, 1): 1 / 3}


@dataclass(frozen=True)
class Models:
    """Per-version outcome models: ``beta[c, v]`` (intercept first) and their sandwich covariance."""

    beta: np.ndarray
    cov: np.ndarray
    rows: np.ndarray
    pooled: np.ndarray


def fit_models(sample: ModelSample, n_versions: int, p: int, *, per_period: bool,
               ridge: float = 1e-3) -> Models:
    """Ridge-stabilised least squares per (period, version), with HC0 covariance.

    ``per_period=False`` (model outputs: a resolved version is a fixed
    function) fits each version on both periods' rows; ``True`` (outcome
    metrics) fits each period's own behaviour, falling back to the pooled
    fit (flagged in ``pooled``) where a version served no row in a period.
    """
    beta = np.zeros((2, n_versions, p + 1))
    cov = np.zeros((2, n_versions, p + 1, p + 1))
    rows = np.zeros((2, n_versions), dtype=int)
    pooled = np.zeros((2, n_versions), dtype=bool)
    Z1 = np.column_stack([np.ones(len(sample.y)), sample.z])

    def fit(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X, y = Z1[mask], sample.y[mask]
        if len(y) == 0:
            return np.zeros(p + 1), np.zeros((p + 1, p + 1))
        pen = np.full(p + 1, ridge * len(y))
        pen[0] = 0.0
        xtx = X.T @ X + np.diag(pen)
        inv = np.linalg.pinv(xtx)
        b = inv @ (X.T @ y)
        e = y - X @ b
        meat = (X * (e ** 2)[:, None]).T @ X
        return b, inv @ meat @ inv

    for v in range(n_versions):
        mv = sample.v == v
        both = fit(mv)
        for c in (0, 1):
            mc = mv & (sample.t == c)
            rows[c, v] = int(mc.sum()) if per_period else int(mv.sum())
            if per_period and mc.sum() > p + 1:
                beta[c, v], cov[c, v] = fit(mc)
            else:
                beta[c, v], cov[c, v] = both
                pooled[c, v] = per_period
    return Models(beta, cov, rows, pooled)


def draw_models(models: Models, rng: np.random.Generator) -> np.ndarray:
    """One draw of the coefficients from their estimated sampling distribution."""
    out = models.beta.copy()
    for c, v in itertools.product(range(out.shape[0]), range(out.shape[1])):
        cv = models.cov[c, v]
        if not cv.any():
            continue
        w, U = np.linalg.eigh((cv + cv.T) / 2)
        out[c, v] += U @ (np.sqrt(np.clip(w, 0, None)) * rng.standard_normal(len(w)))
    if models.pooled.shape[0] == 2 and not models.pooled.any() and np.array_equal(models.beta[0], models.beta[1]):
        out[1] = out[0]
    return out


@dataclass(frozen=True)
class Cells:
    """The sums of one replicate reduced over groups: served side and input side.

    ``N, SY, SZ`` are per (t, r, v) (the rows each version served);
    ``Nin, Zin`` per (t, r) (every input of the cell: held fixed by the
    conditional bootstrap). The matched method's stratum sums carry an
    extra axis ``s`` after ``v``.
    """

    N: np.ndarray
    SY: np.ndarray
    SZ: np.ndarray
    Nin: np.ndarray
    Zin: np.ndarray
    Ns: np.ndarray | None = None
    SYs: np.ndarray | None = None
    SZs: np.ndarray | None = None
    Nsin: np.ndarray | None = None
    Zsin: np.ndarray | None = None

    @property
    def w(self) -> np.ndarray:
        tot = self.Nin.sum(axis=1, keepdims=True)
        return np.divide(self.Nin, tot, out=np.zeros_like(self.Nin), where=tot > 0)

    @property
    def zall(self) -> np.ndarray:
        return _div(self.Zin, self.Nin[..., None])

    def routing(self) -> tuple[np.ndarray, np.ndarray]:
        """Pi[b, r, v], and where period b had no row in r (its routing borrowed from the other)."""
        tot = self.N.sum(axis=2, keepdims=True)
        Pi = _div(self.N, tot)
        missing = tot[..., 0] == 0
        for b in (0, 1):
            rows = missing[b] & ~missing[1 - b]
            Pi[b, rows] = Pi[1 - b, rows]
        return Pi, missing & ~missing[::-1]

    def observed(self) -> tuple[float, float]:
        """The metric of each window: cell means weighted by the cells' (input) shares.

        Equal to the plain mean of the rows when nothing is reweighted; in a
        conditional replicate the cells keep their inputs' shares.
        """
        cell_mean = _div(self.SY.sum(axis=2), self.N.sum(axis=2))
        m = (self.w * cell_mean).sum(axis=1)
        return float(m[0]), float(m[1])


def reduce(sums: CellSums, weights: np.ndarray | None, msums: CellSums | None,
           input_weights: np.ndarray | None) -> Cells:
    """Weighted sums over the replicate groups (``weights`` of shape (t, r, v, g) or None)."""
    def red(a: np.ndarray, w: np.ndarray | None, strata: bool) -> np.ndarray:
        if w is None:
            return a.sum(axis=-1) if a.ndim == (5 if strata else 4) else a.sum(axis=-2)
        if strata:
            ww = w[:, :, :, None, :]
        else:
            ww = w
        if a.ndim == ww.ndim:
            return (a * ww).sum(axis=-1)
        return (a * ww[..., None]).sum(axis=-2)

    N, SY, SZ = red(sums.n, weights, False), red(sums.sy, weights, False), red(sums.sz, weights, False)
    Nin = red(sums.n, input_weights, False).sum(axis=2)
    Zin = red(sums.sz, input_weights, False).sum(axis=2)
    if msums is None:
        return Cells(N, SY, SZ, Nin, Zin)
    Ns, SYs, SZs = red(msums.n, weights, True), red(msums.sy, weights, True), red(msums.sz, weights, True)
    Nsin = red(msums.n, input_weights, True).sum(axis=2)
    Zsin = red(msums.sz, input_weights, True).sum(axis=2)
    return Cells(N, SY, SZ, Nin, Zin, Ns, SYs, SZs, Nsin, Zsin)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape)), where=b > 0)


@dataclass(frozen=True)
class Fill:
    """``mu[c, a, r, v]`` and ``model[c, a, r, v]``, the share of it resting on the outcome model."""

    mu: np.ndarray
    model: np.ndarray


def _predict(beta: np.ndarray, z: np.ndarray) -> np.ndarray:
    """beta[c, v, :] . [1, z[..., :]] -> [c, ..., v]."""
    return np.einsum("cvp,...p->c...v", beta[:, :, 1:], z) + beta[:, None, :, 0].reshape(
        (beta.shape[0],) + (1,) * (z.ndim - 1) + (beta.shape[1],))


def regression_fill(cells: Cells, beta: np.ndarray, *, model_output: bool) -> Fill:
    """Outcome model on the cell's inputs plus the mean residual of the version's rows in the cell."""
    pred = _predict(beta, cells.zall)                       # [c, a, r, v]
    ybar = _div(cells.SY, cells.N)                           # [t, r, v]
    zv = _div(cells.SZ, cells.N[..., None])                  # [t, r, v, p]
    fit_v = np.einsum("cvp,trvp->ctrv", beta[:, :, 1:], zv) + beta[:, None, None, :, 0]
    resid = ybar[None] - fit_v                               # [c, t, r, v]
    served = cells.N > 0
    corr = np.zeros_like(pred)
    model = np.zeros_like(pred)
    for c, a in itertools.product((0, 1), repeat=2):
        if model_output:
            src_a, src_b = served[a], served[1 - a]
            corr[c, a] = np.where(src_a, resid[c, a], np.where(src_b, resid[c, 1 - a], 0.0))
            model[c, a] = (~src_a).astype(float)
        else:
            corr[c, a] = np.where(served[c], resid[c, c], 0.0)
            model[c, a] = (~served[a]).astype(float)
    return Fill(pred + corr, model)


def _parallel_shift(rate: np.ndarray, N: np.ndarray, a: int) -> np.ndarray:
    """Per cell: the change from the other period to ``a`` shared by the versions serving both."""
    b = 1 - a
    both = (N[a] > 0) & (N[b] > 0)
    omega = np.where(both, 1.0 / (1.0 / np.where(both, N[a], 1) + 1.0 / np.where(both, N[b], 1)), 0.0)
    diff = np.where(both, rate[a] - rate[b], 0.0)
    tot = omega.sum(axis=1)
    pooled = (omega * diff).sum() / omega.sum() if omega.sum() > 0 else 0.0
    return np.where(tot > 0, (omega * diff).sum(axis=1) / np.where(tot > 0, tot, 1), pooled)


def standardization_fill(cells: Cells, fallback: Fill, *, model_output: bool) -> Fill:
    """Das Gupta rates per (cell, version); a missing rate gets the other period's plus the parallel shift."""
    rate = _div(cells.SY, cells.N)
    served = cells.N > 0
    R, V = rate.shape[1:]
    full = np.zeros((2, R, V))
    used_model = np.zeros((2, R, V))
    for t in (0, 1):
        shift = _parallel_shift(rate, cells.N, t)[:, None]
        imputed = rate[1 - t] + shift
        full[t] = np.where(served[t], rate[t], np.where(served[1 - t], imputed, fallback.mu[t, t]))
        used_model[t] = (~served[t] & ~served[1 - t]).astype(float)
    mu = np.zeros((2, 2, R, V))
    model = np.zeros((2, 2, R, V))
    for c, a in itertools.product((0, 1), repeat=2):
        src = a if model_output else c
        mu[c, a] = full[src]
        model[c, a] = used_model[src]
    return Fill(mu, model)


def matched_fill(cells: Cells, beta: np.ndarray, *, model_output: bool) -> Fill:
    """Post-stratified cohort means inside each routing cell; the model only for strata never served."""
    assert cells.Ns is not None and cells.SYs is not None and cells.Nsin is not None and cells.Zsin is not None
    Ns, SYs = cells.Ns, cells.SYs                            # [t, r, v, s]
    ws = _div(cells.Nsin, cells.Nin[..., None])              # [a, r, s]
    zs = _div(cells.Zsin, cells.Nsin[..., None])             # [a, r, s, p]
    ybar = _div(SYs, Ns)
    any_cell = Ns.sum(axis=1)                                # [t, v, s]
    ybar_any = _div(SYs.sum(axis=1), any_cell)
    pred = np.einsum("cvp,arsp->carvs", beta[:, :, 1:], zs) + beta[:, None, None, :, 0, None]
    R, V, S = Ns.shape[1:]
    mu = np.zeros((2, 2, R, V))
    model = np.zeros((2, 2, R, V))
    for c, a in itertools.product((0, 1), repeat=2):
        if model_output:
            order = [(a, False), (1 - a, False), (a, True), (1 - a, True)]
        else:
            order = [(c, False), (c, True)]
        m = pred[c, a].copy()
        filled = np.zeros((R, V, S), dtype=bool)
        for t, pooled in order:
            if pooled:
                avail = np.broadcast_to(any_cell[t][None] > 0, (R, V, S))
                val = np.broadcast_to(ybar_any[t][None], (R, V, S))
            else:
                avail = Ns[t] > 0
                val = ybar[t]
            take = avail & ~filled
            m = np.where(take, val, m)
            filled |= take
        mu[c, a] = np.einsum("rs,rvs->rv", ws[a], m)
        model[c, a] = np.einsum("rs,rvs->rv", ws[a], (~filled).astype(float))
    return Fill(mu, model)


def m_table(cells: Cells, fill: Fill) -> np.ndarray:
    """M[a, b, c] for all eight combinations."""
    Pi, _ = cells.routing()
    w = cells.w
    out = np.empty((2, 2, 2))
    for a, b, c in itertools.product((0, 1), repeat=3):
        out[a, b, c] = float(np.einsum("r,rv,rv->", w[a], Pi[b], fill.mu[c, a]))
    return out


def extrapolated_weight(cells: Cells, fill: Fill) -> float:
    """Share of the counterfactual traffic (M(A,B) and M(B,A)) whose behaviour rests on the model."""
    Pi, _ = cells.routing()
    w = cells.w
    tot = 0.0
    for a in (0, 1):
        b = 1 - a
        tot += float(np.einsum("r,rv,rv->", w[a], Pi[b], fill.model[a, a]))
    return tot / 2


def data_drift_parts(cells: Cells, fill: Fill, beta: np.ndarray, groups: dict[str, list[int]]) -> dict[str, float]:
    """Exact split of the regression's data drift: routing-cell mix, each covariate, the rest.

    ``M(1,b,c) - M(0,b,c) = sum_r sum_v Pi_b(v|r) [(w_1 - w_0) mean(mu) + mean(w) (mu_1 - mu_0)]``
    and ``mu_1 - mu_0 = beta_v . (zbar_1,r - zbar_0,r) + (residual terms)``: the first
    term is the routing-cell mix, the model term splits by covariate, the
    residual terms are what no single covariate's shift explains.
    """
    Pi, _ = cells.routing()
    w = cells.w
    dz = cells.zall[1] - cells.zall[0]                       # [r, p]
    wbar = (w[0] + w[1]) / 2
    out = {"routing cell mix": 0.0, **{g: 0.0 for g in groups}}
    total = 0.0
    for (b, c), om in DATA_WEIGHTS.items():
        mu0, mu1 = fill.mu[c, 0], fill.mu[c, 1]
        total += om * float(np.einsum("rv,rv->", Pi[b], w[1][:, None] * mu1 - w[0][:, None] * mu0))
        out["routing cell mix"] += om * float(np.einsum("r,rv,rv->", w[1] - w[0], Pi[b], (mu0 + mu1) / 2))
        for g, idx in groups.items():
            contrib = np.einsum("vp,rp->rv", beta[c][:, [1 + j for j in idx]], dz[:, idx])
            out[g] += om * float(np.einsum("r,rv,rv->", wbar, Pi[b], contrib))
    out["not explained by single covariates"] = total - sum(out.values())
    return out


def routing_dependence(cells: Cells, sd: np.ndarray, min_rows: int = 30) -> list[tuple[float, float, int, int, int, int]]:
    """Standardised differences between a version's served inputs and its cell's inputs.

    Returns (smd, z, t, r, v, term) for every served (t, r, v) with at least
    ``min_rows`` rows in a cell several versions share.
    """
    Pi, _ = cells.routing()
    zv = _div(cells.SZ, cells.N[..., None])
    out = []
    for t, r, v in zip(*np.nonzero(cells.N >= min_rows)):
        if (cells.N[t, r] > 0).sum() < 2 or Pi[t, r, v] >= 1:
            continue
        d = zv[t, r, v] - cells.zall[t, r]
        smd = np.divide(d, sd, out=np.zeros_like(d), where=sd > 0)
        se = np.sqrt((1 - Pi[t, r, v]) / cells.N[t, r, v])
        j = int(np.argmax(np.abs(smd))) if len(smd) else 0
        if len(smd):
            out.append((float(smd[j]), float(smd[j] / se), int(t), int(r), int(v), j))
    return out
