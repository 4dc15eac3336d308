"""Result object of :func:`toolkit.explain`: the ranked causes, with their plain sentences."""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .. import formatting as fmt
from ..attribution.results import AttributionResult

#: One row per cause, most impact first (``rank``).
CAUSE_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    # finding / unnamed_off_intent / intended_change / data_drift[_mix|_unexplained] / residual
    "cause": pl.String,
    "kind": pl.String,           # the finding kind, or the cause again
    "finding_id": pl.String,
    "severity": pl.String,
    "component": pl.String,
    "region": pl.String,
    "instance_id": pl.String,
    "detail": pl.String,         # versions of a finding, the covariate of a data drift part
    "start": pl.Datetime("us"),
    "end": pl.Datetime("us"),
    "impact": pl.Float64,        # metric units; the parts add up to the total
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "standalone": pl.Float64,    # a finding's cost if it alone were fixed (overlaps counted in full)
    "rows": pl.Int64,            # off-intent rows in a finding's footprint
    "explanation": pl.String,
}

_KIND_TEXT = {
    "stuck_rollout": "stuck rollout", "incomplete_rollback": "incomplete rollback",
    "abandoned_experiment": "abandoned experiment", "artifact_mismatch": "artifact mismatch",
    "preprocessing_mismatch": "preprocessing mismatch", "stale_cache": "stale cache",
    "batch_online_divergence": "batch/online divergence", "unexpected_multi_version": "unexpected multi-version",
    "prediction_divergence": "prediction divergence", "designed_multi_version": "designed multi-version",
}


def cost_row(window: str, span, point: float, draws: np.ndarray, z: float, extra: float, off_rows: int,
             rows: int, ungoverned: int, not_estimable: int) -> dict:
    """One window's cost of off-intent serving with its interval and coverage counts."""
    sd = float(np.sqrt(np.nanvar(draws, ddof=1) + extra)) if len(draws) > 1 else float("nan")
    return {"window": window, "span": str(span), "cost": point, "ci_low": point - z * sd, "ci_high": point + z * sd,
            "off_intent_rows": off_rows, "rows": rows, "ungoverned_rows": ungoverned,
            "not_estimable_rows": not_estimable}


def span_text(text: str | None) -> str:
    """``2026-11-02T00:00:00..2026-11-09T00:00:00`` -> ``2026-11-02..2026-11-09`` (midnights dropped)."""
    return re.sub(r"T00:00:00(\.0+)?(?=\.\.|$)", "", text or "")


def _when(start: dt.datetime | None, end: dt.datetime | None) -> str:
    if start is None:
        return ""
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC" if end is not None else f"from {start:%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class ExplainResult:
    """Ranked causes of a metric shift, or of one window's cost of off-intent serving.

    Attributes
    ----------
    metric, metric_label, unit, scale
        The metric and how it is displayed.
    baseline, comparison
        The windows (``baseline`` is None for a single window).
    observed
        Observed metric per window (the same twice for a single window).
    total
        What the causes add up to: the observed shift (two windows) or the
        cost of off-intent serving (one window).
    level
        Interval level.
    causes
        One row per cause (:data:`CAUSE_SCHEMA`), ranked by absolute impact.
    window_costs
        Per window: the cost of off-intent serving (metric as served minus
        as intended), its interval, the off-intent, total, ungoverned and
        not-estimable rows.
    breakdown
        Cost per window x served version x intended versions x component x region.
    change_points
        Changes of the metric per routing cell and version over time, each
        with the nearest deployment event and finding and the lag.
    attribution
        The :class:`~toolkit.attribution.AttributionResult` behind it.
    """

    metric: str
    metric_label: str
    unit: str
    scale: float
    baseline: str | None
    comparison: str
    observed: tuple[float, float]
    total: float
    level: float
    causes: pl.DataFrame
    window_costs: pl.DataFrame
    breakdown: pl.DataFrame = field(repr=False, default_factory=pl.DataFrame)
    change_points: pl.DataFrame = field(repr=False, default_factory=pl.DataFrame)
    attribution: AttributionResult | None = field(repr=False, default=None)

    def __post_init__(self) -> None:
        if dict(self.causes.schema) != {"rank": pl.UInt32, **CAUSE_SCHEMA}:
            raise ValueError(f"causes must have the columns rank + {list(CAUSE_SCHEMA)}")
        parts = float(self.causes["impact"].fill_nan(0.0).sum()) if self.causes.height else 0.0
        tol = 1e-9 * max(1.0, abs(self.total), *(abs(o) for o in self.observed))
        if abs(parts - self.total) > tol:
            raise ValueError(f"the causes add up to {parts!r}, not to the total {self.total!r}")

    # -- formatting ------------------------------------------------------------
    @property
    def display(self) -> fmt.Display:
        """How this result's numbers are written (:mod:`toolkit.formatting`)."""
        return fmt.Display.of(self)

    def _fx(self, x: float | None) -> str:
        return self.display.effect(x)

    def _interval(self, lo: float, hi: float) -> str:
        """`` [lo, hi]`` (a leading space), or empty without an interval."""
        text = self.display.interval(lo, hi)
        return "" if text == fmt.NO_INTERVAL else f" {text}"

    def sentence(self, row: dict) -> str:
        """One plain sentence for a cause row (``causes.iter_rows(named=True)``)."""
        impact = self._fx(row["impact"]) + self._interval(row["ci_low"], row["ci_high"])
        what = self.metric_label
        if row["cause"] == "finding":
            scope = " ".join(x for x in (row["component"], row["region"] or "all regions", row["instance_id"]) if x)
            name = _KIND_TEXT.get(row["kind"], row["kind"])
            if not math.isfinite(row["impact"]):
                why = ("it concerns the features, and the correct inputs were never logged"
                       if row["kind"] == "preprocessing_mismatch" or row["component"] == "feature_pipeline"
                       else "it names no rows served off-intent")
                return (f"{name} ({scope}, {row['detail']}, {_when(row['start'], row['end'])}): not priced, {why}. "
                        f"{row['explanation']}")
            alone = (f"; fixing it alone: {self._fx(row['standalone'])}"
                     if math.isfinite(row["standalone"]) and abs(row["standalone"] - row["impact"]) > 1e-12 else "")
            return (f"{name} ({scope}, versions {row['detail']}, {_when(row['start'], row['end'])}) moved the "
                    f"{what} by {impact} over {row['rows']:,} off-intent rows{alone}. {row['explanation']}")
        if row["cause"] == "data_drift":
            return f"the shift of {row['detail']} moved the {what} by {impact} (data drift)."
        if row["cause"] == "data_drift_mix":
            return f"the traffic mix across routing cells moved the {what} by {impact} (data drift)."
        if row["cause"] == "data_drift_unexplained":
            return (f"data drift no single covariate carries (interactions, non-linearity) moved the {what} by "
                    f"{impact}.")
        if row["cause"] == "residual":
            return f"Unexplained residual: {impact}; {row['explanation']}."
        return f"{row['explanation'][0].upper()}{row['explanation'][1:]}: {impact}."

    def headline(self) -> str:
        """One sentence: the shift (or the window's cost) and its largest cause."""
        top = self.causes.row(0, named=True) if self.causes.height else None
        if self.baseline is None:
            c = self.window_costs.row(0, named=True)
            head = (f"Off-intent serving moved the {self.metric_label} in {span_text(self.comparison)} by "
                    f"{self._fx(c['cost'])}{self._interval(c['ci_low'], c['ci_high'])}")
        else:
            head = (f"{self.metric_label.capitalize()} moved {self._fx(self.total)} from {span_text(self.baseline)} "
                    f"to {span_text(self.comparison)}")
        if top is not None and math.isfinite(top["impact"]) and top["impact"] != 0.0:
            head += f"; the largest cause: {self._name(top)} ({self._fx(top['impact'])})"
        rows = int(self.window_costs["rows"].sum()) if self.window_costs.height else 0
        ungoverned = int(self.window_costs["ungoverned_rows"].sum()) if self.window_costs.height else 0
        if rows and ungoverned > rows / 2:
            head = (f"CAUTION, {fmt.share(ungoverned / rows, 0)} of the rows are governed by no deployment history, "
                    "so their serving cannot be priced against an intent (ingest the deployment history). " + head)
        return head

    def _name(self, row: dict) -> str:
        if row["cause"] == "finding":
            return f"{_KIND_TEXT.get(row['kind'], row['kind'])} in {row['component']} {row['region'] or 'all regions'}"
        if row["cause"] == "data_drift":
            return f"data drift in {row['detail']}"
        return {"unnamed_off_intent": "off-intent serving no finding names",
                "intended_change": "intended routing changes",
                "data_drift_mix": "routing-cell mix", "data_drift_unexplained": "data drift no covariate carries",
                "residual": "unexplained residual"}.get(row["cause"], row["cause"])

    def summary(self) -> str:
        """Text: the headline, the window costs and the ranked causes with one sentence each."""
        lines = [self.headline(), ""]
        for c in self.window_costs.iter_rows(named=True):
            lines.append(
                f"{c['window']} {span_text(c['span'])}: cost of off-intent serving {self._fx(c['cost'])}"
                f"{self._interval(c['ci_low'], c['ci_high'])} ({c['off_intent_rows']:,} of {c['rows']:,} rows "
                f"off-intent; {c['ungoverned_rows']:,} rows governed by no deployment history"
                + (f"; {c['not_estimable_rows']} off-intent groups not estimable" if c["not_estimable_rows"] else "")
                + ")")
        lines += ["", f"Ranked causes ({fmt.level_label(self.level)} intervals; they add up to "
                      f"{self._fx(self.total)}):"]
        for row in self.causes.iter_rows(named=True):
            lines.append(f"{row['rank']:>3}. {self._fx(row['impact']):>10}  {self.sentence(row)}")
        if self.change_points.height:
            lines += ["", "When (change points of the metric per routing cell and version):"]
            for cp in self.change_points.head(8).iter_rows(named=True):
                lines.append("  " + cp["text"])
        return "\n".join(lines)

    def to_frame(self) -> pl.DataFrame:
        """The ranked causes with their sentences."""
        return self.causes.with_columns(
            pl.Series("sentence", [self.sentence(r) for r in self.causes.iter_rows(named=True)], pl.String))

    def to_dict(self) -> dict:
        """Everything as plain JSON-ready values (NaN as None, times as ISO text)."""
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, (dt.datetime, dt.date)):
                return v.isoformat()
            return v
        return {
            "metric": self.metric, "baseline": self.baseline, "comparison": self.comparison,
            "observed": list(self.observed), "total": self.total, "level": self.level,
            "headline": self.headline(),
            "causes": [{k: clean(v) for k, v in r.items()} for r in self.to_frame().iter_rows(named=True)],
            "window_costs": [{k: clean(v) for k, v in r.items()} for r in self.window_costs.iter_rows(named=True)],
            "breakdown": [{k: clean(v) for k, v in r.items()} for r in self.breakdown.iter_rows(named=True)],
            "change_points": [{k: clean(v) for k, v in r.items()} for r in self.change_points.iter_rows(named=True)],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{r['rank']}</td><td>{html.escape(self._fx(r['impact']))}</td>"
            f"<td>{html.escape(self.sentence(r))}</td></tr>" for r in self.causes.iter_rows(named=True))
        return (f"<p><b>{html.escape(self.headline())}</b></p><table><tr><th>#</th><th>impact</th>"
                f"<th>cause</th></tr>{rows}</table>")

    def __repr__(self) -> str:
        return f"ExplainResult({self.headline()!r})"


__all__ = ["ExplainResult", "CAUSE_SCHEMA", "cost_row"]
