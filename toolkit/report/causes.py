"""Report sections of the ranked causes (:func:`toolkit.explain`): the table, the waterfall by cause, the trend.

Like :mod:`.sections`, these only reshape a result object into what a
notebook cell displays.
"""

from __future__ import annotations

import math
from pathlib import Path

import altair as alt
import polars as pl

from .. import formatting as fmt
from ..causes.results import span_text
from ..timeutil import parse_window
from . import charts
from .figures import Figure, figure
from .params import DisplayZone
from .tables import Html, concat, esc, paragraph, table

UTC = DisplayZone("UTC")

#: Causes drawn one by one in the waterfall; the rest are summed into "other causes".
WATERFALL_CAUSES = 7
_COLOUR = {"finding": "version", "unnamed_off_intent": "version", "intended_change": "version",
           "data_drift": "data", "data_drift_mix": "data", "data_drift_unexplained": "data", "residual": "residual"}


def _table(headers: list[str], rows: list[list[str]]) -> Html:
    frame = pl.DataFrame([dict(zip(headers, r, strict=True)) for r in rows], schema={h: pl.String for h in headers})
    return table(frame)


def _label(expl, row: dict) -> str:
    return expl._name(row)


def _span(text: str | None, zone: DisplayZone) -> str:
    """A window's text (``FROM..TO``, naive UTC) as shown: midnights dropped in UTC, local times otherwise."""
    if zone.is_utc or not text:
        return span_text(text)
    return zone.span(parse_window(text), label=True)


def headline_text(expl, zone: DisplayZone = UTC) -> str:
    """:meth:`ExplainResult.headline` with its windows and times in ``zone``."""
    return zone.text(expl.headline())


def causes_headline(expl, zone: DisplayZone = UTC) -> Html:
    """The headline of the causes: the shift (or the window's cost) and its largest cause."""
    return Html(f'<div class="vdrift-headline"><p><b>{esc(headline_text(expl, zone))}</b></p></div>')


def causes_table(expl, *, limit: int = 15, zone: DisplayZone = UTC, method: str = "") -> Html:
    """The ranked causes: impact with its interval, what it is, scope and time, one sentence (times in ``zone``).

    ``method`` names the attribution method whose version behaviour priced
    the findings, when it is not the default (regression).
    """
    rows = []
    priced = expl.causes.filter(pl.col("impact").is_not_nan())
    for r in priced.head(limit).iter_rows(named=True):
        ci = expl.display.interval(r["ci_low"], r["ci_high"])
        rows.append([str(r["rank"]), expl._fx(r["impact"]), ci, _label(expl, r), zone.text(expl.sentence(r))])
    unpriced = expl.causes.height - priced.height
    more = priced.height - min(limit, priced.height)
    lead = paragraph(
        f"Each cause's impact on the {expl.metric_label} in {fmt.level_label(expl.level)} intervals; the causes "
        f"add up to {expl._fx(expl.total)}. Overlapping findings share the rows they both cover in equal parts "
        "(Shapley); 'fixing it alone' counts them in full." + (f" {more} smaller cause(s) not shown." if more else "")
        + (f" {unpriced} finding(s) without a routing cost are listed with the audit findings." if unpriced else "")
        + (f" The findings are priced with the {method} method's version behaviour (the headline method)."
           if method and method != "regression" else ""),
        cls="vdrift-note")
    return concat(lead, _table(["#", "impact", "interval", "cause", "what happened"], rows))


def causes_waterfall(expl, folder: Path | None, *, name: str = "waterfall-causes") -> Figure:
    """From the baseline to the comparison (or from as-intended to as-served), one step per cause."""
    s = expl.scale
    priced = expl.causes.filter(pl.col("impact").is_not_nan())
    top, rest = priced.head(WATERFALL_CAUSES), priced.slice(WATERFALL_CAUSES)
    parts = [{"component": r["cause"], "step": _label(expl, r)[:40], "kind": _COLOUR.get(r["cause"], "other"),
              "estimate": r["impact"] * s,
              "ci_low": r["ci_low"] * s if math.isfinite(r["ci_low"]) else None,
              "ci_high": r["ci_high"] * s if math.isfinite(r["ci_high"]) else None}
             for r in top.iter_rows(named=True)]
    if rest.height:
        parts.append({"component": "other", "step": f"{rest.height} other causes", "kind": "other",
                      "estimate": float(rest["impact"].sum()) * s, "ci_low": None, "ci_high": None})
    frame = pl.DataFrame(parts, schema={"component": pl.String, "step": pl.String, "kind": pl.String,
                                        "estimate": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64})
    if expl.baseline is None:
        served = expl.observed[1]
        start, end = served - expl.total, served
        title = f"{expl.metric_label}: from as intended to as served, by cause"
    else:
        start, end = expl.observed
        title = f"{expl.metric_label}: from the baseline to the comparison, by cause"
    chart = charts.waterfall(frame, baseline=start * s, comparison=end * s,
                             unit=fmt.axis_unit(expl.unit), title=title, decimals=expl.display.decimals)
    return figure(chart, name, folder=folder, title="")


def cost_block(expl, zone: DisplayZone = UTC) -> Html:
    """Per window: the cost of off-intent serving, its interval and how much traffic it covers."""
    rows = []
    for c in expl.window_costs.iter_rows(named=True):
        gov = c["rows"] - c["ungoverned_rows"]
        rows.append([c["window"], _span(c["span"], zone), expl._fx(c["cost"]),
                     expl.display.interval(c["ci_low"], c["ci_high"]),
                     f"{c['off_intent_rows']:,} of {c['rows']:,}",
                     fmt.share(gov / c["rows"]) if c["rows"] else fmt.MISSING])
    return concat(
        paragraph("Cost of off-intent serving: the metric as served minus the metric had the off-intent rows been "
                  "served as the deployment history intended (docs/causes.md).", cls="vdrift-note"),
        _table(["window", "span", "cost", "interval", "off-intent rows", "rows governed by a history"], rows))


def cost_trend_figure(trend: pl.DataFrame, folder: Path | None, *, unit: str, scale: float,
                      name: str = "off-intent-cost-trend", zone: DisplayZone = UTC, level: float = 0.95,
                      observed: tuple[float, ...] = ()) -> Figure | Html:
    """The cost of off-intent serving per week, with its interval band (one tick per week, at its first day).

    ``level`` is the level of the weeks' intervals (the weekly report's
    explains run at the default 0.95); ``observed`` the metric's levels, for
    the decimals of a mean's tooltips (:mod:`toolkit.formatting`).
    """
    if not trend.height:
        return paragraph("No week to show.", cls="vdrift-note")
    df = zone.frame(trend, "week").with_columns(
        (pl.col("cost") * scale).alias("cost"), (pl.col("ci_low") * scale).alias("lo"),
        (pl.col("ci_high") * scale).alias("hi"))
    y_title = f"cost ({unit or 'metric'})"
    weeks = [alt.DateTime(year=w.year, month=w.month, date=w.day, hours=w.hour, minutes=w.minute)
             for w in df["week"].to_list()]
    x_title = "week starting" + ("" if zone.is_utc else f" ({zone.label})")
    band = alt.Chart(df).mark_area(opacity=0.25, color="#f58518").encode(
        x=alt.X("week:T", title=x_title, axis=alt.Axis(format="%Y-%m-%d", values=weeks, grid=False),
                scale=alt.Scale(padding=24)),
        y=alt.Y("lo:Q", title=y_title), y2="hi:Q")
    tip = fmt.d3_format(unit, observed, signed=True)
    line = alt.Chart(df).mark_line(point=alt.OverlayMarkDef(color="#f58518"), color="#f58518").encode(
        x="week:T", y="cost:Q", tooltip=[alt.Tooltip("week:T", format="%Y-%m-%d"), alt.Tooltip("cost:Q", format=tip),
                                         alt.Tooltip("lo:Q", format=tip), alt.Tooltip("hi:Q", format=tip)])
    zero = alt.Chart(pl.DataFrame({"z": [0.0]})).mark_rule(color="#7f7f7f").encode(y="z:Q")
    chart = (band + line + zero).properties(
        width=charts.WIDTH, height=220,
        title=f"Cost of off-intent serving per week ({fmt.level_label(level)} interval)")
    return figure(charts.finish(chart), name, folder=folder, title="")


__all__ = ["causes_headline", "causes_table", "causes_waterfall", "cost_block", "cost_trend_figure"]
