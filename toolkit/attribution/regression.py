"""Regression method: a GLM of the metric on version and covariates, fitted on cells.

The model (binomial GLM with logit link for rates, Gaussian for means) is fitted
with statsmodels on the (period x stratum x version) cells with
``var_weights = n``:

    g(E[y]) = version + covariates + version x covariates (where supported)
              + period x version (for versions seen in both periods)

Categorical covariates enter as dummies; a numeric covariate enters as a
cubic polynomial of the cell mean of its value on the model scale
(``log(1 + x)`` for non-negative right-skewed covariates such as amounts and
ages, the raw value otherwise; standardized), so the model sees the
covariate shift *within* bins that a stratified estimator cannot.

The model is plugged into M (DESIGN.md section 4) as a regression-adjusted
standardization: the mechanism of period c on the data of period a in
stratum s for version v is

    F[c, a, s, v] = ybar_c(s, v) + mu_c(ubar_a(s), v) - mu_c(ubar_c(s), v)

i.e. the observed cell mean moved along the fitted curve to the other
period's within-stratum covariate means. A cell period c never saw borrows
the other period's mean c' and is moved from c' inputs:
``F[c, a] = ybar_c'(s, v) + mu_c(xbar_a(s), v) - mu_c(xbar_c'(s), v)``. Hence ``M(A, A, A)`` and
``M(B, B, B)`` are the observed values exactly, and the regression differs
from plain standardization by the model-based part of the data drift that
happens inside strata. Cells a period never saw borrow the other period's
cell mean (a resolved version is a fixed function), as in standardization.

Bootstrap replicates refit the model by a few Newton (IRLS) steps started
at the point estimate (a k-step bootstrap, Davidson and MacKinnon 1999),
with the design matrices built once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import statsmodels.api as sm

from .cells import CellArrays
from .decompose import Factors, cell_factors, cell_means, composition, routing


def _scale(cells: CellArrays) -> tuple[np.ndarray, np.ndarray]:
    """Pooled mean and SD of each numeric covariate on the model scale."""
    su = cells.su if cells.su is not None else cells.sx
    tot = cells.n.sum()
    mean = su.reshape(-1, su.shape[-1]).sum(axis=0) / tot
    u = np.divide(su, cells.n[..., None], out=np.zeros_like(su), where=cells.n[..., None] > 0)
    dev = ((u - mean) ** 2 * cells.n[..., None]).reshape(-1, su.shape[-1]).sum(axis=0) / tot
    return mean, np.sqrt(np.clip(dev, 1e-12, None))


def _cell_u(cells: CellArrays, centre: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Standardized within-cell means on the model scale, shape (2, S, V, K)."""
    su = cells.su if cells.su is not None else cells.sx
    n = cells.n[..., None]
    u = np.divide(su, n, out=np.broadcast_to(centre, su.shape).copy(), where=n > 0)
    return np.clip((u - centre) / spread, -6, 6)


def _stratum_u(cells: CellArrays, centre: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Standardized within-stratum means per period, shape (2, S, K); a missing stratum takes the other period's."""
    su = cells.su if cells.su is not None else cells.sx
    ns = cells.n.sum(axis=2)[..., None]
    ss = su.sum(axis=2)
    u = np.divide(ss, ns, out=np.full_like(ss, np.nan), where=ns > 0)
    for t in (0, 1):
        miss = np.isnan(u[t]) & ~np.isnan(u[1 - t])
        u[t][miss] = u[1 - t][miss]
    u = np.where(np.isnan(u), centre, u)
    return np.clip((u - centre) / spread, -6, 6)


@dataclass(frozen=True)
class RegressionModel:
    """Design of the regression, fixed across bootstrap replicates.

    Attributes
    ----------
    columns
        Names of the design columns.
    interactions
        Covariates interacted with version.
    period_versions
        Versions with a period term (seen in both periods).
    X
        Design of the observed cells (rows follow ``index``).
    index
        (t, s, v) of the observed cells.
    Xpred
        ``Xpred[c][a]``: design of the whole stratum x version grid with the
        period-c terms and the period-a covariate means, shape (S*V, k).
    """

    columns: tuple[str, ...]
    interactions: tuple[str, ...]
    period_versions: tuple[int, ...]
    X: np.ndarray = field(repr=False)
    index: tuple[np.ndarray, np.ndarray, np.ndarray] = field(repr=False)
    Xpred: tuple = field(repr=False)
    is_rate: bool = True


def _design(cells: CellArrays, categorical: list[str], interactions: tuple[str, ...],
            period_versions: tuple[int, ...], t: np.ndarray, s: np.ndarray, v: np.ndarray,
            u: np.ndarray) -> tuple[np.ndarray, list[str]]:
    V = len(cells.versions)
    cols: list[np.ndarray] = []
    names: list[str] = []
    vd = np.eye(V)[v]
    for j in range(V):
        cols.append(vd[:, j])
        names.append(f"version[{cells.versions[j]}]")
    blocks: list[tuple[str, np.ndarray, list[str]]] = []
    for name in categorical:
        lv = cells.strata[name].to_numpy()
        levels = sorted(set(lv.tolist()))
        lvs = lv[s]
        mat = np.column_stack([(lvs == L).astype(float) for L in levels[1:]]) if len(levels) > 1 \
            else np.zeros((len(s), 0))
        blocks.append((name, mat, [f"{name}[{L}]" for L in levels[1:]]))
    for k, name in enumerate(cells.numeric):
        z = u[:, k]
        blocks.append((name, np.column_stack([z, z**2, z**3]), [name, f"{name}^2", f"{name}^3"]))
    for name, mat, nms in blocks:
        for i in range(mat.shape[1]):
            cols.append(mat[:, i])
            names.append(nms[i])
        if name in interactions:
            for j in range(1, V):
                for i in range(mat.shape[1]):
                    cols.append(mat[:, i] * vd[:, j])
                    names.append(f"{nms[i]}:version[{cells.versions[j]}]")
    for j in period_versions:
        cols.append((t == 1).astype(float) * vd[:, j])
        names.append(f"period[B]:version[{cells.versions[j]}]")
    return np.column_stack(cols), names


def build_model(cells: CellArrays, categorical: list[str], *, is_rate: bool,
                min_levels_per_version: int = 2, interact: bool = True) -> RegressionModel:
    """Choose the terms the data supports and build the design matrices.

    A covariate is interacted with version when every version was seen at
    ``min_levels_per_version`` or more of its levels (bins, for numeric
    covariates); a version gets a period term when both periods saw it.
    Columns that are constant on the observed cells are dropped. With
    ``interact=False`` the model has main effects only (used for the
    post-matching adjustment of the matched method).
    """
    n = cells.n
    V = len(cells.versions)
    nv = n.sum(axis=0)  # (S, V)
    interactions = []
    for name in list(categorical) + list(cells.numeric):
        lv = cells.strata[name].to_numpy()
        ok = interact and V > 1 and all(len(set(lv[nv[:, j] > 0].tolist())) >= min_levels_per_version for j in range(V))
        if ok:
            interactions.append(name)
    both = (n.sum(axis=1) > 0).all(axis=0)
    period_versions = tuple(int(j) for j in np.flatnonzero(both))
    t, s, v = np.nonzero(n > 0)
    centre, spread = _scale(cells)
    X, names = _design(cells, categorical, tuple(interactions), period_versions, t, s, v,
                       _cell_u(cells, centre, spread)[t, s, v])
    keep = X.std(axis=0) > 1e-12
    keep[:V] = [bool(np.any(v == j)) for j in range(V)]
    # drop collinear columns (pivoted QR) so the IRLS steps stay well posed; the
    # weighted design is used so that columns seen only in tiny cells still count
    Xk = X[:, keep] * np.sqrt(n[t, s, v])[:, None]
    _, r, piv = scipy.linalg.qr(Xk, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int(np.sum(diag > 1e-9 * max(1.0, diag.max(initial=0.0))))
    idx = np.sort(np.flatnonzero(keep)[piv[:rank]])
    keep = np.zeros_like(keep)
    keep[idx] = True
    S = cells.n.shape[1]
    gs, gv = np.meshgrid(np.arange(S), np.arange(V), indexing="ij")
    gs, gv = gs.ravel(), gv.ravel()
    us = _stratum_u(cells, centre, spread)
    Xpred = tuple(
        tuple(_design(cells, categorical, tuple(interactions), period_versions, np.full(gs.shape, c), gs, gv,
                      us[a][gs])[0][:, keep] for a in (0, 1))
        for c in (0, 1)
    )
    return RegressionModel(tuple(nm for nm, k in zip(names, keep) if k), tuple(interactions), period_versions,
                           X[:, keep], (t, s, v), Xpred, is_rate)


@dataclass(frozen=True)
class RegressionFit:
    """A fitted cell-level GLM."""

    params: np.ndarray
    converged: bool
    warnings: tuple[str, ...]
    n_cells: int


def fit_statsmodels(model: RegressionModel, cells: CellArrays) -> RegressionFit:
    """Fit the GLM on the observed cells with statsmodels (the point estimate)."""
    t, s, v = model.index
    n = cells.n[t, s, v]
    y = np.divide(cells.sy[t, s, v], n, out=np.zeros_like(n), where=n > 0)
    family = sm.families.Binomial() if model.is_rate else sm.families.Gaussian()
    if model.is_rate:
        y = np.clip(y, 0.0, 1.0)
    msgs: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = sm.GLM(y, model.X, family=family, var_weights=n).fit(maxiter=100, tol=1e-8)
            params, converged = np.asarray(res.params), bool(getattr(res, "converged", True))
        except (np.linalg.LinAlgError, ValueError) as exc:
            params, converged = np.zeros(model.X.shape[1]), False
            msgs.append(f"GLM failed: {exc}")
    msgs += sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
    return RegressionFit(params, converged, tuple(msgs), int(len(n)))


def refit(model: RegressionModel, cells: CellArrays, start: np.ndarray, *, steps: int = 2) -> np.ndarray:
    """A few IRLS steps from ``start`` on re-weighted cells (bootstrap replicates)."""
    t, s, v = model.index
    n = cells.n[t, s, v]
    y = np.divide(cells.sy[t, s, v], n, out=np.zeros_like(n), where=n > 0)
    X = model.X
    beta = start.copy()
    ridge = 1e-8 * np.eye(X.shape[1])
    for _ in range(steps if model.is_rate else 1):
        if model.is_rate:
            eta = np.clip(X @ beta, -30, 30)
            mu = 1.0 / (1.0 + np.exp(-eta))
            wv = np.clip(mu * (1 - mu), 1e-10, None)
            w = n * wv
            z = eta + (y - mu) / wv
        else:
            w, z = n, y
        XtW = X.T * w
        beta = np.linalg.solve(XtW @ X + ridge * max(1.0, float(w.sum())), XtW @ z)
    return beta


def regression_factors(model: RegressionModel, cells: CellArrays, params: np.ndarray) -> Factors:
    """Factors of the regression-adjusted standardization (module docstring)."""
    if not cells.numeric:
        return cell_factors(cells.n, cells.sy)
    f, borrowed = cell_means(cells.n, cells.sy)
    S, V = cells.shape
    mu = np.empty((2, 2, S, V))
    for c in (0, 1):
        for a in (0, 1):
            eta = model.Xpred[c][a] @ params
            m = 1.0 / (1.0 + np.exp(-np.clip(eta, -40, 40))) if model.is_rate else eta
            mu[c, a] = m.reshape(S, V)
    F = np.empty_like(mu)
    for c in (0, 1):
        # a cell period c never saw holds the other period's mean, observed at that period's inputs
        base = np.where(borrowed[c], mu[c, 1 - c], mu[c, c])
        for a in (0, 1):
            F[c, a] = f[c] + mu[c, a] - base
    Pi, _ = routing(cells.n)
    return Factors(composition(cells.n), Pi, F)
