"""Entry point: :func:`explain`, the ranked causes of a metric shift (or of one window's off-intent cost)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeGuard, get_args

import numpy as np
import polars as pl

from ..attribution.api import Behaviour, MethodOption, _int_option, attribute_behaviour
from ..attribution.metrics import parse_metric
from ..attribution.results import AttributionResult
from ..attribution.routed import ROUTING_MIX_PART, UNEXPLAINED_PART
from ..audit.api import audit_units
from ..audit.detectors.divergence import SHADOW_MARGIN
from ..audit.results import AuditResult, AuditThresholds
from ..engine.choose import Engine, EngineOption, check_engine, engine_runner, resolve_engine, span_of
from ..errors import InputError
from ..store import Store, opened
from ..timeutil import Window, parse_window
from . import impact as im
from .intent import Units, units_reader
from .results import CAUSE_SCHEMA, ExplainResult, cost_row
from .timeline import change_points, hours, window_hours

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

#: What identifies one problem across the two windows' audits.
IDENTITY = ("kind", "component", "region", "instance_id")


def explain(
    store: Store | str | os.PathLike,
    metric: str,
    comparison: str | Window | tuple,
    baseline: str | Window | tuple | None = None,
    *,
    method: str = "regression",
    covariates: Sequence[str] | str | None = None,
    bins: int = 5,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
    thresholds: AuditThresholds | None = None,
    where: Mapping[str, object] | Sequence[str] | None = None,
    engine: EngineOption | Engine | None = None,
    spark: SparkSession | None = None,
) -> ExplainResult:
    """Rank the causes of a metric shift: serving problems, data drift by feature, and the residual.

    Parameters
    ----------
    store
        A :class:`toolkit.Store` or the path of a store file (opened read-only).
    metric
        A metric spec as for :func:`toolkit.attribute`.
    comparison
        The window to explain (``FROM..TO``, UTC).
    baseline
        The window to compare with. Without it, explain prices one window:
        what serving off-intent cost in it (no data drift, no baseline).
    method
        The attribution method whose version behaviour prices the rows
        (``regression``, ``matched`` or ``standardization``); ``all`` runs
        every method in the attribution (for its method comparison) and
        prices with the regression.
    covariates, bins, where
        As for :func:`toolkit.attribute`.
    n_boot, seed, level
        Bootstrap replicates, seed and interval level of every impact.
    thresholds
        Audit thresholds (:class:`toolkit.audit.AuditThresholds`).
    engine, spark
        Where the passes over the rows run, as for :func:`toolkit.attribute`
        (default: the store's engine):
        the attribution, both audits and the hourly series read the rows
        through one runner (on Spark: one export of the resolved rows).

    Returns
    -------
    ExplainResult
        The ranked causes (``causes``), the cost of off-intent serving per
        window, the breakdown by version x component x scope, the change
        points, and the attribution behind it.
    """
    if not _is_method(method):
        raise InputError(f"unknown method {method!r}: use one of regression, matched, standardization, all")
    parse_metric(metric)
    B = parse_window(comparison, what="comparison window")
    A = parse_window(baseline, what="baseline window") if baseline is not None else None
    n_boot = _int_option(n_boot, "n_boot", 0, 100_000)
    if thresholds is not None and not isinstance(thresholds, AuditThresholds):
        raise InputError("thresholds must be an AuditThresholds instance (or None for the defaults)")
    check_engine(engine)
    span = span_of([w for w in (A, B) if w is not None], SHADOW_MARGIN)  # the audits' margin covers the rest
    with opened(store) as st:
        eng = resolve_engine(engine, spark, st)
        with engine_runner(st.con, eng, span) as run:
            # on Spark the attribution's own runner is this one (engine_runner reuses an open runner)
            res, beh = attribute_behaviour(st, metric, A or B, B, covariates=covariates, where=where,
                                           method=method, bins=bins, n_boot=n_boot, seed=seed, level=level,
                                           engine=eng)
            windows = [A, B] if A is not None else [B]
            # one pass reads the metric per hour and scope: each window's observed answers and the change points
            observed = hours(st.con, metric, windows, list(res.routing_by), run)
            audits: list[AuditResult] = []
            units: list[Units] = []
            for k, w in enumerate(windows):
                a, u = audit_units(st, w, thresholds, units_reader(window_hours(observed, k)), run)
                audits.append(a)
                units.append(u)
            changes = change_points(st.con, res, observed)
    return _assemble(res, beh, audits, units, A, B, level, changes)


def _is_method(method: str) -> TypeGuard[MethodOption]:
    return method in get_args(MethodOption)


def _z(level: float) -> float:
    from statistics import NormalDist
    return NormalDist().inv_cdf(0.5 + level / 2)


def _merge_findings(audits) -> pl.DataFrame:
    """Findings of every window, one row per problem identity (the same stuck canary in both windows is one)."""
    frames = [a.findings.with_columns(pl.lit(t).alias("window")) for t, a in enumerate(audits)]
    if not frames:
        return pl.DataFrame()
    allf = pl.concat(frames, how="vertical")
    if not allf.height:
        return allf
    allf = allf.with_columns(pl.col("versions").list.sort().list.join(",").alias("_vkey"))
    return (allf.group_by(list(IDENTITY) + ["_vkey"], maintain_order=True)
            .agg(pl.col("finding_id").first(), pl.col("severity").first(), pl.col("versions").first(),
                 pl.col("start").min(), pl.col("end").max(), pl.col("n_requests").sum(),
                 pl.col("explanation").first(), pl.col("window").unique().sort().alias("windows"))
            .drop("_vkey"))


def _assemble(res: AttributionResult, beh: Behaviour, audits, units: list[Units], A, B, level: float,
              changes: pl.DataFrame) -> ExplainResult:
    z = _z(level)
    single = A is None
    findings = _merge_findings(audits)
    periods = [1] if single else [0, 1]
    offs = {t: im.off_rows(u, beh, t) for t, u in zip(periods, units, strict=True)}
    covers = {t: im.coverage(offs[t], findings) for t in periods}
    shares = {t: im.shapley_shares(covers[t]) for t in periods}
    B_ = len(beh.draws)
    window_costs = _window_costs(offs, periods, units, A, B, z, B_)
    if single:
        rows = _single_window_rows(findings, offs[1], covers[1], shares[1], z, B_)
        total = float(np.nansum(offs[1].point))
    else:
        rows = _two_window_rows(res, beh, findings, offs, covers, shares, periods, z, B_)
        total = res.total
    causes = pl.DataFrame(rows, schema=CAUSE_SCHEMA, orient="row") if rows else pl.DataFrame(schema=CAUSE_SCHEMA)
    causes = causes.with_columns(pl.col("impact").abs().fill_nan(-1.0).alias("_rank")).sort(
        "_rank", descending=True).drop("_rank").with_row_index("rank", offset=1)
    breakdown = _breakdown(offs, periods, z)
    changes = _line_up_findings(changes, findings)
    return ExplainResult(
        metric=res.metric, metric_label=res.metric_label, unit=res.unit, scale=res.scale,
        baseline=str(A) if A is not None else None, comparison=str(B), observed=res.observed,
        total=total, level=level, causes=causes, window_costs=pl.DataFrame(window_costs),
        breakdown=breakdown, change_points=changes, attribution=res,
    )


def _window_costs(offs: dict, periods: list[int], units: list[Units], A, B, z: float, B_: int) -> list:
    """One cost row per window: its off-intent cost, point and draws."""
    window_costs = []
    for t in periods:
        off = offs[t]
        pt, dr = float(np.nansum(off.point)), _settled(off.draws).sum(axis=1) if B_ else np.zeros(0)
        window_costs.append(cost_row("baseline" if t == 0 else "comparison", (A if t == 0 else B), pt, dr, z,
                                     float(off.idio.sum()),
                                     int(off.frame["n"].sum()) if off.frame.height else 0, off.rows,
                                     units[periods.index(t)].ungoverned_rows, int((~off.estimable).sum())))
    return window_costs


def _settled(draws: np.ndarray) -> np.ndarray:
    """Replicates (B, rows) of off-intent rows, ready to add up across rows.

    A row that cannot be estimated is NaN in every replicate and in the point,
    and counts as 0 in both. A replicate the attribution skipped (NaN in every
    row that can be estimated) stays NaN, so the intervals' ``nanvar`` leaves it
    out instead of reading it as a cost of 0.
    """
    out = np.nan_to_num(draws)
    if draws.size:
        estimable = ~np.isnan(draws).all(axis=0)
        if estimable.any():
            out[np.isnan(draws[:, estimable]).all(axis=1)] = np.nan
    return out


def _single_window_rows(findings: pl.DataFrame, off, cover, sh: np.ndarray, z: float, B_: int) -> list[tuple]:
    """One window: each finding's Shapley share of the off-intent cost, then the part no finding names."""
    nf = findings.height
    pt = np.nan_to_num(off.point)
    dr = _settled(off.draws)
    parts = sh @ pt
    parts_d = dr @ sh.T if B_ else np.zeros((0, nf))
    left = 1.0 - sh.sum(axis=0)
    rest, rest_d = float(left @ pt), (dr @ left if B_ else np.zeros(0))
    rows = []
    for i, f in enumerate(findings.iter_rows(named=True)):
        standalone = float(np.nansum(np.where(cover[i], off.point, 0.0)))
        rows.append(_finding_row(f, parts[i], parts_d[:, i] if B_ else None, z, standalone,
                                 int(off.frame.filter(pl.Series(cover[i]))["n"].sum())
                                 if off.frame.height else 0, float((sh[i] ** 2) @ off.idio)))
    rows.append(_plain_row("unnamed_off_intent", "off-intent serving no finding names", rest, rest_d, z,
                           float((left ** 2) @ off.idio)))
    return rows


def _version_drift(beh: Behaviour, B_: int) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Version weights (point, draws) and the version drift they give (point, draws)."""
    K, K_d = im.version_weights(beh)
    pi = beh.pi
    vd_point = float((K * (pi[1] - pi[0])).sum())
    vd_d = (np.array([(K_d[b] * (beh.pi_draws[b][1] - beh.pi_draws[b][0])).sum() for b in range(B_)])
            if B_ else np.zeros(0))
    return K, K_d, vd_point, vd_d


def _finding_drift_parts(offs: dict, shares: dict, periods: list[int], K, K_d, nf: int,
                         B_: int) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Each finding's share of the version drift (point, draws), and the part no finding names."""
    part = np.zeros(nf)
    part_d = np.zeros((B_, nf))
    rest, rest_d = 0.0, np.zeros(B_)
    for t in periods:
        sign = 1.0 if t == 1 else -1.0
        off, sh = offs[t], shares[t]
        cell = off.frame["cell"].to_numpy() if off.frame.height else np.zeros(0, int)
        # per off row: its deviation's version-drift contribution sum_v K[r, v] dev[k, v]
        contrib = np.array([float(K[c] @ off.dev[k]) if c >= 0 else 0.0 for k, c in enumerate(cell)])
        contrib_d = (np.stack([[float(K_d[b][c] @ off.dev[k]) if c >= 0 else 0.0 for k, c in enumerate(cell)]
                               for b in range(B_)]) if B_ and len(cell) else np.zeros((B_, len(cell))))
        part += sign * (sh @ contrib)
        part_d += sign * (contrib_d @ sh.T) if len(cell) else 0.0
        left = 1.0 - sh.sum(axis=0)
        rest += sign * float(left @ contrib)
        rest_d += sign * (contrib_d @ left) if len(cell) else 0.0
    return part, part_d, rest, rest_d


def _two_window_rows(res: AttributionResult, beh: Behaviour, findings: pl.DataFrame, offs: dict, covers: dict,
                     shares: dict, periods: list[int], z: float, B_: int) -> list[tuple]:
    """Two windows: the version drift split into findings, unnamed off-intent and intended change."""
    K, K_d, vd_point, vd_d = _version_drift(beh, B_)
    part, part_d, rest, rest_d = _finding_drift_parts(offs, shares, periods, K, K_d, findings.height, B_)
    rows = []
    for i, f in enumerate(findings.iter_rows(named=True)):
        standalone = sum((1.0 if t == 1 else -1.0) * float(np.nansum(np.where(covers[t][i], offs[t].point, 0.0)))
                         for t in periods)
        n_rows = sum(int(offs[t].frame.filter(pl.Series(covers[t][i]))["n"].sum()) if offs[t].frame.height else 0
                     for t in periods)
        rows.append(_finding_row(f, part[i], part_d[:, i] if B_ else None, z, standalone, n_rows))
    rows.append(_plain_row("unnamed_off_intent", "off-intent serving no finding names", rest, rest_d, z))
    intended = vd_point - float(part.sum()) - rest
    intended_d = vd_d - part_d.sum(axis=1) - rest_d if B_ else np.zeros(0)
    rows.append(_plain_row("intended_change", "routing changes the deployment history intended "
                           "(rollouts, experiments and rollbacks as planned)", intended, intended_d, z))
    rows += _attribution_rows(res, vd_point)
    return rows


def _line_up_findings(changes: pl.DataFrame, findings: pl.DataFrame) -> pl.DataFrame:
    """Each change point with the finding of its routing cell (or all regions) that starts nearest to it."""
    if not changes.height:
        return changes.with_columns(pl.lit(None, pl.String).alias("finding"),
                                    pl.lit(None, pl.Float64).alias("finding_lag_hours"))
    names: list[str | None] = []
    lags: list[float | None] = []
    texts: list[str] = []
    rows = list(findings.iter_rows(named=True)) if findings.height else []
    for cp in changes.iter_rows(named=True):
        mine = [f for f in rows if f["region"] in (cp["cell"], None) and f["start"] is not None
                and im.has_routing_cost(f)]
        if not mine:
            names.append(None)
            lags.append(None)
            texts.append(cp["text"])
            continue
        f = min(mine, key=lambda f: abs((f["start"] - cp["at"]).total_seconds()))
        lag = (cp["at"] - f["start"]).total_seconds() / 3600
        names.append(f"{f['kind']} ({f['component']} {f['region'] or 'all regions'})")
        lags.append(lag)
        when = f"{lag:.1f} h before the change" if lag >= 0 else f"{-lag:.1f} h after the change"
        texts.append(f"{cp['text']}; nearest finding: {names[-1]} from {f['start']:%Y-%m-%d %H:%M} ({when})")
    return changes.with_columns(pl.Series("finding", names, pl.String),
                                pl.Series("finding_lag_hours", lags, pl.Float64),
                                pl.Series("text", texts, pl.String))


def _ci(point: float, draws: np.ndarray | None, z: float, extra: float = 0.0) -> tuple[float, float]:
    """Estimate +/- z SD: the replicates' variance plus ``extra`` (the rows' own counterfactual answers)."""
    if draws is None or len(draws) < 2 or not np.isfinite(point):
        return (float("nan"), float("nan"))
    sd = float(np.sqrt(np.nanvar(draws, ddof=1) + extra))
    return point - z * sd, point + z * sd


def _finding_row(f: dict, impact: float, draws, z: float, standalone: float, n_rows: int,
                 extra: float = 0.0) -> tuple:
    lo, hi = _ci(float(impact), draws, z, extra)
    no_cost = not im.has_routing_cost(f)
    return ("finding", f["kind"], f["finding_id"], f["severity"], f["component"], f["region"], f["instance_id"],
            ",".join(f["versions"] or []), f["start"], f["end"], float("nan") if no_cost else float(impact),
            lo if not no_cost else float("nan"), hi if not no_cost else float("nan"),
            float("nan") if no_cost else standalone, n_rows, f["explanation"])


def _plain_row(kind: str, text: str, impact: float, draws, z: float, extra: float = 0.0) -> tuple:
    lo, hi = _ci(float(impact), draws, z, extra)
    return (kind, kind, None, None, None, None, None, None, None, None, float(impact), lo, hi, float(impact), 0, text)


def _attribution_rows(res: AttributionResult, vd_point: float) -> list[tuple]:
    """Data drift by feature and the residual, from the attribution (their own intervals)."""
    out = []
    parts = res.data_drift_parts
    if parts.height:
        for p in parts.iter_rows(named=True):
            kind = "data_drift" if p["part"] not in (ROUTING_MIX_PART, UNEXPLAINED_PART) \
                else "data_drift_mix" if p["part"] == ROUTING_MIX_PART else "data_drift_unexplained"
            out.append((kind, kind, None, None, None, None, None, p["part"], None, None, p["estimate"],
                        p["ci_low"], p["ci_high"], p["estimate"], 0,
                        f"the shift of {p['part']}" if kind == "data_drift" else p["part"]))
    else:
        dd, lo, hi = res.component(res.primary, "data_drift")
        out.append(("data_drift", "data_drift", None, None, None, None, None, None, None, None, dd, lo, hi, dd, 0,
                    "the inputs' shift"))
    vd = res.component(res.primary, "version_drift")[0]
    rs, lo, hi = res.component(res.primary, "residual")
    # the attribution's version drift and the routing identity agree to rounding; what differs stays in the residual
    rs += vd - vd_point
    out.append(("residual", "residual", None, None, None, None, None, None, None, None, rs, lo, hi, rs, 0,
                "unexplained residual: what neither the inputs' shift nor the routing explains "
                "(for a model output, a version behaving differently on the same inputs)"))
    return out


def _breakdown(offs: dict, periods: list[int], z: float) -> pl.DataFrame:
    """Cost of off-intent serving per window x served version x intended versions x component x region."""
    frames = []
    for t in periods:
        off = offs[t]
        if not off.frame.height:
            continue
        fr = off.frame.with_columns(pl.Series("cost", np.nan_to_num(off.point)),
                                    pl.col("intended").list.join(",").alias("intended_versions"),
                                    pl.lit("baseline" if t == 0 else "comparison").alias("window"))
        draws = _settled(off.draws)
        keys = ["window", "version", "intended_versions", "component", "region"]
        grouped = fr.with_row_index("_i").group_by(keys, maintain_order=True).agg(
            pl.col("n").sum().alias("rows"), pl.col("cost").sum(), pl.col("_i"))
        lo, hi = [], []
        for idx, c in zip(grouped["_i"].to_list(), grouped["cost"].to_list(), strict=True):
            d = draws[:, idx].sum(axis=1) if draws.shape[0] else None
            a, b = _ci(c, d, z, float(off.idio[idx].sum()))
            lo.append(a)
            hi.append(b)
        frames.append(grouped.drop("_i").with_columns(pl.Series("ci_low", lo, pl.Float64),
                                                       pl.Series("ci_high", hi, pl.Float64)))
    schema = {"window": pl.String, "version": pl.String, "intended_versions": pl.String, "component": pl.String,
              "region": pl.String, "rows": pl.Int64, "cost": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64}
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).select(list(schema)).sort(pl.col("cost").abs(), descending=True)


__all__ = ["explain"]
