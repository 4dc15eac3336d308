"""Result objects of the attribution.

:class:`AttributionResult` is frozen; its tidy frame (``to_frame()``: method,
component, estimate, ci_low, ci_high) is the single source the summary, JSON
and HTML derive from. Construction checks that, for every method, data drift
+ version drift + residual equals the observed total.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from .. import formatting as fmt
from ..vocab import METHODS
from .oaxaca import OaxacaResult

COMPONENTS: tuple[str, ...] = ("data_drift", "version_drift", "residual")
Level = Literal["info", "warning"]


@dataclass(frozen=True)
class Note:
    """One diagnostic finding.

    Attributes
    ----------
    level
        ``info`` or ``warning``.
    code
        Stable identifier (``positivity``, ``confounding``, ``small_cells``,
        ``disagreement``, ``binning``, ``residual``, ``excluded_rows``, ...).
    message
        Plain-language text saying what it means and what to do.
    """

    level: Level
    code: str
    message: str

    def __post_init__(self) -> None:
        if self.level not in ("info", "warning"):
            raise ValueError(f"note level must be info or warning, got {self.level!r}")


@dataclass(frozen=True)
class Diagnostics:
    """Diagnostics returned with every attribution.

    Attributes
    ----------
    headline
        Plain-language summary of the primary method.
    notes
        Findings, warnings first.
    details
        Machine-readable figures behind the notes (positivity, confounding,
        small cells, binning, matching, regression, excluded rows).
    """

    headline: str
    notes: tuple[Note, ...]
    details: dict = field(default_factory=dict)

    @property
    def warnings(self) -> tuple[Note, ...]:
        """The notes of warning severity or worse."""
        return tuple(n for n in self.notes if n.level == "warning")

    def has(self, code: str) -> bool:
        """Whether a note with this code was raised."""
        return any(n.code == code for n in self.notes)

    def to_dict(self) -> dict:
        """The notes and details as plain JSON-ready values."""
        return {"headline": self.headline,
                "notes": [{"level": n.level, "code": n.code, "message": n.message} for n in self.notes],
                **_jsonable_dict(self.details)}


def _jsonable_dict(x: dict) -> dict[str, object]:
    return {str(k): _jsonable(v) for k, v in x.items()}


def _jsonable(x: object) -> object:
    if isinstance(x, dict):
        return _jsonable_dict(x)
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, pl.DataFrame):
        return _jsonable(x.to_dicts())
    return x


def effect_text(x: float | None, scale: float, unit: str, observed: tuple[float, ...] = (1.0,), *,
                bare: bool = False, signed: bool = True) -> str:
    """An effect in display units (:func:`toolkit.formatting.effect`): ``-3.28 pt``, ``+0.0042``.

    Kept for the callers that import it from here; the rule lives in
    :mod:`toolkit.formatting`.
    """
    return fmt.effect(x, scale=scale, unit=unit, observed=observed, bare=bare, signed=signed)


_FRAME_SCHEMA = {"method": pl.String, "component": pl.String, "estimate": pl.Float64,
                 "ci_low": pl.Float64, "ci_high": pl.Float64}


@dataclass(frozen=True)
class AttributionResult:
    """Attribution of a metric shift to data drift, version drift and residual.

    Attributes
    ----------
    metric
        The metric spec (e.g. ``rate:prediction=approved``).
    metric_label, unit, scale
        Display name, unit (``pt`` for rates) and display factor (100 for rates).
    is_model_output
        True when the metric reads only model outputs (a residual then
        means the same version behaved differently).
    baseline, comparison
        The windows as ``FROM..TO`` text.
    observed
        Observed metric in the baseline and comparison windows.
    rows
        Rows counted in each window.
    frame
        Tidy estimates: method, component (data_drift, version_drift,
        residual, total), estimate, ci_low, ci_high (raw metric units).
    diagnostics
        :class:`Diagnostics`.
    n_boot, seed, level
        Bootstrap replicates, seed and interval level.
    interval
        Bootstrap scheme: ``conditional`` (inputs held fixed: effects on this
        traffic) or ``population`` (inputs resampled too).
    m_values
        Tidy frame of the counterfactual means M(data, routing, mechanism)
        per method (periods A/B).
    cells
        The (period, stratum, version) cells the estimators used.
    feature_drift
        Per-feature drift statistics, overall and per version.
    data_drift_parts
        The regression's data drift split exactly by covariate (part,
        estimate, ci_low, ci_high): the routing-cell mix, one row per
        covariate, and what no single covariate's shift explains.
    routing_by
        The columns that define the routing cells.
    balance
        Kept for compatibility: empty.
    oaxaca
        Kept for compatibility: None.
    """

    metric: str
    metric_label: str
    unit: str
    scale: float
    is_model_output: bool
    baseline: str
    comparison: str
    observed: tuple[float, float]
    rows: tuple[int, int]
    frame: pl.DataFrame
    diagnostics: Diagnostics
    n_boot: int
    seed: int
    level: float = 0.95
    interval: str = "conditional"
    m_values: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)
    cells: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)
    feature_drift: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)
    data_drift_parts: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)
    routing_by: tuple[str, ...] = ()
    balance: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)
    oaxaca: OaxacaResult | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if dict(self.frame.schema) != _FRAME_SCHEMA:
            raise ValueError(f"frame must have columns {list(_FRAME_SCHEMA)}, got {self.frame.schema}")
        total = self.total
        tol = 1e-9 * max(1.0, abs(total), *(abs(v) for v in self.observed))
        for method in self.methods:
            sub = self.frame.filter(pl.col("method") == method)
            comps = dict(zip(sub["component"], sub["estimate"], strict=False))
            missing = [c for c in COMPONENTS + ("total",) if c not in comps]
            if missing:
                raise ValueError(f"method {method} lacks components {missing}")
            parts = sum(comps[c] for c in COMPONENTS)
            if abs(parts - total) > tol or abs(comps["total"] - total) > tol:
                raise ValueError(
                    f"{method}: data + version + residual = {parts!r} but the observed total is {total!r}"
                )
        if not 0 < self.level < 1:
            raise ValueError("level must be in (0, 1)")

    # -- accessors -----------------------------------------------------------
    @property
    def total(self) -> float:
        """Observed shift, comparison minus baseline."""
        return self.observed[1] - self.observed[0]

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods present, in the order of METHODS."""
        present = set(self.frame["method"].to_list())
        return tuple(m for m in METHODS if m in present)

    @property
    def primary(self) -> str:
        """The method the headline quotes (regression when computed)."""
        return self.methods[0]

    def to_frame(self) -> pl.DataFrame:
        """Tidy estimates: method, component, estimate, ci_low, ci_high."""
        return self.frame

    def component(self, method: str, component: str) -> tuple[float, float, float]:
        """(estimate, ci_low, ci_high) of one method and component."""
        row = self.frame.filter((pl.col("method") == method) & (pl.col("component") == component))
        if row.height != 1:
            raise KeyError(f"no {component} for method {method}; methods: {', '.join(self.methods)}")
        r = row.row(0, named=True)
        return r["estimate"], r["ci_low"], r["ci_high"]

    # -- rendering -------------------------------------------------------------
    @property
    def display(self) -> fmt.Display:
        """How this result's numbers are written (:mod:`toolkit.formatting`)."""
        return fmt.Display.of(self)

    def _fmt(self, x: float, signed: bool = True) -> str:
        return self.display.effect(x, signed=signed)

    def _fmt_level(self, x: float) -> str:
        return self.display.level(x)

    def _fmt_interval(self, lo: float, hi: float) -> str:
        return self.display.interval(lo, hi)

    def summary(self) -> str:
        """Readable text: headline, method x component table with intervals, diagnostics."""
        lines = [
            f"Attribution of {self.metric_label} [{self.metric}]",
            f"  baseline   {self.baseline}: {self._fmt_level(self.observed[0])} ({self.rows[0]:,} rows)",
            f"  comparison {self.comparison}: {self._fmt_level(self.observed[1])} ({self.rows[1]:,} rows)",
            f"  observed shift: {self._fmt(self.total)}",
            "",
            self.diagnostics.headline,
            "",
            f"{'method':<16} {'component':<14} {'estimate':>12}   {fmt.level_label(self.level)} interval",
        ]
        for r in self.frame.iter_rows(named=True):
            lines.append(
                f"{r['method']:<16} {r['component']:<14} {self._fmt(r['estimate']):>12}   "
                f"{self._fmt_interval(r['ci_low'], r['ci_high'])}"
            )
        what = ("inputs held fixed, routing and served rows redrawn" if self.interval == "conditional"
                else "inputs resampled too")
        cells = "/".join(self.routing_by) if self.routing_by else "one cell"
        lines.append(f"(routing cells: {cells}; {fmt.level_label(self.level)} intervals from {self.n_boot} bootstrap "
                     f"replicates of hash groups, {self.interval}: {what}; seed {self.seed})")
        if self.data_drift_parts.height:
            lines += ["", "Data drift by covariate (regression):"]
            for r in self.data_drift_parts.sort(pl.col("estimate").abs(), descending=True).iter_rows(named=True):
                lines.append(f"  {r['part']:<36} {self._fmt(r['estimate']):>12}   "
                             f"{self._fmt_interval(r['ci_low'], r['ci_high'])}")
        if self.diagnostics.notes:
            lines += ["", "Diagnostics:"]
            for n in self.diagnostics.notes:
                lines.append(f"  [{n.level}] {n.code}: {n.message}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Everything as plain JSON-ready values."""
        methods: dict = {}
        for r in self.frame.iter_rows(named=True):
            methods.setdefault(r["method"], {})[r["component"]] = {
                "estimate": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]}
        out = {
            "metric": self.metric,
            "baseline": {"window": self.baseline, "value": self.observed[0], "rows": self.rows[0]},
            "comparison": {"window": self.comparison, "value": self.observed[1], "rows": self.rows[1]},
            "total": self.total,
            "level": self.level,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "interval": self.interval,
            "methods": methods,
            "routing_by": list(self.routing_by),
            "data_drift_by_covariate": self.data_drift_parts.to_dicts(),
            "headline": self.diagnostics.headline,
            "diagnostics": self.diagnostics.to_dict(),
        }
        if self.oaxaca is not None:
            out["oaxaca_blinder"] = json.loads(self.oaxaca.to_json())
        return _jsonable_dict(out)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON with observed values, total, per-method components with intervals and diagnostics."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def _repr_html_(self) -> str:
        e = html.escape
        rows = "".join(
            f"<tr><td>{e(r['method'])}</td><td>{e(r['component'])}</td><td>{e(self._fmt(r['estimate']))}</td>"
            f"<td>{e(self._fmt_interval(r['ci_low'], r['ci_high']))}</td></tr>"
            for r in self.frame.iter_rows(named=True)
        )
        notes = "".join(
            f"<li><b>{e(n.level)}</b> {e(n.code)}: {e(n.message)}</li>" for n in self.diagnostics.notes
        )
        return (
            f"<div class='vdrift-attribution'><p><b>{e(self.metric_label)}</b> ({e(self.metric)}): "
            f"{e(self._fmt_level(self.observed[0]))} &rarr; {e(self._fmt_level(self.observed[1]))} "
            f"({e(self._fmt(self.total))})<br>{e(self.baseline)} vs {e(self.comparison)}</p>"
            f"<p>{e(self.diagnostics.headline)}</p>"
            "<table><thead><tr><th>method</th><th>component</th><th>estimate</th>"
            f"<th>{fmt.level_label(self.level)} interval</th></tr></thead><tbody>{rows}</tbody></table>"
            f"<ul>{notes}</ul></div>"
        )

    def __repr__(self) -> str:
        return (f"AttributionResult(metric={self.metric!r}, total={self.total:.6g}, "
                f"methods={list(self.methods)})")
