"""Entry point: :func:`attribute`.

Normalises every input once (store, windows, metric, covariates, filters,
options), aggregates the rows to cells with SQL, runs the requested methods
on the cells, bootstraps them at the cell level and assembles an
:class:`~toolkit.attribution.results.AttributionResult`.
"""

from __future__ import annotations

import itertools
import os
from typing import Literal, Mapping, Sequence, get_args

import numpy as np
from threadpoolctl import threadpool_limits
import polars as pl

from ..errors import InputError
from ..store import Store
from ..timeutil import Window, parse_window
from . import diagnostics as dg
from .bootstrap import SCHEMES, normal_interval, resample
from .cells import (CellArrays, CellTable, Covariate, build_cell_tables, build_cells, default_covariates,
                    matching_edges, normalise_where, profile_bins, profile_covariates)
from .decompose import Factors, cell_factors, effects
from .drift import feature_drift
from .matched import match, matched_factors, sturges_bins
from .metrics import Metric, parse_metric
from .oaxaca import OaxacaResult, oaxaca_blinder
from .regression import RegressionFit, RegressionModel, build_model, fit_statsmodels, refit, regression_factors
from .standardize import standardization_factors
from .results import COMPONENTS, METHODS, AttributionResult, Diagnostics

MethodOption = Literal["regression", "matched", "standardization", "all"]


def _open(store: "Store | str | os.PathLike") -> tuple[Store, bool]:
    if isinstance(store, Store):
        return store, False
    if isinstance(store, (str, os.PathLike)):
        return Store(store, read_only=str(store) != ":memory:"), True
    raise InputError(f"store must be a toolkit.Store or a path to a store file, got {type(store).__name__}")


def _covariate_list(covariates: "Sequence[str] | str | None", con) -> list[str]:
    if covariates is None:
        return default_covariates(con)
    if isinstance(covariates, str):
        covariates = [c.strip() for c in covariates.split(",")]
    out = [str(c).strip() for c in covariates if str(c).strip()]
    return out


def _methods(method: str) -> tuple[str, ...]:
    if method not in get_args(MethodOption):
        raise InputError(f"unknown method {method!r}: use one of {', '.join(get_args(MethodOption))}")
    return METHODS if method == "all" else (method,)


def _cell_oaxaca(cells: CellArrays, covariates: tuple[Covariate, ...]) -> OaxacaResult | None:
    """Linear Oaxaca-Blinder of the shift (comparison minus baseline) on the cells.

    Regressors: version dummies, covariate level dummies and the cell means of
    numeric covariates; the detail frame splits the explained part by term.
    """
    t, s, v = np.nonzero(cells.n > 0)
    if len(set(t.tolist())) < 2:
        return None
    cols, names = [], []
    for j, ver in enumerate(cells.versions[1:], start=1):
        cols.append((v == j).astype(float))
        names.append(f"version[{ver}]")
    for cov in covariates:
        lv = cells.strata[cov.name].to_numpy()[s]
        if cov.kind == "numeric":
            k = cells.numeric.index(cov.name)
            cols.append(cells.sx[t, s, v, k] / cells.n[t, s, v])
            names.append(cov.name)
        else:
            for L in sorted(set(lv.tolist()))[1:]:
                cols.append((lv == L).astype(float))
                names.append(f"{cov.name}[{L}]")
    X = np.column_stack(cols) if cols else np.zeros((len(t), 0))
    y = cells.sy[t, s, v] / cells.n[t, s, v]
    group = np.where(t == 1, "comparison", "baseline")
    return oaxaca_blinder(y, X, group, weights=cells.n[t, s, v], names=names, order=("comparison", "baseline"))


def _matching_bins(cells: CellArrays, covariates: tuple[Covariate, ...], *, min_rows: int = 20) -> int:
    """Automatic CEM bins per numeric covariate.

    Sturges' rule on the rows (the R ``cem`` default), capped at 10 and
    lowered until the CEM grid averages at least ``min_rows`` rows per
    stratum and period, so that few strata lack support in one period (in
    such strata routing cannot be compared, which would shrink version drift).
    """
    n = int(cells.n.sum())
    numeric = [c for c in covariates if c.kind == "numeric"]
    if not numeric:
        return 1
    levels = 1
    for c in covariates:
        if c.kind == "categorical":
            levels *= max(1, cells.strata[c.name].n_unique())
    k = sturges_bins(n, 10)
    while k > 2 and levels * k ** len(numeric) * min_rows * 2 > n:
        k -= 1
    return k


def attribute(
    store: "Store | str | os.PathLike",
    metric: "str | Metric",
    baseline: "str | Window | tuple",
    comparison: "str | Window | tuple",
    *,
    covariates: "Sequence[str] | str | None" = None,
    where: "Mapping[str, object] | Sequence[str] | None" = None,
    method: MethodOption = "all",
    bins: "int | Mapping[str, Sequence[float]]" = 5,
    matched_bins: "int | Mapping[str, Sequence[float]] | None" = None,
    n_boot: int = 200,
    seed: int = 0,
    include_shadow: bool = False,
    level: float = 0.95,
    interval: str = "conditional",
) -> AttributionResult:
    """Split the shift of a metric into data drift, version drift and residual.

    Parameters
    ----------
    store
        A :class:`toolkit.Store` or the path of a store file (opened read-only).
    metric
        ``rate:<column>=<value>``, ``mean:<column>``, ``accuracy`` (or a :class:`Metric`).
    baseline, comparison
        Windows ``FROM..TO`` (half-open, UTC), :class:`~toolkit.timeutil.Window`
        or ``(start, end)`` pairs.
    covariates
        Columns to adjust for (a list or ``"a,b,c"``); default every declared
        covariate plus ``region`` when present. ``[]`` adjusts for nothing.
    where
        Row filters: ``{"region": "eu"}`` or ``["region=eu"]`` (columns
        checked, values bound).
    method
        ``regression``, ``matched``, ``standardization`` or ``all``.
    bins
        Quantile bins per numeric covariate for the strata (or a mapping
        covariate -> interior edges).
    matched_bins
        Coarsening for matching: a number of quantile bins, a mapping of
        edges, or None for Sturges' rule capped at 10 bins and lowered until
        strata average 20 rows per period.
    n_boot
        Bootstrap replicates for the intervals (0 gives point estimates with
        NaN intervals).
    seed
        Seed of the bootstrap (results are reproducible).
    include_shadow
        Count shadow-scored rows (they did not answer traffic; excluded by default).
    level
        Interval level. Intervals are estimate +/- z * SD of ``n_boot``
        cell-level bootstrap replicates.
    interval
        What the intervals account for. ``conditional`` (default): the
        inputs each period received are held fixed and only routing and
        metric values are redrawn, so the interval is about the effects on
        *this* traffic (what a replay of the logged requests through every
        version would measure). ``population``: a row-level Poisson
        bootstrap that also resamples the inputs, for the effects expected
        from the input distribution behind the logs (data-drift intervals
        about twice as wide). See :mod:`toolkit.attribution.bootstrap`.

    Returns
    -------
    AttributionResult

    Raises
    ------
    InputError
        Unknown columns, unreadable windows or specs, bad options.
    NotApplicable
        A window without rows for the metric.
    """
    methods = _methods(method)
    m = parse_metric(metric)
    A = parse_window(baseline, what="baseline window")
    B = parse_window(comparison, what="comparison window")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise InputError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1, got {level!r}")
    if interval not in SCHEMES:
        raise InputError(f"interval must be one of {', '.join(SCHEMES)}, got {interval!r}")
    if isinstance(bins, (int, np.integer)) and bins < 1:
        raise InputError(f"bins must be at least 1, got {bins}")
    st, owned = _open(store)
    try:
        con = st.con
        covs = _covariate_list(covariates, con)
        filters = normalise_where(where, con)
        # a few scans profile the rows (levels, values of numeric covariates: bins, transforms and drift
        # come from those counts); one GROUP BY builds the strata cells and, when matching uses deciles
        # (the usual case from about a thousand rows per stratum), the matching cells too
        prof = profile_covariates(con, m, A, B, covs, where=filters, include_shadow=include_shadow,
                                  bins=profile_bins(bins, matched_bins))
        binnings: list = [bins]
        if "matched" in methods:
            binnings.append(matching_edges(con, m, A, B, prof, matched_bins, 10, where=filters,
                                           include_shadow=include_shadow))
        tables = build_cell_tables(con, m, A, B, covs, where=filters, bins=binnings, include_shadow=include_shadow,
                                   profile=prof)
        table = tables[0]
        cells = table.arrays()
        mtable: CellTable | None = None
        mcells: CellArrays | None = None
        if "matched" in methods:
            mbins = matching_edges(con, m, A, B, prof, matched_bins, _matching_bins(cells, table.covariates),
                                   where=filters, include_shadow=include_shadow)
            mtable = tables[1] if mbins == binnings[1] else build_cells(
                con, m, A, B, covs, where=filters, bins=mbins, include_shadow=include_shadow, profile=prof)
            mcells = mtable.arrays()
        drift = feature_drift(con, m, A, B, table.covariates, where=filters, include_shadow=include_shadow,
                              profile=prof)
    finally:
        if owned:
            st.close()
    # every fit here works on small matrices (cells x terms): one BLAS thread is fastest, and a
    # multi-threaded BLAS stalls badly (seconds per call) when the machine's cores are busy
    with threadpool_limits(limits=1, user_api="blas"):
        return _estimate(m, A, B, table, cells, mtable, mcells, drift, methods, n_boot, seed, level, interval)


def _bootstrap(cells: CellArrays, mcells: CellArrays | None, methods: tuple[str, ...], factors,
               draws: dict[str, np.ndarray], rng: np.random.Generator, n_boot: int, is_rate: bool,
               scheme: str) -> None:
    """Fill ``draws[method][b]`` with the effects and total of replicate ``b``."""
    for b in range(n_boot):
        rc = resample(cells, rng, is_rate=is_rate, scheme=scheme)
        rm = resample(mcells, rng, is_rate=is_rate, scheme=scheme) if mcells is not None else None
        for meth in methods:
            c = rm if meth == "matched" else rc
            if (c.n.sum(axis=(1, 2)) == 0).any():
                continue
            Mtab = factors(meth, c, True).table()
            draws[meth][b, :3] = effects(Mtab)
            draws[meth][b, 3] = Mtab[1, 1, 1] - Mtab[0, 0, 0]


def _estimate(m: Metric, A: Window, B: Window, table: CellTable, cells: CellArrays,
              mtable: CellTable | None, mcells: CellArrays | None, drift: pl.DataFrame,
              methods: tuple[str, ...], n_boot: int, seed: int, level: float,
              interval: str) -> AttributionResult:
    is_rate = m.is_rate
    categorical = [c.name for c in table.covariates if c.kind == "categorical"]
    models: dict[str, tuple[RegressionModel, RegressionFit]] = {}
    if "regression" in methods and cells.numeric:
        rmodel = build_model(cells, categorical, is_rate=is_rate)
        models["regression"] = (rmodel, fit_statsmodels(rmodel, cells))
    if "matched" in methods and mcells is not None and mcells.numeric:
        mmodel = build_model(mcells, categorical, is_rate=is_rate, interact=False)
        models["matched"] = (mmodel, fit_statsmodels(mmodel, mcells))

    def factors(method: str, c: CellArrays, replicate: bool) -> Factors:
        if method == "standardization":
            return standardization_factors(c.n, c.sy)
        if method not in models:
            return matched_factors(c) if method == "matched" else cell_factors(c.n, c.sy)
        model, base = models[method]
        params = refit(model, c, base.params) if replicate else base.params
        return regression_factors(model, c, params)

    point: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for meth in methods:
        Mtab = factors(meth, mcells if meth == "matched" else cells, False).table()
        point[meth] = (effects(Mtab), Mtab)
    observed = (point[methods[0]][1][0, 0, 0], point[methods[0]][1][1, 1, 1])

    rng = np.random.default_rng(seed)
    draws = {meth: np.full((n_boot, 4), np.nan) for meth in methods}
    _bootstrap(cells, mcells, methods, factors, draws, rng, n_boot, is_rate, interval)

    rows = []
    for meth in methods:
        est = np.append(point[meth][0], observed[1] - observed[0])
        if n_boot > 1:
            lo, hi = normal_interval(est, draws[meth], level, scheme=interval)
        else:
            lo = hi = np.full(4, np.nan)
        for i, comp in enumerate(COMPONENTS + ("total",)):
            rows.append((meth, comp, float(est[i]), float(lo[i]), float(hi[i])))
    frame = pl.DataFrame(rows, schema={"method": pl.String, "component": pl.String, "estimate": pl.Float64,
                                       "ci_low": pl.Float64, "ci_high": pl.Float64}, orient="row")
    # the parts must add up to the observed total: fix the last float bit on the residual
    frame = _close_identity(frame, observed[1] - observed[0])

    # -- diagnostics
    notes = []
    details: dict = {}
    details["positivity"], n1 = dg.positivity(cells)
    details["confounding"], n2 = dg.confounding(cells, table.covariates)
    details["small_cells"], n3 = dg.small_cells(cells)
    details["binning"], n4 = dg.binning(table.covariates, mtable.covariates if mtable is not None else None)
    details["disagreement"], n5 = dg.disagreement(frame) if n_boot > 1 else ([], [])
    details["residual"], n6 = dg.residual_flag(frame, is_model_output=m.is_model_output,
                                                      level=max(abs(observed[0]), abs(observed[1]))) \
        if n_boot > 1 else ({"methods_flagged": []}, [])
    notes += n1 + n2 + n3 + n4 + n5 + n6
    ex = table.excluded
    excluded = [int(x) for x in ex["excluded"].to_list()]
    details["excluded_rows"] = {"baseline": excluded[0], "comparison": excluded[1]}
    if sum(excluded):
        what = ("have no outcome yet" if m.kind == "accuracy" or m.column == "outcome"
                else f"have a {m.column} that is NULL or not a number")
        notes.append(dg.Note("warning" if m.kind == "mean" and m.column != "outcome" else "info", "excluded_rows",
                             f"{excluded[0]} baseline and {excluded[1]} comparison rows {what} and are not "
                             "counted"))
    if A.start < B.end and B.start < A.end:
        notes.append(dg.Note("warning", "windows",
                             f"the windows {A} and {B} overlap: rows in the overlap count in both periods"))
    if len(cells.versions) == 1:
        notes.append(dg.Note("info", "single_version",
                             f"all traffic was served by {cells.versions[0]}: version drift is zero by construction"))
    if "matched" in methods and mcells is not None:
        info = match(mcells, mtable.covariates)
        details["matching"] = info.to_dict()
        balance = info.balance
        unmatched = [info.rows_total[t] - info.rows_matched[t] for t in (0, 1)]
        if sum(unmatched):
            notes.append(dg.Note(
                "warning" if max(u / max(1, r) for u, r in zip(unmatched, info.rows_total)) > 0.05 else "info",
                "matching",
                f"matching kept {info.strata_matched} of {info.strata_total} strata; "
                f"{unmatched[0]} baseline and {unmatched[1]} comparison rows fall in strata without support "
                "in the other window and count as data drift (composition change)"))
    else:
        balance = pl.DataFrame()
    for meth in ("regression", "matched"):
        if meth not in methods:
            continue
        model, base_fit = models.get(meth, (None, None))
        details[f"{meth}_model"] = {
            "terms": list(model.columns) if model is not None else [],
            "interactions": list(model.interactions) if model is not None else [],
            "period_terms": [cells.versions[j] for j in model.period_versions] if model is not None else [],
            "converged": base_fit.converged if base_fit is not None else True,
            "warnings": list(base_fit.warnings) if base_fit is not None else [],
            "uses_model": base_fit is not None,
            "transforms": {c.name: c.transform for c in table.covariates if c.kind == "numeric"},
        }
        if base_fit is not None and not base_fit.converged:
            notes.append(dg.Note("warning", meth, f"the {meth} method's GLM did not converge; its within-bin "
                                 "adjustment may be unreliable: compare with standardization"))
    if "standardization" in methods and len(methods) > 1 and cells.numeric and n_boot > 1:
        other = "regression" if "regression" in methods else "matched"
        d_std = frame.filter((pl.col("method") == "standardization") & (pl.col("component") == "data_drift")).row(0, named=True)
        d_oth = frame.filter((pl.col("method") == other) & (pl.col("component") == "data_drift")).row(0, named=True)
        gap = d_oth["estimate"] - d_std["estimate"]
        half = (d_std["ci_high"] - d_std["ci_low"]) / 2
        details["within_bin_shift"] = {"method": other, "data_drift_inside_bins": gap}
        if abs(gap) > half:
            notes.append(dg.Note("warning", "binning",
                                 f"numeric covariates shifted inside their bins: the {other} method attributes "
                                 f"{gap * m.scale():+.3g}{(' ' + m.unit) if m.unit else ''} more to data drift than "
                                 "standardization, which cannot see shifts inside a bin and books them as "
                                 "residual; trust the regression (or matched) split, or raise --bins"))
    oax = _cell_oaxaca(cells, table.covariates)
    notes.sort(key=lambda n: 0 if n.level == "warning" else 1)
    head = dg.headline(m.label, m.unit, m.scale(), observed[1] - observed[0], frame, methods[0],
                       level=max(abs(observed[0]), abs(observed[1])))
    diag = Diagnostics(head, tuple(notes), details)

    n_rows = tuple(int(x) for x in cells.n.sum(axis=(1, 2)))
    mvals = pl.DataFrame(
        [(meth, "AB"[a], "AB"[b], "AB"[c], float(point[meth][1][a, b, c]))
         for meth in methods for a, b, c in itertools.product((0, 1), repeat=3)],
        schema=["method", "data", "routing", "mechanism", "M"], orient="row",
    )
    return AttributionResult(
        metric=m.spec, metric_label=m.label, unit=m.unit, scale=m.scale(), is_model_output=m.is_model_output,
        baseline=str(A), comparison=str(B), observed=(float(observed[0]), float(observed[1])),
        rows=(n_rows[0], n_rows[1]), frame=frame, diagnostics=diag, n_boot=int(n_boot), seed=int(seed), interval=interval,
        level=level, m_values=mvals, cells=table.frame, feature_drift=drift, balance=balance, oaxaca=oax,
    )


def _close_identity(frame: pl.DataFrame, total: float) -> pl.DataFrame:
    """Absorb floating-point rounding (not estimation error) into the residual."""
    out = []
    for meth in frame["method"].unique(maintain_order=True).to_list():
        sub = frame.filter(pl.col("method") == meth)
        comps = dict(zip(sub["component"], sub["estimate"]))
        gap = total - sum(comps[c] for c in COMPONENTS)
        if abs(gap) > 1e-9 * max(1.0, abs(total)):
            raise ArithmeticError(f"{meth}: Shapley effects miss the total by {gap!r}")
        out.append(sub.with_columns(
            pl.when(pl.col("component") == "residual").then(pl.col("estimate") + gap)
            .otherwise(pl.col("estimate")).alias("estimate")))
    return pl.concat(out)
