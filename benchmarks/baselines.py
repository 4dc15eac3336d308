"""External baselines: a row-level pandas + statsmodels fit of the same GLM, and DoWhy.

Row-level GLM (``pandas_glm``)
    The obvious alternative to cell aggregation: read the rows of both weeks
    into pandas and fit the regression method's GLM with statsmodels on the
    rows. The design is the toolkit's (same terms, listed by
    ``toolkit_glm``), but every column is rebuilt here from the raw rows:
    quantile bin edges, the log1p-or-identity scale and its skewness test,
    the cell means of the numeric covariate (its regressors are functions
    of the row's cell), the pooled standardisation, version dummies,
    categorical dummies, version interactions and period x version terms.
    A Bernoulli GLM on rows and the binomial GLM on cells with
    ``var_weights = n`` have the same likelihood up to a constant, so the
    estimates must agree to the optimiser's tolerance. The design is built
    with numpy (faster than a patsy formula), which favours the baseline.
    Not runnable at present: the cell GLM it is compared with was removed
    from the toolkit (b0c094c), so ``toolkit_glm`` fails with a message
    saying so and ``pandas_glm`` has no reference (see
    :func:`task_toolkit_glm`).

DoWhy (``dowhy``)
    ``dowhy.gcm.distribution_change_robust`` (multiply-robust Shapley change
    attribution) on the same rows and split: covariate nodes (region ->
    channel, merchant category, log amount, account age), a ``version`` node
    with every covariate as parent, and the metric with every other node as
    parent. Data drift = the sum over covariate nodes, version drift = the
    version node, residual = the metric's own node. Categorical values are
    integer codes and the learners are histogram gradient boosting (the
    default linear learners cannot represent a version switch). DoWhy is a
    benchmark-only dependency installed into ``benchmarks/work/dowhy-site``
    (see run.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from benchmarks.tasks import BASELINE, COMPARISON, METRIC, WORK, _data, _store

#: covariates of the GLM comparison (the same on both sides)
GLM_COVARIATES = ["region", "channel", "amount"]


def _windows():
    from toolkit.timeutil import parse_window

    return parse_window(BASELINE), parse_window(COMPARISON)


# ----------------------------------------------------------------------------- toolkit side
def task_toolkit_glm(opts: dict) -> dict:
    """The toolkit's GLM on cells, which no longer exists: this task fails with a message saying so.

    It timed ``toolkit.attribution.cells.build_cells`` and
    ``toolkit.attribution.regression.build_model`` / ``fit_statsmodels``,
    both removed in b0c094c: the regression method is now the Oaxaca-Blinder
    fit on the design terms of :mod:`toolkit.attribution.design` over cell
    sums (:mod:`toolkit.attribution.sums`, :mod:`toolkit.attribution.oaxaca`),
    which the ``attribute`` task times end to end. The row-level rebuild below
    (:func:`_row_design`) follows the removed design (quantile bins, log1p
    scale, cubic terms), so the comparison needs a new reference before it
    means anything again.
    """
    raise RuntimeError(
        "toolkit_glm: the cell GLM this baseline compared (toolkit.attribution.cells / .regression) was removed "
        "in b0c094c; the regression method (Oaxaca-Blinder on toolkit.attribution.design terms) is timed by the "
        "attribute task. Skip this baseline (--no-baselines, or leave 'glm' out of --tasks)"
    )


# ----------------------------------------------------------------------------- pandas side
def _row_frame(con, covs: list[str]):
    """The rows of both weeks that count for the metric, as a pandas frame (what a user would load)."""
    from toolkit.sqlutil import quote_ident

    A, B = _windows()
    cols = ", ".join(quote_ident(c) for c in covs)
    one = (f"SELECT ? AS period, resolved_version AS version, "
           f"CASE WHEN prediction = ? THEN 1.0 ELSE 0.0 END AS y, {cols} "
           "FROM predictions_resolved WHERE ts >= ? AND ts < ? AND prediction IS NOT NULL "
           "AND coalesce(component, 'online') <> 'shadow'")
    params = [0, "approved", A.start, A.end, 1, "approved", B.start, B.end]
    return con.execute(f"{one} UNION ALL {one}", params).df()


def _row_design(df, covs: list[str], columns: list[str], numeric: list[str],
                ref_edges: dict[str, list[float]]) -> tuple[np.ndarray, dict]:
    """Rebuild the toolkit's design matrix from raw rows (see the module docstring).

    The bin edges are recomputed from the rows (``info["edges"]``) but the
    rows are binned at the toolkit's edges ``ref_edges``: DuckDB's
    ``quantile_cont`` and numpy's ``quantile`` can differ in the last bits,
    which moves rows lying exactly on an edge to the other bin (a different
    partition, not a different model); ``info["moved_rows"]`` counts them.
    """
    import pandas as pd

    info: dict = {"edges": {}, "transforms": {}, "moved_rows": 0}
    keys = ["period"] + covs + ["version"]
    key_frame = df[["period", "version"] + [c for c in covs if c not in numeric]].astype(str).copy()
    z: dict[str, np.ndarray] = {}
    us: dict[str, np.ndarray] = {}
    for name in numeric:  # bins first: a cell is (period, every covariate's level or bin, version)
        x = df[name].to_numpy(dtype=float)
        probs = [i / 5 for i in range(1, 5)]
        edges = sorted({float(e) for e in np.quantile(x, probs)})
        edges = [e for e in edges if e > x.min()]
        skew = pd.Series(x).skew()
        transform = "log1p" if x.min() >= 0 and skew > 1 else "identity"
        info["edges"][name], info["transforms"][name] = edges, transform
        own = np.searchsorted(np.asarray(edges), x, side="right")
        key_frame[name] = np.searchsorted(np.asarray(ref_edges[name]), x, side="right")
        info["moved_rows"] += int(np.sum(own != key_frame[name].to_numpy()))
        us[name] = np.log1p(np.maximum(x, 0)) if transform == "log1p" else x
    groups = key_frame.groupby(keys, sort=False, observed=True)
    for name in numeric:
        u = us[name]
        cell_u = pd.Series(u).groupby(groups.ngroup().to_numpy()).transform("mean").to_numpy()
        centre = u.mean()
        spread = np.sqrt(max(float(np.mean((cell_u - centre) ** 2)), 1e-12))
        z[name] = np.clip((cell_u - centre) / spread, -6, 6)

    def base(term: str) -> np.ndarray:
        if term.startswith("period[B]:version["):
            v = term[len("period[B]:version["):-1]
            return ((df["period"].to_numpy() == 1) & (df["version"].to_numpy() == v)).astype(float)
        if ":version[" in term:
            left, v = term.split(":version[")
            return base(left) * (df["version"].to_numpy() == v[:-1]).astype(float)
        for name in numeric:
            if term == name:
                return z[name]
            if term == f"{name}^2":
                return z[name] ** 2
            if term == f"{name}^3":
                return z[name] ** 3
        col, _, level = term.partition("[")
        if col == "version":
            return (df["version"].to_numpy() == level[:-1]).astype(float)
        return (df[col].astype(str).to_numpy() == level[:-1]).astype(float)

    X = np.empty((len(df), len(columns)))
    for j, term in enumerate(columns):
        X[:, j] = base(term)
    return X, info


def task_pandas_glm(opts: dict) -> dict:
    """Row-level pandas + statsmodels fit of the same GLM; compares with the toolkit's coefficients."""
    import statsmodels.api as sm

    reference = Path(opts["reference"])
    if not reference.exists():
        raise RuntimeError(f"pandas_glm: no reference {reference} (toolkit_glm writes it; see task_toolkit_glm)")
    ref = json.loads(reference.read_text())
    covs = opts.get("covariates", GLM_COVARIATES)
    numeric = list(ref["edges"])
    with _store(Path(opts["db"]), opts, read_only=True) as store:
        t0 = time.perf_counter()
        df = _row_frame(store.con, covs)
    t1 = time.perf_counter()
    X, info = _row_design(df, covs, ref["columns"], numeric, ref["edges"])
    y = df["y"].to_numpy(dtype=float)
    t2 = time.perf_counter()
    res = sm.GLM(y, X, family=sm.families.Binomial()).fit(maxiter=100, tol=1e-8)
    t3 = time.perf_counter()
    params = np.asarray(res.params)
    ref_params = np.asarray(ref["params"])
    p_rows = res.fittedvalues if hasattr(res, "fittedvalues") else res.predict(X)
    p_ref = 1.0 / (1.0 + np.exp(-(X @ ref_params)))
    return {
        "seconds": t3 - t0, "load_seconds": t1 - t0, "design_seconds": t2 - t1, "fit_seconds": t3 - t2,
        "rows": int(len(y)), "terms": int(X.shape[1]), "design_bytes": int(X.nbytes),
        "max_abs_param_diff": float(np.max(np.abs(params - ref_params))),
        "max_abs_fitted_diff": float(np.max(np.abs(np.asarray(p_rows) - p_ref))),
        "same_edges": all(np.allclose(info["edges"][k], ref["edges"][k], rtol=0, atol=1e-9) for k in numeric),
        "same_transforms": info["transforms"] == ref["transforms"],
        "rows_on_an_edge_moved": info["moved_rows"],
        "converged": bool(getattr(res, "converged", True)),
    }


# ----------------------------------------------------------------------------- DoWhy
DOWHY_NODES = ["region", "channel", "merchant_category", "amount", "account_age_days"]


def task_dowhy(opts: dict) -> dict:
    """DoWhy's distribution_change_robust on the two weeks; error against the replay truth."""
    import networkx as nx
    from dowhy import gcm
    from dowhy.gcm.ml import create_hist_gradient_boost_classifier, create_hist_gradient_boost_regressor

    from toolkit.sqlutil import quote_ident

    A, B = _windows()
    with _store(Path(opts["db"]), opts, read_only=True) as store:
        cols = ", ".join(quote_ident(c) for c in DOWHY_NODES)
        one = (f"SELECT ? AS period, {cols}, resolved_version AS version, "
               "CASE WHEN prediction = ? THEN 1.0 ELSE 0.0 END AS y FROM predictions_resolved "
               "WHERE ts >= ? AND ts < ? AND prediction IS NOT NULL AND coalesce(component, 'online') <> 'shadow'")
        df = store.con.execute(f"{one} UNION ALL {one}",
                               [0, "approved", A.start, A.end, 1, "approved", B.start, B.end]).df()
    df["amount"] = np.log1p(df["amount"].astype(float))
    for c in ("region", "channel", "merchant_category", "version"):
        df[c] = df[c].astype("category").cat.codes.astype(float)
    graph = nx.DiGraph([("region", n) for n in DOWHY_NODES[1:]]
                       + [(n, "version") for n in DOWHY_NODES]
                       + [(n, "y") for n in DOWHY_NODES + ["version"]])
    model = gcm.ProbabilisticCausalModel(graph)
    old = df[df["period"] == 0].drop(columns="period")
    new = df[df["period"] == 1].drop(columns="period")
    iters = int(opts.get("max_iter", 50))
    t0 = time.perf_counter()
    contrib = gcm.distribution_change_robust(
        model, old, new, "y", xfit=False,
        regressor=lambda: create_hist_gradient_boost_regressor(max_iter=iters),
        classifier=lambda: create_hist_gradient_boost_classifier(max_iter=iters))
    seconds = time.perf_counter() - t0
    est = {"data_drift": float(sum(contrib[n] for n in DOWHY_NODES)), "version_drift": float(contrib["version"]),
           "residual": float(contrib["y"])}
    truth = json.loads((_data(opts) / "ground_truth.json").read_text())["attribution"][METRIC]
    return {"seconds": seconds, "rows": int(len(df)), "estimates": est,
            "errors": {k: est[k] - truth[k] for k in ("data_drift", "version_drift")},
            "truth": {k: truth[k] for k in ("data_drift", "version_drift", "residual", "sampling_noise", "total")},
            "nodes": {str(k): float(v) for k, v in contrib.items()}}


__all__ = ["task_toolkit_glm", "task_pandas_glm", "task_dowhy", "GLM_COVARIATES", "WORK"]
