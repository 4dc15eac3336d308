"""Entry point: :func:`attribute`.

Normalises every input once, reads the rows in a few passes into additive
sums per (period, routing cell, version, replicate group)
(:mod:`~toolkit.attribution.sums`), fits one outcome model per version on a
hash sample, runs the three estimators of :mod:`~toolkit.attribution.routed`
and bootstraps them by reweighting replicate groups.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, ParamSpec, get_args
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from ..engine.run import DuckRunner, Runner, runner_for
from ..errors import InputError, NotApplicable, check_choice
from ..sqlutil import quote_ident, table_columns
from ..store import Store
from ..timeutil import Window, parse_window
from . import diagnostics as dg
from . import routed as rt
from . import transport as tr
from .profile import profile_covariates
from .rows import Covariate, any_region, default_covariates, normalise_where
from .decompose import effects
from .design import Design, build_design, covariate_kinds, input_name
from .drift import feature_drift
from .metrics import VIEW, Metric, parse_metric
from .results import COMPONENTS, METHODS, AttributionResult, Diagnostics
from .sums import CellSums, ModelSample, Selection, cell_sums, model_sample, numeric_moments

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

MethodOption = Literal["regression", "matched", "standardization", "all"]
EngineOption = Literal["duckdb", "spark"]
SCHEMES = ("conditional", "population")
_P = ParamSpec("_P")
#: Most quantile bins per numeric covariate (step terms of the outcome model).
MAX_BINS = 20
#: Covariates the matching strata use (those whose shift carries most of the data drift).
MATCH_COVARIATES = 3
MATCH_BINS = 4
MATCH_LEVELS = 6


def _open(store: Store | str | os.PathLike) -> tuple[Store, bool]:
    if isinstance(store, Store):
        return store, False
    if isinstance(store, (str, os.PathLike)):
        return Store(store, read_only=str(store) != ":memory:"), True
    raise InputError(f"store must be a toolkit.Store or a path to a store file, got {type(store).__name__}")


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


def default_routing(con, run: Runner | None = None) -> list[str]:
    """The deployment scope columns the rows carry: ``region`` when any row has one (``run``: the engine)."""
    cols = table_columns(con, VIEW)
    if "region" in cols and any_region(runner_for(con, run)):
        return ["region"]
    return []


@dataclass(frozen=True)
class Inputs:
    """Everything the estimators need, read from the store."""

    sel: Selection
    design: Design
    routing_by: tuple[str, ...]
    sums: CellSums
    sample: ModelSample
    drift: pl.DataFrame
    excluded: tuple[int, int]
    msums: CellSums
    match_on: tuple[str, ...]
    #: (period, version, rows, excluded) per window and resolved version
    excluded_by_version: tuple[tuple[int, str, int, int], ...] = ()


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
    engine: EngineOption = "duckdb",
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
    check_choice(engine, get_args(EngineOption), "engine")
    st, owned = _open(store)
    try:
        with _runner(st.con, engine, spark) as run:
            inputs = _read(st.con, m, A, B, _names(covariates, "covariates"), where, bins,
                           _names(routing_by, "routing_by"), _names(categorical, "categorical") or [],
                           include_shadow, segments, run)
        with threadpool_limits(limits=1, user_api="blas"):
            keep = Behaviour()
            res = _estimate(st.con, m, inputs, methods, n_boot, seed, float(level), interval, keep)
            return res, keep
    finally:
        if owned:
            st.close()


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
        (the store's resolved rows exported to Parquet and read by Spark;
        the statistics stay local on the small tables). Same result.
    spark
        The Spark session for ``engine="spark"``; None builds one from the
        standard configuration (``SPARK_REMOTE`` for Spark Connect, else
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




@contextmanager
def _runner(con, engine: str, spark: SparkSession | None) -> Iterator[Runner]:
    """The runner of the row-level passes: the store's DuckDB, or Spark over the exported resolved rows."""
    if engine == "duckdb":
        yield DuckRunner(con)
        return
    from ..engine import spark as sp

    session = spark if spark is not None else sp.default_session()
    with tempfile.TemporaryDirectory(prefix="vdrift-spark-") as tmp:
        # the resolved rows (versions resolved against the registry by the store's view), once per call
        path = sp.export_resolved(con, Path(tmp) / "predictions_resolved.parquet")
        with sp.spark_rows(session, path) as run:
            yield run


def _read(con, m: Metric, A: Window, B: Window, covs: list[str] | None, where, bins: int,
          routing_by: list[str] | None, categorical: list[str], include_shadow: bool, segments: bool,
          run: Runner | None = None) -> Inputs:
    run = runner_for(con, run)
    m.check(con)
    filters = normalise_where(where, con)
    covs = default_covariates(con, run) if covs is None else covs
    routing = default_routing(con, run) if routing_by is None else routing_by
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
    moments = numeric_moments(con, sel, [c for c, k in kinds.items() if k == "numeric"], run=run)
    design = build_design(prof, kinds, bins=bins, moments=moments)
    # the hash sample first: it chooses the matching covariates, so one pass reads the sums per stratum
    sample = model_sample(con, sel, design, routing, prof.version_rows, run=run)
    match_on = _match_covariates(sample, design)
    sql, params, size = _stratum_sql(design, match_on)
    msums = cell_sums(con, sel, design, routing, stratum=(sql, params, size), run=run)
    sums = msums.collapsed()
    sample = sample.indexed(sums)
    drift = feature_drift(con, m, A, B, tuple(Covariate(c, k) for c, k in kinds.items()), where=filters,
                          include_shadow=include_shadow, profile=prof)
    by_version = tuple((int(t), str(v), int(r), int(e)) for t, v, e, r in
                       prof.excluded.select("period", "version", "excluded", "rows").iter_rows())
    return Inputs(sel, design, tuple(routing), sums, sample, drift, (n_excl[0], n_excl[1]), msums, tuple(match_on),
                  by_version)


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
    w = sample.weight if len(sample.weight) == len(sample.y) else np.ones(len(sample.y))
    X = np.column_stack([np.ones(len(sample.y)), sample.z])
    pen = np.full(X.shape[1], 1e-3 * w.sum())
    pen[0] = 0.0
    beta = np.linalg.pinv((X * w[:, None]).T @ X + np.diag(pen)) @ ((X * w[:, None]).T @ sample.y)
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


@dataclass
class Behaviour:
    """Per-version behaviour behind an attribution, for :mod:`toolkit.causes`.

    ``mu[c, a, r, v]``: version v's mean metric on window a's inputs in
    routing cell r (with window c's behaviour), of the first method; ``draws``
    the same per bootstrap replicate (NaN where a replicate was skipped);
    ``w[a, r]`` the cells' shares of each window's rows; ``model[c, a, r, v]``
    the share of ``mu`` resting on the outcome model; ``pi[b, r, v]`` the
    routing of each window and ``pi_draws`` per replicate.
    """

    regions: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    mu: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    model: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    w: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    draws: list = dataclasses.field(default_factory=list)
    pi: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    pi_draws: list = dataclasses.field(default_factory=list)
    var: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))


def _estimate(con, m: Metric, inp: Inputs, methods: tuple[str, ...], n_boot: int, seed: int,
              level: float, interval: str, keep: Behaviour | None = None) -> AttributionResult:
    """Point estimates, bootstrap intervals and diagnostics of ``methods`` from the inputs read."""
    sums, design = inp.sums, inp.design
    model_output = m.is_model_output
    models = rt.fit_models(inp.sample, len(sums.versions), design.p, per_period=not model_output,
                           parent=sums.parent)
    groups = {c: design.index_of(c) for c in design.covariates if design.index_of(c)}
    parts = _data_drift_parts(sums, models, groups, model_output)
    cells0 = rt.reduce(sums, None, inp.msums, None)
    sd_terms = inp.sample.z.std(axis=0) if len(inp.sample.y) else np.zeros(design.p)
    fill = _Fills(model_output, rt.imbalanced(cells0, sd_terms))
    all_fills = fill(cells0, models.beta, METHODS)
    if keep is not None:
        _keep_point(keep, cells0, all_fills[methods[0]], sums, n_boot)
    point_all = {k: _split(cells0, f) for k, f in all_fills.items()}
    point_fills = {k: all_fills[k] for k in methods}
    spread = _model_spread(point_all)
    trans, carry = _transport(cells0, inp, model_output)
    draws, part_draws = _bootstrap(sums, inp.msums, cells0, models, fill, methods, list(parts), groups,
                                   n_boot, seed, interval, keep)
    z = _z(level)
    frame = _component_frame(methods, point_all, draws, spread, carry, z, n_boot)
    data_parts = _parts_frame(parts, part_draws, z, n_boot, keep_rows="regression" in methods)

    observed = cells0.observed()
    support = _support(cells0, point_fills, models, design, sums, inp)
    tnote = tr.note(trans, carry, m.scale(), m.unit, observed)
    shift = abs(observed[1] - observed[0])
    notes, details = dg.assess(
        m, frame, support, rt.routing_dependence(cells0, sd_terms), design, sums, inp, observed, n_boot,
        list(inp.match_on), _behaviour_change(inp, models, cells0, model_output),
        (tnote, float(np.max(carry[:2])) / shift if shift > 0 else 0.0) if tnote is not None else None)
    _add_error_details(details, trans, carry, spread, point_all)
    refusal = dg.refusal(support, methods)
    if refusal:
        raise NotApplicable(refusal)
    head = dg.headline(m, frame, methods[0], observed, level, notes)
    A, B = inp.sel.baseline, inp.sel.comparison
    return AttributionResult(
        metric=m.spec, metric_label=m.label, unit=m.unit, scale=m.scale(), is_model_output=model_output,
        baseline=str(A), comparison=str(B), observed=observed,
        rows=(int(cells0.Nin[0].sum()), int(cells0.Nin[1].sum())), frame=frame,
        diagnostics=Diagnostics(head, tuple(notes), details), n_boot=n_boot, seed=seed, interval=interval,
        level=level, m_values=_m_values(cells0, point_fills), cells=_cells_frame(cells0, sums),
        feature_drift=inp.drift, data_drift_parts=data_parts, routing_by=inp.routing_by,
    )


@dataclass(frozen=True)
class _Fills:
    """The estimators' fills of one set of cells: the point estimate and every replicate call the same code.

    ``adjust``: the cells whose inputs the served rows do not balance, fixed
    once on the point cells (:func:`~toolkit.attribution.routed.imbalanced`)
    so that a replicate does not change which cells standardisation adjusts.
    """

    model_output: bool
    adjust: np.ndarray

    def __call__(self, c: rt.Cells, beta: np.ndarray, which: tuple[str, ...]) -> dict[str, rt.Fill]:
        out: dict[str, rt.Fill] = {}
        r = rt.regression_fill(c, beta, model_output=self.model_output)
        if "regression" in which:
            out["regression"] = r
        if "matched" in which:
            out["matched"] = rt.matched_fill(c, beta, model_output=self.model_output)
        if "standardization" in which:
            out["standardization"] = rt.standardization_fill(c, r, model_output=self.model_output,
                                                             adjust=self.adjust)
        return out


def _split(c: rt.Cells, f: rt.Fill) -> np.ndarray:
    """(data drift, version drift, residual, total) of cells ``c`` filled by ``f``: the residual closes the total."""
    eff = effects(rt.m_table(c.regional(), rt.regionalize(c, f)))
    obs = c.observed()
    total = obs[1] - obs[0]
    return np.array([eff[0], eff[1], total - eff[0] - eff[1], total])


def _data_drift_parts(sums: CellSums, models: rt.Models, groups: dict[str, list[int]],
                      model_output: bool) -> dict[str, float]:
    """The regression's split of the data drift by covariate (and routing cell mix), on the unstratified cells."""
    base = rt.reduce(sums, None, None, None)
    reg = rt.regression_fill(base, models.beta, model_output=model_output)
    return rt.data_drift_parts(base.regional(), rt.regionalize(base, reg), models.beta, groups)


def _keep_point(keep: Behaviour, cells0: rt.Cells, first: rt.Fill, sums: CellSums, n_boot: int) -> None:
    """Fill ``keep`` with the point behaviour of the first method; the replicates start as NaN (skipped)."""
    reg = rt.regionalize(cells0, first)
    keep.regions, keep.versions = sums.regions, sums.versions
    keep.mu, keep.model, keep.w = reg.mu, reg.model, cells0.regional().w
    keep.draws = [np.full_like(reg.mu, np.nan) for _ in range(n_boot)]
    keep.pi = cells0.regional().routing()[0]
    keep.var = _within_var(sums)
    keep.pi_draws = [np.full_like(keep.pi, np.nan) for _ in range(n_boot)]


def _model_spread(point_all: dict[str, np.ndarray]) -> np.ndarray:
    """SD of the components across the three estimators (zero for the observed total).

    The estimators differ only where the served rows do not reach (or do not
    balance) the inputs; their spread is part of the uncertainty of any one of them.
    """
    spread = np.std(np.array(list(point_all.values())), axis=0, ddof=1)
    spread[3] = 0.0
    return spread


def _transport(cells0: rt.Cells, inp: Inputs, model_output: bool) -> tuple[tr.Transport, np.ndarray]:
    """The transport measurement and its SD per component (zero for the total).

    Where a version's rows reach only part of its cell's inputs (in time, or
    only in the other window), the model carries its behaviour the rest of
    the way; that error is added to the intervals.
    """
    reg0 = cells0.regional()
    term_var = inp.sample.z.var(axis=0) if len(inp.sample.y) else np.zeros(inp.design.p)
    trans = tr.measure(reg0, inp.sample, inp.sums.parent, term_var, model_output=model_output)
    carry = np.append(tr.component_sd(reg0.w, reg0.routing()[0], trans.sd, model_output=model_output), 0.0)
    return trans, carry


def _bootstrap(sums: CellSums, msums: CellSums, cells0: rt.Cells, models: rt.Models, fill: _Fills,
               methods: tuple[str, ...], part_names: list[str], groups: dict[str, list[int]], n_boot: int,
               seed: int, interval: str, keep: Behaviour | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Replicates of each method's split and of the data drift parts, by reweighting replicate groups.

    A replicate that leaves a window without rows is skipped (its row stays
    NaN) before the model draw, so the random stream of the others is the
    one a run without that replicate would use.
    """
    rng = np.random.default_rng(seed)
    draws = {k: np.full((n_boot, 4), np.nan) for k in methods}
    part_draws = np.full((n_boot, len(part_names)), np.nan)
    Pi0 = cells0.N / np.maximum(cells0.N.sum(axis=2, keepdims=True), 1)   # each version's share of its segment
    for b in range(n_boot):
        wts, win = _weights(rng, sums.n.shape, Pi0, interval)
        c = rt.reduce(sums, wts, msums, win)
        if (c.N.sum(axis=(1, 2)) == 0).any():
            continue
        beta = rt.draw_models(models, rng)
        fills = fill(c, beta, methods)
        for k, f in fills.items():
            draws[k][b] = _split(c, f)
        if keep is not None:
            keep.draws[b] = rt.regionalize(c, fills[methods[0]]).mu
            keep.pi_draws[b] = c.regional().routing()[0]
        if "regression" in fills:
            pr = rt.data_drift_parts(c.regional(), rt.regionalize(c, fills["regression"]), beta, groups)
            part_draws[b] = [pr[p] for p in part_names]
    return draws, part_draws


def _component_frame(methods: tuple[str, ...], point: dict[str, np.ndarray], draws: dict[str, np.ndarray],
                     spread: np.ndarray, carry: np.ndarray, z: float, n_boot: int) -> pl.DataFrame:
    """Estimate and interval per (method, component).

    The replicate SD, the estimators' ``spread`` and the transport error
    ``carry`` are independent sources, so they are added in quadrature.
    """
    rows = []
    for k in methods:
        est = point[k]
        sd = np.nanstd(draws[k], axis=0, ddof=1) if n_boot > 1 else np.full(4, np.nan)
        sd = np.sqrt(sd ** 2 + spread ** 2 + carry ** 2)
        for i, comp in enumerate(COMPONENTS + ("total",)):
            rows.append((k, comp, float(est[i]), float(est[i] - z * sd[i]), float(est[i] + z * sd[i])))
    return pl.DataFrame(rows, schema={"method": pl.String, "component": pl.String, "estimate": pl.Float64,
                                      "ci_low": pl.Float64, "ci_high": pl.Float64}, orient="row")


def _parts_frame(parts: dict[str, float], part_draws: np.ndarray, z: float, n_boot: int, *,
                 keep_rows: bool) -> pl.DataFrame:
    """The data drift by covariate with intervals; empty (same schema) unless the regression was asked for."""
    names = list(parts)
    psd = np.nanstd(part_draws, axis=0, ddof=1) if n_boot > 1 else np.full(len(names), np.nan)
    frame = pl.DataFrame(
        {"part": names, "estimate": [parts[p] for p in names],
         "ci_low": [parts[p] - z * s for p, s in zip(names, psd, strict=False)],
         "ci_high": [parts[p] + z * s for p, s in zip(names, psd, strict=False)]},
        schema={"part": pl.String, "estimate": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64})
    return frame if keep_rows else frame.clear()


def _behaviour_change(inp: Inputs, models: rt.Models, cells0: rt.Cells, model_output: bool) -> list:
    """For a model output, where a version's behaviour moved between the windows (else nothing).

    A resolved version of a model output is a fixed function, so a shift of
    its outcome model beyond the sampled rows' residual spread points at the
    artifact or feature pipeline rather than at the inputs.
    """
    s = inp.sample
    if not model_output or not len(s.y):
        return []
    Z1 = np.column_stack([np.ones(len(s.y)), s.z])
    res = s.y - np.einsum("ip,ip->i", Z1, models.beta[0][s.v, inp.sums.parent[s.r]])
    rsd = np.array([res[s.v == j].std() if (s.v == j).any() else 0.0 for j in range(len(inp.sums.versions))])
    return rt.behaviour_change(cells0, models.beta, rsd)


def _add_error_details(details: dict, trans: tr.Transport, carry: np.ndarray, spread: np.ndarray,
                       point_all: dict[str, np.ndarray]) -> None:
    """Add the error sources beyond the replicates to ``details``: transport, model dependence, every method's split.

    They go after :func:`~toolkit.attribution.diagnostics.assess`'s keys, in this order (the JSON keeps it).
    """
    details["transport"] = {**trans.as_dict(),
                            "sd": dict(zip(COMPONENTS, (float(x) for x in carry[:3]), strict=True))}
    details["model_dependence_sd"] = dict(zip(COMPONENTS, (float(x) for x in spread[:3]), strict=False))
    details["estimates_all_methods"] = {k: dict(zip(COMPONENTS + ("total",), (float(x) for x in v), strict=False))
                                        for k, v in point_all.items()}


def _m_values(cells0: rt.Cells, fills: dict[str, rt.Fill]) -> pl.DataFrame:
    """``M(data, routing, mechanism)`` of each method's fill, one row per method and window combination."""
    mtabs = {k: rt.m_table(cells0.regional(), rt.regionalize(cells0, f)) for k, f in fills.items()}
    return pl.DataFrame(
        [(k, "AB"[a], "AB"[b], "AB"[c], float(mtab[a, b, c]))
         for k, mtab in mtabs.items() for a in (0, 1) for b in (0, 1) for c in (0, 1)],
        schema=["method", "data", "routing", "mechanism", "M"], orient="row")


def _within_var(sums: CellSums) -> np.ndarray:
    """Variance of the metric among each version's rows per (window, routing cell); pooled where thin."""
    R = len(sums.regions)
    agg = []
    for a in (sums.n, sums.sy, sums.syy):
        x = a.sum(axis=-1)                                    # [t, k, v]
        out = np.zeros((2, R) + x.shape[2:])
        rt.add_up(out, sums.parent, x)
        agg.append(out)
    n, sy, syy = agg
    pooled_n, pooled_sy, pooled_syy = n.sum(axis=(0, 1)), sy.sum(axis=(0, 1)), syy.sum(axis=(0, 1))
    def var(n_, sy_, syy_):
        m = np.divide(sy_, n_, out=np.zeros_like(sy_), where=n_ > 0)
        return np.clip(np.divide(syy_, n_, out=np.zeros_like(syy_), where=n_ > 0) - m ** 2, 0, None)
    own = var(n, sy, syy)
    return np.where(n >= 30, own, var(pooled_n, pooled_sy, pooled_syy)[None, None])


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def _weights(rng: np.random.Generator, shape: tuple[int, ...], Pi: np.ndarray,
             interval: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Replicate weights per (t, r, v, g) for the served sums, and for the input sums (None: held fixed).

    Conditional: every served group gets ``1 + sqrt(1 - Pi)(P - 1)`` with
    ``P ~ Poisson(1)``: variance ``1 - Pi``, the finite-population share of a
    version's rows in a cell whose inputs are fixed (its row count then has
    the multinomial variance ``n Pi (1 - Pi)``). Population: one Poisson
    weight per (t, r, g), shared by the versions and the inputs.
    """
    if interval == "conditional":
        P = rng.poisson(1.0, shape)
        scale = np.sqrt(np.clip(1 - Pi, 0, 1))[..., None]
        return 1 + scale * (P - 1), None
    t, r, v, g = shape
    P = np.broadcast_to(rng.poisson(1.0, (t, r, 1, g)), shape).astype(float)
    return P, P


def _support(c: rt.Cells, fills: dict[str, rt.Fill], models: rt.Models, design: Design, sums: CellSums,
             inp: Inputs) -> dict:
    """Where the counterfactual rests on the outcome model, and how far outside the served inputs."""
    reg = c.regional()
    rfills = {k: rt.regionalize(c, f) for k, f in fills.items()}
    Pi, borrowed = reg.routing()
    w = reg.w
    regions = sums.regions
    out: dict = {"extrapolated_share": {k: rt.extrapolated_weight(reg, f) for k, f in rfills.items()},
                 "cells_without_traffic": [], "extrapolations": [], "model_rows": {}, "n_terms": design.p}
    for t, r in zip(*np.nonzero(borrowed), strict=False):
        out["cells_without_traffic"].append({"window": ["baseline", "comparison"][t], "cell": regions[r],
                                             "share_other_window": float(w[1 - t, r])})
    served_any = c.N.sum(axis=(0, 1))
    for j, ver in enumerate(sums.versions):
        out["model_rows"][ver] = int(models.rows[:, j].max())
    zmin, zmax = _served_ranges(inp.sample, design)
    model_share = rfills.get("regression", next(iter(rfills.values()))).model
    sample_region = c.parent[inp.sample.r] if len(inp.sample.r) else inp.sample.r
    for a in (0, 1):
        b = 1 - a
        for r in range(len(regions)):
            for v in range(len(sums.versions)):
                weight = float(w[a, r] * Pi[b, r, v] * model_share[a, a, r, v])
                if weight <= 1e-9:
                    continue
                outside = _outside(inp.sample, sample_region, a, r, v, zmin, zmax, design)
                out["extrapolations"].append({
                    "window": ["baseline", "comparison"][a], "cell": regions[r], "version": sums.versions[v],
                    "weight": weight, "unserved_share": float(model_share[a, a, r, v]),
                    "version_rows": int(served_any[v]), "outside": outside})
    out["extrapolations"].sort(key=lambda e: -e["weight"])
    return out


def _served_ranges(sample: ModelSample, design: Design) -> tuple[dict, dict]:
    """Per version: min and max of each numeric covariate's standardised value over its sampled rows."""
    zmin: dict = {}
    zmax: dict = {}
    cols = [(j, t.covariate) for j, t in enumerate(design.terms) if t.kind == "value"]
    for v in np.unique(sample.v):
        rows = sample.z[sample.v == v]
        for j, name in cols:
            zmin[(int(v), name)] = float(rows[:, j].min())
            zmax[(int(v), name)] = float(rows[:, j].max())
    return zmin, zmax


def _outside(sample: ModelSample, region: np.ndarray, a: int, r: int, v: int, zmin: dict, zmax: dict,
             design: Design) -> list[dict]:
    """Numeric covariates where the sampled inputs of (a, r) fall outside what v served."""
    target = sample.z[(sample.t == a) & (region == r)]
    out: list[dict] = []
    if not len(target):
        return out
    for j, t in enumerate(design.terms):
        if t.kind != "value" or (v, t.covariate) not in zmin:
            continue
        x = target[:, j]
        share = float(((x < zmin[(v, t.covariate)]) | (x > zmax[(v, t.covariate)])).mean())
        if share > 0.01:
            sd, mu = design.spread[t.covariate], design.centre[t.covariate]
            out.append({"covariate": t.covariate, "share": share,
                        "served_range": [zmin[(v, t.covariate)] * sd + mu, zmax[(v, t.covariate)] * sd + mu]})
    out.sort(key=lambda o: -float(o["share"]))
    return out


def _cells_frame(c: rt.Cells, sums: CellSums) -> pl.DataFrame:
    t, r, v = np.nonzero(c.N > 0)
    return pl.DataFrame({
        "period": t.astype(np.int32), "cell": [sums.cells[i] for i in r], "version": [sums.versions[i] for i in v],
        "n": c.N[t, r, v].astype(np.int64), "mean": c.SY[t, r, v] / c.N[t, r, v],
        "routing_share": c.N[t, r, v] / c.Nin[t, r],
    })
