"""The estimation steps of :func:`~toolkit.attribution.api.attribute`, on the inputs already read.

:func:`_estimate` fits one outcome model per version on the hash sample,
fills the cells with the three estimators of :mod:`~toolkit.attribution.routed`,
bootstraps them by reweighting replicate groups and assembles the
:class:`~toolkit.attribution.results.AttributionResult` with its diagnostics.
:mod:`~toolkit.attribution.api` normalises the options and reads the
:class:`Inputs`; this module never touches the store.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..store.attach.excluded import Excluded
from ..errors import NotApplicable
from . import diagnostics as dg
from . import routed as rt
from . import transport as tr
from .decompose import effects
from .design import Design
from .metrics import Metric
from .models import Models, draw_models, fit_models
from .clusters import Arms
from .groups import collinear_groups
from .results import COMPONENTS, METHODS, AttributionResult, Diagnostics, Note
from .sums import CellSums, ModelSample, Selection


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
    #: attached predictions: the windows' rows that are not valid, left out (None for an ingested store)
    attached_excluded: Excluded | None = None
    #: how the experiment arms are assigned, and so what the replicate groups hash (:mod:`.clusters`)
    arms: Arms = Arms()


@dataclass
class Behaviour:
    """Per-version behaviour behind an attribution, for :mod:`toolkit.causes`.

    ``mu[c, a, r, v]``: version v's mean metric on window a's inputs in
    routing cell r (with window c's behaviour), of the first method; ``draws``
    the same per bootstrap replicate (NaN where a replicate was skipped);
    ``w[a, r]`` the cells' shares of each window's rows; ``model[c, a, r, v]``
    the share of ``mu`` resting on the outcome model; ``pi[b, r, v]`` the
    routing of each window and ``pi_draws`` per replicate; ``var[t, r, v]``
    the variance of one row's metric among the version's rows, times the
    design effect of entity clusters where experiment arms are sticky
    (:meth:`~toolkit.attribution.clusters.Arms.effect`).
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
    models = fit_models(inp.sample, len(sums.versions), design.p, per_period=not model_output,
                           parent=sums.parent)
    groups, merged = collinear_groups({c: design.index_of(c) for c in design.covariates if design.index_of(c)},
                                      inp.sample)
    parts = _data_drift_parts(sums, models, groups, model_output)
    cells0 = rt.reduce(sums, None, inp.msums, None)
    sd_terms = inp.sample.z.std(axis=0) if len(inp.sample.y) else np.zeros(design.p)
    fill = _Fills(model_output, rt.imbalanced(cells0, sd_terms))
    all_fills = fill(cells0, models.beta, METHODS)
    if keep is not None:
        _keep_point(keep, cells0, all_fills[methods[0]], sums, n_boot, inp.arms)
    point_all = {k: _split(cells0, f) for k, f in all_fills.items()}
    point_fills = {k: all_fills[k] for k in methods}
    spread = _model_spread(point_all)
    trans, carry = _transport(cells0, inp, model_output)
    draws, part_draws = _bootstrap(sums, inp.msums, cells0, models, fill, methods, list(parts), groups,
                                   n_boot, seed, interval, keep, inp.arms)
    if keep is not None:
        _carry_into_draws(keep, trans, seed, model_output)
    z = _z(level)
    frame = _component_frame(methods, point_all, draws, spread, carry, z, n_boot)
    data_parts = _parts_frame(parts, part_draws, z, n_boot, keep_rows="regression" in methods,
                              carried_sd=float(carry[0]))

    observed = cells0.observed()
    support = _support(cells0, point_fills, models, design, sums, inp)
    tnote = tr.note(trans, carry, m.scale(), m.unit, observed)
    shift = abs(observed[1] - observed[0])
    notes, details = dg.assess(
        m, frame, support, rt.routing_dependence(cells0, sd_terms), design, sums, inp, observed, n_boot,
        list(inp.match_on), _behaviour_change(inp, models, cells0, model_output),
        (tnote, float(np.max(carry[:2])) / shift if shift > 0 else 0.0) if tnote is not None else None)
    _add_error_details(details, trans, carry, spread, point_all)
    details["replicate_groups"] = inp.arms.as_dict()
    if inp.arms.sticky:
        notes.append(_arms_note(inp.arms))
    if merged:
        details["feature_groups"] = merged
        notes.append(_groups_note(merged))
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


def _data_drift_parts(sums: CellSums, models: Models, groups: dict[str, list[int]],
                      model_output: bool) -> dict[str, float]:
    """The regression's split of the data drift by covariate (and routing cell mix), on the unstratified cells."""
    base = rt.reduce(sums, None, None, None)
    reg = rt.regression_fill(base, models.beta, model_output=model_output)
    return rt.data_drift_parts(base.regional(), rt.regionalize(base, reg), models.beta, groups)


def _keep_point(keep: Behaviour, cells0: rt.Cells, first: rt.Fill, sums: CellSums, n_boot: int,
                arms: Arms) -> None:
    """Fill ``keep`` with the point behaviour of the first method; the replicates start as NaN (skipped)."""
    reg = rt.regionalize(cells0, first)
    keep.regions, keep.versions = sums.regions, sums.versions
    keep.mu, keep.model, keep.w = reg.mu, reg.model, cells0.regional().w
    keep.draws = [np.full_like(reg.mu, np.nan) for _ in range(n_boot)]
    keep.pi = cells0.regional().routing()[0]
    keep.var = _within_var(sums) * arms.effect(1, sums.regions)[..., None]
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
    trans = tr.measure(reg0, inp.sample, inp.sums.parent, term_var, model_output=model_output,
                       same_window=inp.sel.baseline == inp.sel.comparison)
    carry = np.append(tr.component_sd(reg0.w, reg0.routing()[0], trans.sd, model_output=model_output), 0.0)
    return trans, carry


def _carry_into_draws(keep: Behaviour, trans: tr.Transport, seed: int, model_output: bool) -> None:
    """Add the transport error to the kept replicates of ``mu``: explain's impacts then carry it too.

    The attribution adds the error to its components through their gradient
    (:func:`~toolkit.attribution.transport.component_sd`); the causes are
    other functions of ``mu``, so each replicate gets an independent error of
    SD ``trans.sd`` per (window, cell, version) instead, drawn from a stream
    of its own (the bootstrap's draws stay as they were). For a model output
    ``mu_0`` and ``mu_1`` are one function: they share the error.
    """
    if not keep.draws or not trans.sd.size or float(trans.sd.max()) <= 0:
        return
    if trans.sd.shape != keep.mu.shape:
        raise ValueError(f"transport SD {trans.sd.shape} does not match the behaviour {keep.mu.shape}")
    rng = np.random.default_rng([seed, 1])
    for d in keep.draws:
        e = rng.standard_normal(trans.sd.shape) * trans.sd
        if model_output:
            e[1] = e[0]
        d += e


def _bootstrap(sums: CellSums, msums: CellSums, cells0: rt.Cells, models: Models, fill: _Fills,
               methods: tuple[str, ...], part_names: list[str], groups: dict[str, list[int]], n_boot: int,
               seed: int, interval: str, keep: Behaviour | None,
               arms: Arms) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Replicates of each method's split and of the data drift parts, by reweighting replicate groups.

    A replicate that leaves a window without rows is skipped (its row stays
    NaN) before the model draw, so the random stream of the others is the
    one a run without that replicate would use.
    """
    rng = np.random.default_rng(seed)
    deff = arms.effect(0, sums.regions)[:, sums.parent]          # a version's row count, per (t, fine cell)
    draws = {k: np.full((n_boot, 4), np.nan) for k in methods}
    part_draws = np.full((n_boot, len(part_names)), np.nan)
    Pi0 = cells0.N / np.maximum(cells0.N.sum(axis=2, keepdims=True), 1)   # each version's share of its segment
    for b in range(n_boot):
        wts, win = _weights(rng, sums.n.shape, Pi0, interval)
        c = rt.reduce(sums, wts, msums, win)
        if win is None:
            c = _redraw_counts(c, rng, cells0.N, deff)
        if (c.N.sum(axis=(1, 2)) == 0).any():
            continue
        beta = draw_models(models, rng)
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


def _arms_note(arms: Arms) -> Note:
    """The info line on experiment arms assigned per entity, whose rows are bootstrapped by entity."""
    return Note("info", "sticky_arms", (
        f"the experiment arms are assigned per entity: of {arms.entities:,} sampled entities with several experiment "
        f"rows in a segment, {arms.mixed:,} saw more than one version, where routing per request would give about "
        f"{arms.expected:,.0f}; the experiment rows' replicate groups are hashed from entity_id, so the intervals "
        "count each entity's requests as one draw."))


def _groups_note(merged: dict[str, float]) -> Note:
    """The info line on covariates reported as one group in the data drift by covariate."""
    said = "; ".join(f"{name} (|r| {r:.2f})" for name, r in merged.items())
    return Note("info", "feature_groups", (
        f"the data drift by covariate reports {said} as one part each: their contributions to the metric move "
        "together across the rows, so the data cannot tell which of them carries the shift; only their sum is "
        "identified."))


def _parts_frame(parts: dict[str, float], part_draws: np.ndarray, z: float, n_boot: int, *,
                 keep_rows: bool, carried_sd: float = 0.0) -> pl.DataFrame:
    """The data drift by covariate with intervals; empty (same schema) unless the regression was asked for.

    ``carried_sd``: the transport error's SD of the data drift
    (:func:`~toolkit.attribution.transport.component_sd`). The covariates'
    parts are slopes times mean shifts; an error of a carried ``mu`` lands in
    the part no single covariate explains, so its interval carries it.
    """
    names = list(parts)
    psd = np.nanstd(part_draws, axis=0, ddof=1) if n_boot > 1 else np.full(len(names), np.nan)
    psd = np.array([np.hypot(s, carried_sd) if p == rt.UNEXPLAINED_PART else s for p, s in zip(names, psd,
                                                                                              strict=True)])
    frame = pl.DataFrame(
        {"part": names, "estimate": [parts[p] for p in names],
         "ci_low": [parts[p] - z * s for p, s in zip(names, psd, strict=False)],
         "ci_high": [parts[p] + z * s for p, s in zip(names, psd, strict=False)]},
        schema={"part": pl.String, "estimate": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64})
    return frame if keep_rows else frame.clear()


def _behaviour_change(inp: Inputs, models: Models, cells0: rt.Cells, model_output: bool) -> list:
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


def _redraw_counts(c: rt.Cells, rng: np.random.Generator, N0: np.ndarray, deff: np.ndarray) -> rt.Cells:
    """A conditional replicate's version counts per segment, drawn multinomially from the segment's rows.

    The group weights give each version's mean its finite-population
    variance, but the count of a version's rows, a sum of 64 groups' sizes,
    would vary far more than routing does (by about ``n_v / 64`` times the
    multinomial variance). The segment's rows are held fixed, so its
    versions' counts are redrawn from ``Multinomial(n, N0 / n)`` and each
    version's sums are rescaled to its drawn count: the means stay the
    group-reweighted ones, the shares get the variance of routing
    ``n pi (1 - pi)``. Where experiment arms are assigned per entity, a
    version's count moves by whole entities: the draw is over ``n / deff``
    units of ``deff`` rows each (``deff[t, r]``,
    :func:`~toolkit.attribution.clusters.design_effects`; 1 elsewhere).
    """
    n = N0.sum(axis=2)
    p = np.where(n[..., None] > 0, N0 / np.maximum(n, 1)[..., None], 1.0 / N0.shape[2])
    units = np.where(n > 0, np.maximum(np.rint(n / deff), 1), 0).astype(np.int64)
    drawn = rng.multinomial(units, p / p.sum(axis=2, keepdims=True)) * np.divide(
        n, units, out=np.zeros_like(n), where=units > 0)[..., None]
    f = np.divide(drawn, c.N, out=np.zeros_like(c.N), where=c.N > 0)
    if c.Ns is None:
        return dataclasses.replace(c, N=c.N * f, SY=c.SY * f, SZ=c.SZ * f[..., None])
    fs = f[..., None]
    return dataclasses.replace(c, N=c.N * f, SY=c.SY * f, SZ=c.SZ * f[..., None],
                               Ns=c.Ns * fs, SYs=c.SYs * fs, SZs=c.SZs * fs[..., None])


def _support(c: rt.Cells, fills: dict[str, rt.Fill], models: Models, design: Design, sums: CellSums,
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
