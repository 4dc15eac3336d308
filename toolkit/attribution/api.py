"""Entry point: :func:`attribute`.

Normalises every input once, reads the rows in a few passes into additive
sums per (period, routing cell, version, replicate group)
(:mod:`~toolkit.attribution.sums`) and hands them to
:mod:`~toolkit.attribution.estimate`, which fits one outcome model per
version on a hash sample, runs the three estimators of
:mod:`~toolkit.attribution.routed` and bootstraps them by reweighting
replicate groups.
"""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING, Literal, ParamSpec, get_args
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from ..engine.choose import Engine, EngineOption, check_engine, engine_runner, resolve_engine, span_of
from ..engine.run import Runner, runner_for
from ..store.attach.excluded import excluded_in
from ..errors import InputError, NotApplicable
from ..sqlutil import quote_ident, table_columns
from ..store import Store, opened
from ..timeutil import Window, parse_window
from .profile import profile_covariates
from .rows import Covariate, any_region, default_covariates, normalise_where
from .design import Design, build_design, covariate_kinds, input_name
from .models import pooled_fit, row_weights
from .drift import feature_drift
from .metrics import VIEW, Metric, parse_metric
from .results import METHODS, AttributionResult
from .estimate import Behaviour, Inputs, _estimate
from .sums import ModelSample, Selection, cell_sums, model_sample

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

MethodOption = Literal["regression", "matched", "standardization", "all"]
SCHEMES = ("conditional", "population")
_P = ParamSpec("_P")
#: Most quantile bins per numeric covariate (step terms of the outcome model).
MAX_BINS = 20
#: Covariates the matching strata use (those whose shift carries most of the data drift).
MATCH_COVARIATES = 3
MATCH_BINS = 4
MATCH_LEVELS = 6


def _names(value: Sequence[str] | str | None, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [c.strip() for c in value.split(",")]
    if not isinstance(value, (list, tuple)):
        raise InputError(f"{what} must be a list of column names or 'a,b,c', got {type(value).__name__}")
    return [str(c).strip() for c in value if str(c).strip()]


def _int_option(value: object, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise InputError(f"{name} must be {bound}, got {value}")
    return int(value)


def _methods(method: str) -> tuple[str, ...]:
    if method not in get_args(MethodOption):
        raise InputError(f"unknown method {method!r}: use one of {', '.join(get_args(MethodOption))}")
    return METHODS if method == "all" else (method,)


def default_routing(con, windows: Sequence[Window], run: Runner | None = None) -> list[str]:
    """The deployment scope columns the rows carry: ``region`` when a row of the windows has one (on ``run``)."""
    cols = table_columns(con, VIEW)
    if "region" in cols and any_region(runner_for(con, run), windows):
        return ["region"]
    return []


def attribute_behaviour(
    store: Store | str | os.PathLike,
    metric: str | Metric,
    baseline: str | Window | tuple,
    comparison: str | Window | tuple,
    *,
    covariates: Sequence[str] | str | None = None,
    where: Mapping[str, object] | Sequence[str] | None = None,
    method: MethodOption = "all",
    bins: int = 5,
    routing_by: Sequence[str] | str | None = None,
    categorical: Sequence[str] | str | None = None,
    segments: bool = False,
    n_boot: int = 200,
    seed: int = 0,
    include_shadow: bool = False,
    level: float = 0.95,
    interval: str = "conditional",
    engine: EngineOption | Engine | None = None,
    spark: SparkSession | None = None,
) -> tuple[AttributionResult, Behaviour]:
    """:func:`attribute`, and the per-version behaviour behind it (for :mod:`toolkit.causes`).

    :func:`attribute` is made from this function (:func:`_result_only`), so
    the parameter list, its checks and the work live here once; the
    parameters are documented there.
    """
    methods = _methods(method)
    m = parse_metric(metric)
    A = parse_window(baseline, what="baseline window")
    B = parse_window(comparison, what="comparison window")
    n_boot = _int_option(n_boot, "n_boot", 0, 100_000)
    seed = _int_option(seed, "seed", 0)
    bins = _int_option(bins, "bins", 1, MAX_BINS)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise InputError(f"level must be a number between 0 and 1, got {level!r}")
    if interval not in SCHEMES:
        raise InputError(f"interval must be one of {', '.join(SCHEMES)}, got {interval!r}")
    for flag, name in ((include_shadow, "include_shadow"), (segments, "segments")):
        if not isinstance(flag, bool):
            raise InputError(f"{name} must be True or False, got {flag!r}")
    check_engine(engine)
    with opened(store) as st:
        with engine_runner(st.con, resolve_engine(engine, spark, st), span_of([A, B])) as run:
            inputs = _read(st.con, m, A, B, _names(covariates, "covariates"), where, bins,
                           _names(routing_by, "routing_by"), _names(categorical, "categorical") or [],
                           include_shadow, segments, run)
        with threadpool_limits(limits=1, user_api="blas"):
            keep = Behaviour()
            res = _estimate(st.con, m, inputs, methods, n_boot, seed, float(level), interval, keep)
            return res, keep


def _result_only(work: Callable[_P, tuple[AttributionResult, Behaviour]], name: str,
                 doc: str) -> Callable[_P, AttributionResult]:
    """``work`` returning only its result: a public function with the same parameters, typed and checked once.

    The signature shown by ``help`` and ``inspect.signature`` is ``work``'s
    with the result's return type; ``doc`` is the public docstring.
    """
    def result(*args: _P.args, **kwargs: _P.kwargs) -> AttributionResult:
        return work(*args, **kwargs)[0]

    result.__name__ = result.__qualname__ = name
    result.__module__ = work.__module__
    result.__doc__ = doc
    # through __dict__: a function object takes any attribute, the type checker knows only the declared ones
    result.__dict__["__signature__"] = inspect.signature(work).replace(return_annotation="AttributionResult")
    return result


_ATTRIBUTE_DOC = """Split the shift of a metric into data drift, version drift and residual.

    Parameters
    ----------
    store
        A :class:`toolkit.Store` or the path of a store file (opened read-only).
    metric
        ``rate:<column>=<value>``, ``mean:<column>``, ``accuracy`` /
        ``accuracy:<prediction>=<outcome>,...``, ``logloss:<outcome value>``
        (or a :class:`Metric`).
    baseline, comparison
        Windows ``FROM..TO`` (half-open, UTC), :class:`~toolkit.timeutil.Window`
        or ``(start, end)`` pairs.
    covariates
        Columns that explain data drift and feed the outcome models (a list
        or ``"a,b,c"``); default every declared covariate plus ``region``.
        They never stratify the routing.
    where
        Row filters: ``{"region": "eu"}``, ``{"region": ["eu", "us"]}`` or
        ``["region=eu"]`` (columns checked, values bound).
    method
        ``regression``, ``matched``, ``standardization`` or ``all``.
    bins
        Quantile bins per numeric covariate (step terms of the outcome model), 1 to 20.
    routing_by
        Columns of the deployment scope that decide which version answers
        (default ``region`` when the rows have one; ``[]`` for one cell).
        Add a segment column here when the deployment routes by it.
    categorical
        Numeric covariates (integer codes) to treat as categories.
    segments
        Estimate each version's behaviour inside the deployment segments of
        its routing cell (the stretches between the scope's deployment
        events) instead of over the whole window: for inputs that trend
        inside a window while a rollout or rollback moves the routing.
    n_boot
        Bootstrap replicates for the intervals (0 gives point estimates with NaN intervals).
    seed
        Seed of the bootstrap (results are reproducible).
    include_shadow
        Count shadow-scored rows (they did not answer traffic; excluded by default).
    level
        Interval level; intervals are estimate +/- z * SD of the replicates.
    interval
        ``conditional`` (default): the inputs of each window are held fixed,
        routing and the served rows are redrawn (the effects on *this*
        traffic, what a replay of the logged requests measures);
        ``population``: inputs are resampled too.
    engine
        Where the row-level passes run: ``duckdb`` (the store) or ``spark``
        (the store's resolved rows of the windows exported to Parquet and
        read by Spark; the statistics stay local on the small tables), or a
        :class:`toolkit.Engine`. Same result. Default: the engine the store
        was opened with (``Store(path, engine=...)``), else DuckDB.
    spark
        The Spark session (implies ``engine="spark"``); None builds one from
        the standard configuration (``SPARK_REMOTE`` for Spark Connect, else
        ``SparkSession.builder.getOrCreate()``).

    Returns
    -------
    AttributionResult

    Raises
    ------
    InputError
        Unknown columns, unreadable windows or specs, bad options.
    NotApplicable
        A window without rows for the metric, or a split that cannot be
        estimated from the rows given (the message says what would fix it).
    """
attribute = _result_only(attribute_behaviour, "attribute", _ATTRIBUTE_DOC)




def _read(con, m: Metric, A: Window, B: Window, covs: list[str] | None, where, bins: int,
          routing_by: list[str] | None, categorical: list[str], include_shadow: bool, segments: bool,
          run: Runner | None = None) -> Inputs:
    run = runner_for(con, run)
    m.check(con)
    filters = normalise_where(where, con)
    covs = default_covariates(con, [A, B], run) if covs is None else covs
    routing = default_routing(con, [A, B], run) if routing_by is None else routing_by
    cols = table_columns(con, VIEW)
    for c in routing:
        if c not in cols:
            raise InputError(f"unknown routing column {c!r}; the predictions have: {', '.join(sorted(cols))}")
    sel = Selection(m, A, B, tuple(filters), include_shadow, segments)
    prof = profile_covariates(con, m, A, B, covs, where=filters, include_shadow=include_shadow,
                              bins=sorted({bins, 10, MATCH_BINS}), categorical=categorical, run=run)
    kinds = covariate_kinds(cols, covs, categorical)
    m.check_values(con, sel, run)
    n_rows = [int(prof.excluded.filter(pl.col("period") == t)["rows"].sum()) for t in (0, 1)]
    n_excl = [int(prof.excluded.filter(pl.col("period") == t)["excluded"].sum()) for t in (0, 1)]
    for t, w in ((0, A), (1, B)):
        if n_rows[t] - n_excl[t] == 0:
            what = "baseline" if t == 0 else "comparison"
            raise NotApplicable(
                f"the {what} window {w} has no rows for metric {m.spec!r}"
                + (f" ({n_excl[t]} rows lack a value for it)" if n_excl[t] else "")
                + "; pick a window with traffic (vdrift status shows the span of the store)")
    design = build_design(prof, kinds, bins=bins, moments=prof.moments)
    # the hash sample first: it chooses the matching covariates, so one pass reads the sums per stratum
    sample = model_sample(con, sel, design, routing, prof.version_rows, run=run)
    match_on = _match_covariates(sample, design)
    arms = sample.arms()
    sql, params, size = _stratum_sql(design, match_on)
    msums = cell_sums(con, sel, design, routing, stratum=(sql, params, size), run=run, sticky=arms.sticky)
    sums = msums.collapsed()
    sample = sample.indexed(sums)
    drift = feature_drift(con, m, A, B, tuple(Covariate(c, k) for c, k in kinds.items()), where=filters,
                          include_shadow=include_shadow, profile=prof)
    by_version = tuple((int(t), str(v), int(r), int(e)) for t, v, e, r in
                       prof.excluded.select("period", "version", "excluded", "rows").iter_rows())
    return Inputs(sel, design, tuple(routing), sums, sample, drift, (n_excl[0], n_excl[1]), msums, tuple(match_on),
                  by_version, excluded_in(con, [A, B], run), arms)


def _match_covariates(sample: ModelSample, design: Design) -> list[str]:
    """The covariates whose shift carries most of the data drift, judged on the hash sample.

    A least-squares fit of the metric on the design terms (versions pooled,
    each sampled row weighted by the rows it stands for) times the shift of
    the terms' weighted means between the windows: the regression's split of
    the data drift by covariate, approximately, before any cell is summed.
    """
    groups = {c: design.index_of(c) for c in design.covariates if design.index_of(c)}
    if not groups or len(sample.y) == 0:
        return []
    w = row_weights(sample)
    beta = pooled_fit(sample)
    means = []
    for t in (0, 1):
        m = sample.t == t
        means.append((sample.z[m] * w[m, None]).sum(axis=0) / max(w[m].sum(), 1e-12) if m.any()
                     else np.zeros(design.p))
    shift = means[1] - means[0]
    score = {g: abs(float(beta[[1 + j for j in idx]] @ shift[idx])) for g, idx in groups.items()}
    return sorted(score, key=lambda g: (-score[g], g))[:MATCH_COVARIATES]


def _stratum_sql(design: Design, names: Sequence[str]) -> tuple[str, list, int]:
    """Integer SQL of the matching stratum: joint bins of a few covariates (quartiles / top levels).

    It reads the design's input columns (:meth:`Design.inputs`): a numeric
    covariate's finite value (missing, NaN and infinities in the lowest
    bin), a categorical one's level code (the top levels; 0 the reference
    and the rest).
    """
    parts, params, size = [], [], 1
    for name in names:
        col = quote_ident(input_name(design.covariates.index(name)))
        if design.kinds[name] == "numeric":
            edges = list(design.edges.get(name, ()))
            # quartiles of the design's bins: every other edge when there are more
            if len(edges) > MATCH_BINS - 1:
                step = len(edges) / MATCH_BINS
                edges = sorted({edges[min(len(edges) - 1, int(round(step * (k + 1))) - 1)]
                                for k in range(MATCH_BINS - 1)})
            expr = " + ".join(f"CAST(coalesce({col} >= ?, FALSE) AS INTEGER)" for _ in edges) or "0"
            params_k: list = list(edges)
            base = len(edges) + 1
        else:
            n_levels = min(MATCH_LEVELS - 1, sum(1 for t in design.terms if t.covariate == name and t.kind == "level"))
            expr = f"CASE WHEN {col} BETWEEN 1 AND {n_levels} THEN {col} ELSE 0 END" if n_levels else "0"
            params_k = []
            base = n_levels + 1
        parts.append(f"({expr}) * {size}")
        params += params_k
        size *= base
    return (" + ".join(parts) or "0"), params, size
