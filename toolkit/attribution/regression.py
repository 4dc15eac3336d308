"""Regression method: a GLM of the metric on version and covariates, fitted on cells.

The model (binomial GLM with logit link for rates, Gaussian for means) is fitted
on the (period x stratum x version) cells with ``var_weights = n``:

    g(E[y]) = version + covariates + version x covariates (where supported)
              + period x version (for versions seen in both periods)

Categorical covariates enter as dummies; numeric covariates enter as a cubic
polynomial of the cell mean of the raw value (not of the bin), so the model
sees the covariate shift *within* bins that a stratified estimator cannot.

The model is plugged into M (DESIGN.md section 4) as a regression-adjusted
standardization: the mechanism of period c on the data of period a in
stratum s for version v is

    F[c, a, s, v] = ybar_c(s, v) + mu_c(xbar_a(s), v) - mu_c(xbar_c(s), v)

i.e. the observed cell mean moved along the fitted curve to the other
period's within-stratum covariate means. Hence ``M(A, A, A)`` and
``M(B, B, B)`` are the observed values exactly, and the regression differs
from plain standardization by the model-based part of the data drift that
happens inside strata. Cells a period never saw borrow the other period's
cell mean (a resolved version is a fixed function), as in standardization.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import statsmodels.api as sm

from .cells import CellArrays
from .decompose import Factors, cell_means, composition, routing


@dataclass(frozen=True)
class DesignSpec:
    """Which terms the regression uses (fixed across bootstrap replicates).

    Attributes
    ----------
    categorical
        Covariate name -> its levels (first level is the reference).
    numeric
        Numeric covariate names (cubic in the standardized cell mean).
    centre, spread
        Standardization of each numeric covariate.
    interactions
        Covariates interacted with version.
    period_versions
        Versions with a period term (seen in both periods).
    columns
        Names of the design columns kept (non-constant).
    """

    versions: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]]
    numeric: tuple[str, ...]
    centre: np.ndarray
    spread: np.ndarray
    interactions: tuple[str, ...]
    period_versions: tuple[int, ...]
    keep: np.ndarray = field(repr=False)
    columns: tuple[str, ...] = ()


def _raw_design(cells: CellArrays, spec_like: dict, t: np.ndarray, s: np.ndarray, v: np.ndarray,
                xbar: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Design matrix rows for (period t, stratum s, version v, numeric means xbar)."""
    V = len(cells.versions)
    cols: list[np.ndarray] = []
    names: list[str] = []
    vd = np.eye(V)[v]
    for j in range(V):
        cols.append(vd[:, j])
        names.append(f"version[{cells.versions[j]}]")
    blocks: list[tuple[str, np.ndarray, list[str]]] = []
    for name, levels in spec_like["categorical"].items():
        lv = cells.strata[name].to_numpy()[s]
        mat = np.column_stack([(lv == L).astype(float) for L in levels[1:]]) if len(levels) > 1 else np.zeros((len(s), 0))
        blocks.append((name, mat, [f"{name}[{L}]" for L in levels[1:]]))
    for k, name in enumerate(spec_like["numeric"]):
        z = (xbar[:, k] - spec_like["centre"][k]) / spec_like["spread"][k]
        mat = np.column_stack([z, z**2, z**3])
        blocks.append((name, mat, [f"{name}", f"{name}^2", f"{name}^3"]))
    for name, mat, nms in blocks:
        for i in range(mat.shape[1]):
            cols.append(mat[:, i])
            names.append(nms[i])
        if name in spec_like["interactions"]:
            for j in range(1, V):
                for i in range(mat.shape[1]):
                    cols.append(mat[:, i] * vd[:, j])
                    names.append(f"{nms[i]}:version[{cells.versions[j]}]")
    for j in spec_like["period_versions"]:
        cols.append((t == 1).astype(float) * vd[:, j])
        names.append(f"period[B]:version[{cells.versions[j]}]")
    X = np.column_stack(cols) if cols else np.zeros((len(t), 0))
    return X, names


def _cell_xbar(cells: CellArrays) -> np.ndarray:
    """Within-cell means of the numeric covariates, shape (2, S, V, K)."""
    n = cells.n[..., None]
    return np.divide(cells.sx, n, out=np.zeros_like(cells.sx), where=n > 0)


def _stratum_xbar(cells: CellArrays) -> np.ndarray:
    """Within-stratum means of the numeric covariates per period, shape (2, S, K).

    A stratum a period lacks takes the other period's mean.
    """
    ns = cells.n.sum(axis=2)[..., None]
    sx = cells.sx.sum(axis=2)
    xb = np.divide(sx, ns, out=np.full_like(sx, np.nan), where=ns > 0)
    for t in (0, 1):
        miss = np.isnan(xb[t]) & ~np.isnan(xb[1 - t])
        xb[t][miss] = xb[1 - t][miss]
    return np.nan_to_num(xb)


def make_spec(cells: CellArrays, categorical: list[str], *, min_levels_per_version: int = 2) -> DesignSpec:
    """Choose the terms the data supports.

    A covariate is interacted with version when every version was seen at
    ``min_levels_per_version`` or more of its levels (bins for numeric
    covariates); a version gets a period term when both periods saw it.
    """
    n = cells.n
    V = len(cells.versions)
    cat = {}
    for name in categorical:
        seen = n.sum(axis=(0, 2)) > 0
        levels = sorted(set(cells.strata[name].to_numpy()[seen].tolist()))
        cat[name] = tuple(levels)
    numeric = cells.numeric
    tot_n = n.sum()
    centre = np.array([cells.sx[..., k].sum() / tot_n for k in range(len(numeric))])
    var = np.array([cells.sxx[..., k].sum() / tot_n for k in range(len(numeric))]) - centre**2
    spread = np.sqrt(np.clip(var, 1e-12, None))
    interactions = []
    nv = n.sum(axis=0)  # (S, V)
    for name in list(cat) + list(numeric):
        if name in cat:
            lv = cells.strata[name].to_numpy()
        else:
            lv = cells.strata[name].to_numpy()  # bin labels
        ok = V > 1
        for j in range(V):
            levels_seen = set(lv[nv[:, j] > 0].tolist())
            if len(levels_seen) < min_levels_per_version:
                ok = False
        if ok:
            interactions.append(name)
    both = (n.sum(axis=1) > 0).all(axis=0)
    period_versions = tuple(int(j) for j in np.flatnonzero(both))
    like = {"categorical": cat, "numeric": numeric, "centre": centre, "spread": spread,
            "interactions": tuple(interactions), "period_versions": period_versions}
    t, s, v = np.nonzero(n > 0)
    X, names = _raw_design(cells, like, t, s, v, _cell_xbar(cells)[t, s, v])
    keep = X.std(axis=0) > 0
    keep[: V] = [bool(np.any(v == j)) for j in range(V)]
    return DesignSpec(cells.versions, cat, numeric, centre, spread, tuple(interactions), period_versions,
                      keep, tuple(nm for nm, k in zip(names, keep) if k))


@dataclass(frozen=True)
class RegressionFit:
    """A fitted cell-level GLM and what it took."""

    params: np.ndarray
    converged: bool
    warnings: tuple[str, ...]
    n_cells: int


def fit(cells: CellArrays, spec: DesignSpec, *, is_rate: bool, start: np.ndarray | None = None) -> RegressionFit:
    """Fit the GLM on the non-empty cells."""
    t, s, v = np.nonzero(cells.n > 0)
    like = spec.__dict__
    X, _ = _raw_design(cells, like, t, s, v, _cell_xbar(cells)[t, s, v])
    X = X[:, spec.keep]
    n = cells.n[t, s, v]
    y = cells.sy[t, s, v] / n
    family = sm.families.Binomial() if is_rate else sm.families.Gaussian()
    if is_rate:
        y = np.clip(y, 0.0, 1.0)
    msgs: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = sm.GLM(y, X, family=family, var_weights=n)
        try:
            res = model.fit(start_params=start, maxiter=100, tol=1e-8)
            params, converged = np.asarray(res.params), bool(getattr(res, "converged", True))
        except (np.linalg.LinAlgError, ValueError) as exc:
            params, converged = np.zeros(X.shape[1]), False
            msgs.append(f"GLM failed: {exc}")
    msgs += sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught})
    return RegressionFit(params, converged, tuple(msgs), int(len(n)))


def predict(cells: CellArrays, spec: DesignSpec, params: np.ndarray, period: int, xbar: np.ndarray,
            *, is_rate: bool) -> np.ndarray:
    """Model mean mu_period(xbar(s), v) on the whole stratum x version grid, shape (S, V)."""
    S, V = cells.shape
    s, v = np.meshgrid(np.arange(S), np.arange(V), indexing="ij")
    s, v = s.ravel(), v.ravel()
    t = np.full(s.shape, period)
    X, _ = _raw_design(cells, spec.__dict__, t, s, v, xbar[s])
    eta = X[:, spec.keep] @ params
    mu = 1.0 / (1.0 + np.exp(-np.clip(eta, -40, 40))) if is_rate else eta
    return mu.reshape(S, V)


def regression_factors(cells: CellArrays, spec: DesignSpec, fitted: RegressionFit, *, is_rate: bool) -> Factors:
    """Factors of the regression-adjusted standardization (module docstring)."""
    f, _ = cell_means(cells.n, cells.sy)
    Pi, _ = routing(cells.n)
    P = composition(cells.n)
    if not cells.numeric:
        F = np.stack([np.stack([f[0], f[0]]), np.stack([f[1], f[1]])])
        return Factors(P, Pi, F)
    xs = _stratum_xbar(cells)
    mu = np.empty((2, 2) + f.shape[1:])
    for c in (0, 1):
        for a in (0, 1):
            mu[c, a] = predict(cells, spec, fitted.params, c, xs[a], is_rate=is_rate)
    F = np.empty_like(mu)
    for c in (0, 1):
        for a in (0, 1):
            F[c, a] = f[c] + mu[c, a] - mu[c, c]
    return Factors(P, Pi, F)
