"""Altair chart builders for the reports.

Every builder takes aggregated data only (result frames of the audit and
attribution, or the small series of :mod:`toolkit.report.data`) and returns
an Altair chart; rendering to SVG/PNG is :mod:`toolkit.report.figures`'s job.
Colours of versions are stable within a report (:func:`version_scale`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import altair as alt
import polars as pl

from ..formatting import fixed
from .data import truncate

WIDTH = 760
_PALETTE = [
    "#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2",
    "#eeca3b", "#9d755d", "#ff9da6", "#bab0ac", "#1f77b4", "#8c564b",
]
_COMPONENT_COLOURS = {
    "baseline": "#7f7f7f", "comparison": "#7f7f7f",
    "data": "#4c78a8", "version": "#f58518", "residual": "#b279a2", "other": "#bab0ac",
}


#: Fonts metric-compatible with the one vl-convert measures text with (Liberation Sans = Arial = Helvetica), so a
#: browser draws the labels as wide as the chart's layout expects; a browser without any of them falls back to a
#: wider sans-serif (DejaVu Sans), which the padding below leaves room for.
FONT = "Liberation Sans, Arial, Helvetica, sans-serif"
#: Legend titles and labels are never cut short (Vega's defaults clip them at 180 and 160 px).
LEGEND_LIMIT = 400
#: What a wider fallback font adds to a text, as a share of :func:`text_px`'s estimate: DejaVu Sans is 14% (normal)
#: to 19% (bold) wider than Liberation Sans, whose text is about 0.75 of the estimate (measured with vl-convert).
_FALLBACK_WIDER_BOLD = 0.18
_FALLBACK_WIDER = 0.12
_CHAR_PX = 6.5  # average width of an 11 px character, a little above Liberation Sans' own


def text_px(text: str, *, size: float = 11.0) -> float:
    """Rough width in pixels of ``text`` at font ``size`` (for padding and label spacing)."""
    return len(str(text)) * _CHAR_PX * size / 11.0


def legend(title: str | None) -> alt.Legend:
    """A legend whose title and labels are never clipped."""
    return alt.Legend(title=title, titleLimit=LEGEND_LIMIT, labelLimit=LEGEND_LIMIT)


def finish(chart, *, legend_texts: Sequence[str] = (), top_texts: Sequence[str] = (), top_size: float = 9.0):
    """The chart with the report font and padding on the sides where text may run wider in a browser.

    ``legend_texts`` (the legend's title and labels, at the right) and
    ``top_texts`` (labels drawn upwards above the plot) widen the right and
    top padding by the extra width of a wider fallback font.
    """
    right = 10 + _FALLBACK_WIDER_BOLD * max((text_px(t, size=11.5) for t in legend_texts), default=0.0)
    extra = _FALLBACK_WIDER * max((text_px(t, size=top_size) for t in top_texts), default=0.0)
    if extra:  # the room goes between the title and the labels, where a wider font would write
        title = chart.title
        if isinstance(title, alt.TitleParams):
            title.offset = round(extra)
        elif isinstance(title, str) and title:
            chart = chart.properties(title=alt.TitleParams(title, offset=round(extra)))
    return chart.properties(padding={"left": 5, "top": 5, "right": round(right), "bottom": 5}).configure(font=FONT)


def version_scale(versions: Sequence[str], universe: Sequence[str] | None = None) -> alt.Scale:
    """A colour scale giving each version a fixed colour: by its place among the sorted ``universe``.

    ``universe`` (default: ``versions``) lists every version of the report,
    so a chart showing only some of them colours each as the others do.
    """
    domain = sorted({str(v) for v in versions})
    every = sorted({str(v) for v in universe} | set(domain)) if universe is not None else domain
    return alt.Scale(domain=domain, range=[_PALETTE[every.index(v) % len(_PALETTE)] for v in domain])


def waterfall(
    parts: pl.DataFrame,
    *,
    baseline: float,
    comparison: float,
    unit: str = "",
    title: str = "",
    decimals: int = 2,
) -> alt.LayerChart:
    """Baseline -> data drift -> version drift -> residual -> comparison.

    Parameters
    ----------
    parts
        One row per component in order, with ``component`` (data, version,
        residual), ``estimate`` and optional ``ci_low``/``ci_high`` (same
        units as the values); optional ``step`` (the bar's label, default
        from the component) and ``kind`` (its colour: data, version,
        residual or other), for a waterfall by cause.
    baseline, comparison
        The metric in the two windows.
    unit
        Axis unit label (e.g. ``%``).
    decimals
        Decimals of the bar labels (:func:`toolkit.formatting.decimals` of
        the metric: 2 for rates, more for a small mean).
    """
    d = int(decimals)
    rows = [{"step": "baseline", "kind": "baseline", "start": 0.0, "end": baseline,
             "label": fixed(baseline, d, signed=False),
             "lo": None, "hi": None, "order": 0}]
    level = baseline
    for i, r in enumerate(parts.iter_rows(named=True), start=1):
        est = float(r["estimate"])
        lo, hi = r.get("ci_low"), r.get("ci_high")
        step = r.get("step") or (f"{r['component']} drift" if r["component"] in ("data", "version")
                                 else str(r["component"]))
        rows.append({
            "step": step,
            "kind": str(r.get("kind") or r["component"]),
            "start": level, "end": level + est, "label": fixed(est, d),
            "lo": (level + float(lo)) if lo is not None else None,
            "hi": (level + float(hi)) if hi is not None else None,
            "order": i,
        })
        level += est
    rows.append({"step": "comparison", "kind": "comparison", "start": 0.0, "end": comparison,
                 "label": fixed(comparison, d, signed=False), "lo": None, "hi": None, "order": len(rows)})
    df = pl.DataFrame(rows, schema_overrides={"lo": pl.Float64, "hi": pl.Float64})
    # the columns are Float64 (lo/hi null where a step has no interval)
    lo_all = min(cast(float, df["start"].min()), cast(float, df["end"].min()), cast(float, df["lo"].min()) or baseline)
    hi_all = max(cast(float, df["start"].max()), cast(float, df["end"].max()), cast(float, df["hi"].max()) or baseline)
    pad = (hi_all - lo_all) * 0.15 or 1.0
    # Level bars (baseline, comparison) start at the axis floor instead of 0 so the steps stay visible.
    floor = min(v for v in (baseline, comparison, *df["end"].to_list()) if v is not None) - pad
    df = df.with_columns(
        pl.when(pl.col("kind").is_in(["baseline", "comparison"]))
        .then(pl.lit(floor))
        .otherwise(pl.col("start"))
        .alias("start")
    )
    order = df["step"].to_list()
    scale = alt.Scale(domain=list(_COMPONENT_COLOURS), range=list(_COMPONENT_COLOURS.values()))
    colour = alt.Color("kind:N", scale=scale, legend=None)
    # many steps (a waterfall by cause) get slanted, length-limited labels instead of overlapping ones
    axis = alt.Axis(labelAngle=0) if len(order) <= 5 else alt.Axis(labelAngle=-30, labelLimit=180)
    base = alt.Chart(df).encode(x=alt.X("step:N", sort=order, title=None, axis=axis))
    y_title = f"metric ({unit})" if unit else "metric"
    bars = base.mark_bar(size=60).encode(
        y=alt.Y("start:Q", title=y_title, scale=alt.Scale(zero=False, domain=[floor, hi_all + pad])),
        y2="end:Q",
        color=colour,
        tooltip=["step", "label"],
    )
    # Interval whiskers: a rule through the middle of each step plus caps at both ends.
    errs = base.mark_rule(strokeWidth=2, color="black").encode(y="lo:Q", y2="hi:Q")
    caps = base.mark_tick(color="black", thickness=2, size=18).encode(y="lo:Q") + base.mark_tick(
        color="black", thickness=2, size=18).encode(y="hi:Q")
    # the label sits above the bar and above its interval's upper cap
    text = base.mark_text(dy=-8, fontSize=12).encode(y=alt.Y("top:Q"), text="label:N").transform_calculate(
        top="isValid(datum.hi) ? max(datum.start, datum.end, datum.hi) : max(datum.start, datum.end)"
    )
    return finish((bars + errs + caps + text).properties(width=WIDTH * 0.8, height=300,
                                                         title=title or "Where the shift comes from"))


def _scope_text(scope: object) -> str:
    text = "" if scope is None else str(scope)
    return "all scopes" if text in ("", "all") else text


def rule_labels(deployments: pl.DataFrame) -> pl.DataFrame:
    """One row per instant with deployment events: ``ts`` and a label line per event, event version in scope.

    Events of one instant with the same event, version and scope share a
    line, which names their components unless they are only ``serving``:
    ``deploy v2.0 in us (serving, cache, batch)``, ``experiment_start v1.6 in
    apac``, ``deploy fp-4 in us (feature_pipeline)``.
    """
    schema = pl.Schema({"ts": pl.Datetime("us"), "label": pl.String(), "lines": pl.Int64(), "event": pl.String(),
                        "component": pl.String(), "scope": pl.String(), "version": pl.String()})
    if deployments is None or deployments.height == 0:
        return pl.DataFrame(schema=schema)
    cols = deployments.columns
    dep = deployments.select(
        "ts", pl.col("event").cast(pl.String),
        (pl.col("component").cast(pl.String) if "component" in cols else pl.lit("serving")).alias("component"),
        (pl.col("scope").cast(pl.String) if "scope" in cols else pl.lit("all")).fill_null("all").alias("scope"),
        pl.col("version").cast(pl.String).fill_null("").alias("version"),
    )
    rows = []
    for (ts,), g in dep.group_by(["ts"], maintain_order=True):
        lines = []
        for (event, version, scope), e in g.group_by(["event", "version", "scope"], maintain_order=True):
            comps = e["component"].unique(maintain_order=True).to_list()
            what = f"{event} {version}".strip() + f" in {_scope_text(scope)}"
            if comps != ["serving"]:
                what += f" ({', '.join(str(c) for c in comps)})"
            lines.append(what)
        rows.append({"ts": ts, "label": "\n".join(lines), "lines": len(lines),
                     "event": ", ".join(g["event"].unique(maintain_order=True).to_list()),
                     "component": ", ".join(g["component"].unique(maintain_order=True).to_list()),
                     "scope": ", ".join(_scope_text(x) for x in g["scope"].unique(maintain_order=True).to_list()),
                     "version": ", ".join(v for v in g["version"].unique(maintain_order=True).to_list() if v)})
    return pl.DataFrame(rows, schema=schema).sort("ts")


#: Pixels between two lines of rule labels (font size 9), and the glyph height of one line.
_LINE_PX = 11
_GLYPH_PX = 9
#: The labels' offset from their anchor (``dy`` of the text mark): the first line ends this far left of it.
_LABEL_GAP = 3


def _label_positions(rules: pl.DataFrame, lo, hi, width: float) -> list:
    """Where each rule's label is anchored (a time), so that labels of nearby rules do not write over each other.

    A label is drawn upwards; its first line sits just left of the anchor and
    each further line one line further right. A label is placed with its last
    line just left of its rule; when that would overlap the label before it,
    it moves right until it clears it.
    """
    span = (hi - lo).total_seconds() or 1.0
    out, right = [], None
    for ts, lines in rules.select("ts", "lines").iter_rows():
        rule = (ts - lo).total_seconds() / span * width
        anchor = rule - _LINE_PX * (lines - 1)
        left = anchor - _LABEL_GAP - _GLYPH_PX
        if right is not None and left < right + 2:
            anchor += right + 2 - left
        right = anchor - _LABEL_GAP + _LINE_PX * (lines - 1)
        out.append(lo + (hi - lo) * (min(anchor, width) / width))
    return out


def census_area(
    census: pl.DataFrame,
    deployments: pl.DataFrame | None = None,
    *,
    title: str = "",
    value: str = "share",
    hours: int | None = 1,
    time_title: str = "time (UTC)",
    universe: Sequence[str] | None = None,
) -> alt.LayerChart:
    """Stacked area of traffic share by resolved version, with deployment events as rules.

    Parameters
    ----------
    census
        ``bucket_start``, ``resolved_version`` and ``n`` (any further
        breakdown columns are summed over).
    deployments
        ``ts``, ``event``, ``component``, ``scope``, ``version`` of the events
        in the window; each rule is labelled with event, version and scope
        (and the components, unless only serving).
    value
        ``share`` (stacked to 100%) or ``n`` (requests).
    hours
        Display bucket width: the census is summed into buckets this wide
        (``None``: ``bucket_start`` is already a display bucket).
    time_title
        Title of the time axis (it names the time zone of the times).
    universe
        Every version of the report (for :func:`version_scale`).
    """
    start = census.with_columns(truncate("bucket_start", hours)) if hours else census
    summed = start.group_by("bucket_start", "resolved_version").agg(pl.col("n").sum())
    # Every version in every bucket (0 where it did not serve) so the stacked areas have no holes.
    grid = summed.select("bucket_start").unique().join(summed.select("resolved_version").unique(), how="cross")
    agg = (
        grid.join(summed, on=["bucket_start", "resolved_version"], how="left")
        .with_columns(pl.col("n").fill_null(0))
        .with_columns((pl.col("n") / pl.col("n").sum().over("bucket_start")).alias("share"))
        .sort("bucket_start", "resolved_version")
    )
    versions = agg["resolved_version"].unique().to_list()
    area = alt.Chart(agg).mark_area(interpolate="step-after").encode(
        x=alt.X("bucket_start:T", title=time_title),
        y=alt.Y(f"{value}:Q", stack="normalize" if value == "share" else "zero",
                title="share of requests" if value == "share" else "requests",
                axis=alt.Axis(format="%") if value == "share" else alt.Axis()),
        color=alt.Color("resolved_version:N", scale=version_scale(versions, universe),
                        legend=legend("resolved version")),
        tooltip=[alt.Tooltip("bucket_start:T", title=time_title), "resolved_version:N", "n:Q",
                 alt.Tooltip("share:Q", format=".1%")],
    )
    layers: list = [area]
    rules = rule_labels(deployments) if deployments is not None else rule_labels(pl.DataFrame())
    if rules.height:
        times = agg["bucket_start"].to_list() + rules["ts"].to_list()
        lo, hi = min(times), max(times)
        rules = rules.with_columns(pl.Series("label_at", _label_positions(rules, lo, hi, WIDTH), pl.Datetime("us")))
        tip = [alt.Tooltip("ts:T", title=time_title, format="%Y-%m-%d %H:%M"), "event:N", "version:N", "scope:N",
               "component:N"]
        rule = alt.Chart(rules).mark_rule(color="black", strokeDash=[4, 3], strokeWidth=1).encode(x="ts:T", tooltip=tip)
        labels = alt.Chart(rules).mark_text(angle=270, align="left", baseline="bottom", dx=4, dy=-_LABEL_GAP,
                                            fontSize=9, lineBreak="\n", lineHeight=_LINE_PX).encode(
            x="label_at:T", y=alt.value(0), text="label:N", tooltip=tip)
        layers += [rule, labels]
    chart = alt.LayerChart(layer=list(layers)).properties(width=WIDTH, height=280,
                                                          title=title or "Which versions really served the traffic")
    lines = [ln for text in rules["label"].to_list() for ln in text.split("\n")] if rules.height else []
    return finish(chart, legend_texts=["resolved version", *map(str, versions)], top_texts=lines)


def metric_by_version(frame: pl.DataFrame, *, unit: str = "", title: str | alt.TitleParams = "", min_n: int = 1,
                      time_title: str = "time (UTC)", universe: Sequence[str] | None = None,
                      decimals: int = 2) -> alt.LayerChart:
    """The metric of each resolved version over time, with its interval as a band.

    The band is the interval ``frame`` carries (:func:`toolkit.report.data.adaptive_series`:
    always 95%, Wilson's for rates).

    Parameters
    ----------
    frame
        One row per point: ``version``, ``period``, ``mid`` (where the point
        is drawn), ``start``, ``end``, ``n``, ``value``, ``lo``, ``hi`` (from
        :func:`toolkit.report.data.adaptive_series`, which merges sparse
        buckets). A frame with ``bucket_start`` instead of ``mid`` (one
        point per bucket, no interval) is drawn too.
    min_n
        Points with fewer requests are left out.
    time_title
        Title of the time axis (it names the time zone).
    universe
        Every version of the report (for :func:`version_scale`).
    decimals
        Decimals of the tooltips' values (display units).
    """
    df = frame.filter(pl.col("n") >= min_n)
    if "mid" not in df.columns:
        df = df.with_columns(pl.col("bucket_start").alias("mid"), pl.col("bucket_start").alias("start"),
                             pl.col("bucket_start").alias("end"), pl.col("value").alias("lo"),
                             pl.col("value").alias("hi"))
    if "period" not in df.columns:
        df = df.with_columns(pl.lit("").alias("period"))
    versions = df["version"].unique().to_list()
    # the band is the first layer and would lend the legend its pale fill: the symbols are drawn opaque
    colour = alt.Color("version:N", scale=version_scale(versions, universe),
                       legend=alt.Legend(title="resolved version", titleLimit=LEGEND_LIMIT, labelLimit=LEGEND_LIMIT,
                                         symbolOpacity=1, symbolType="circle"))
    y_title = f"metric ({unit})" if unit else "metric"
    base = alt.Chart(df).encode(x=alt.X("mid:T", title=time_title), color=colour, detail="period:N")
    tip = [alt.Tooltip("start:T", title="from", format="%Y-%m-%d %H:%M"),
           alt.Tooltip("end:T", title="to", format="%Y-%m-%d %H:%M"), "version:N", "n:Q",
           *(alt.Tooltip(f"{c}:Q", format=f".{int(decimals)}f") for c in ("value", "lo", "hi"))]
    band = base.mark_area(opacity=0.15).encode(y=alt.Y("lo:Q", title=y_title, scale=alt.Scale(zero=False)),
                                               y2="hi:Q")
    line = base.mark_line(point=alt.OverlayMarkDef(size=12)).encode(y="value:Q", tooltip=tip)
    chart = alt.LayerChart(layer=[band, line]).properties(
        width=WIDTH, height=260, title=title or "Metric by resolved version over time")
    return finish(chart, legend_texts=["resolved version", *map(str, versions)])


def feature_drift(frame: pl.DataFrame, *, stat: str = "psi", title: str = "") -> alt.LayerChart:
    """Drift of every covariate between the windows (all versions pooled).

    Parameters
    ----------
    frame
        ``feature`` and the statistic column ``stat`` (one row per feature).
    """
    df = frame.select("feature", pl.col(stat).cast(pl.Float64).fill_nan(None).alias("value")).drop_nulls()
    bars = alt.Chart(df).mark_bar(color="#4c78a8").encode(
        x=alt.X("value:Q", title=stat.upper() if stat == "psi" else stat),
        y=alt.Y("feature:N", sort="-x", title=None),
        tooltip=["feature:N", alt.Tooltip("value:Q", format=".4f")],
    )
    layers: list = [bars]
    if stat == "psi":
        marks = pl.DataFrame({"value": [0.1, 0.25], "label": ["0.1 moderate", "0.25 large"]})
        rule = alt.Chart(marks).mark_rule(strokeDash=[4, 3], color="#999")
        layers.append(rule.encode(x="value:Q", tooltip=["label:N"]))
    return finish(alt.LayerChart(layer=list(layers)).properties(width=WIDTH * 0.7, height=max(60, 22 * df.height),
                                                                title=title or "Input drift per feature"))


def balance(frame: pl.DataFrame, *, title: str = "") -> alt.LayerChart:
    """Standardized mean differences before and after matching (a love plot).

    Parameters
    ----------
    frame
        ``covariate``, ``stage`` (e.g. raw / matched) and ``smd``.
    """
    df = frame.select("covariate", "stage", pl.col("smd").cast(pl.Float64).abs().alias("abs_smd"))
    points = alt.Chart(df).mark_point(filled=True, size=70).encode(
        x=alt.X("abs_smd:Q", title="|standardized mean difference| between windows"),
        y=alt.Y("covariate:N", title=None),
        color=alt.Color("stage:N", legend=legend(None)),
        shape=alt.Shape("stage:N", legend=legend(None)),
        tooltip=["covariate:N", "stage:N", alt.Tooltip("abs_smd:Q", format=".3f")],
    )
    rule = alt.Chart(pl.DataFrame({"x": [0.1]})).mark_rule(strokeDash=[4, 3], color="#999").encode(x="x:Q")
    chart = alt.LayerChart(layer=[points, rule]).properties(width=WIDTH * 0.7,
                                                            height=max(60, 26 * df["covariate"].n_unique()),
                                                            title=title or "Covariate balance")
    return finish(chart, legend_texts=[str(x) for x in df["stage"].unique().to_list()])


def drift_parts(frame: pl.DataFrame, *, unit: str = "", title: str = "", decimals: int = 2) -> alt.LayerChart:
    """Data drift split by covariate: one bar per part with its interval.

    Parameters
    ----------
    frame
        ``part``, ``estimate``, ``ci_low``, ``ci_high`` in display units.
    decimals
        Decimals of the tooltips (:func:`toolkit.formatting.decimals` of the metric).
    """
    order = frame.sort(pl.col("estimate").abs(), descending=True)["part"].to_list()
    label = f"contribution to data drift ({unit})" if unit else "contribution to data drift"
    bars = alt.Chart(frame).mark_bar(color="#4c78a8").encode(
        x=alt.X("estimate:Q", title=label),
        y=alt.Y("part:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        tooltip=["part:N", *(alt.Tooltip(f"{c}:Q", format=f"+.{int(decimals)}f")
                             for c in ("estimate", "ci_low", "ci_high"))],
    )
    err = alt.Chart(frame).mark_rule(color="#333").encode(x="ci_low:Q", x2="ci_high:Q", y=alt.Y("part:N", sort=order))
    return finish(alt.LayerChart(layer=[bars, err]).properties(width=WIDTH * 0.7, height=max(60, 24 * frame.height),
                                                               title=title or "Which covariates carry the data drift"))


def overlap(frame: pl.DataFrame, *, title: str = "") -> alt.Chart:
    """Share of each window's requests in strata with support in the other window, by version.

    Parameters
    ----------
    frame
        ``period``, ``group`` (a version or ``(all versions)``) and
        ``supported_share`` in [0, 1].
    """
    chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X("supported_share:Q", title="share of requests with common support", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
        y=alt.Y("group:N", title=None),
        yOffset="period:N",
        color=alt.Color("period:N", legend=legend("window")),
        tooltip=["group:N", "period:N", alt.Tooltip("supported_share:Q", format=".1%")],
    ).properties(width=WIDTH * 0.7, title=title or "Overlap: common support between the windows")
    return finish(chart, legend_texts=["window", *map(str, frame["period"].unique().to_list())])


def consistency_trend(consistency: pl.DataFrame, *, title: str = "", hours: int | None = 1,
                      time_title: str = "time (UTC)") -> alt.Chart:
    """The consistency score (share of requests served as intended) over time.

    Parameters
    ----------
    consistency
        ``bucket_start``, ``n``, ``n_as_intended``, ``n_versions``.
    hours
        Display bucket width: counts are summed into buckets this wide and
        the score recomputed from the sums (``None``: ``bucket_start`` is
        already a display bucket).
    time_title
        Title of the time axis (it names the time zone).
    """
    agg = (
        (consistency.with_columns(truncate("bucket_start", hours)) if hours else consistency)
        .group_by("bucket_start")
        .agg(pl.col("n").sum(), pl.col("n_as_intended").sum(), pl.col("n_versions").max())
        .filter(pl.col("n") > 0)
        .with_columns((pl.col("n_as_intended") / pl.col("n")).alias("score"))
        .sort("bucket_start")
    )
    return finish(alt.Chart(agg).mark_line(point=alt.OverlayMarkDef(size=14), color="#54a24b").encode(
        x=alt.X("bucket_start:T", title=time_title),
        y=alt.Y("score:Q", title="served as intended", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=[alt.Tooltip("bucket_start:T", title=time_title), alt.Tooltip("score:Q", format=".1%"), "n:Q",
                 "n_versions:Q"],
    ).properties(width=WIDTH, height=200, title=title or "Consistency score"))


def versions_share(frame: pl.DataFrame, *, title: str = "", universe: Sequence[str] | None = None) -> alt.Chart:
    """Traffic share of each version in the two windows, side by side.

    Parameters
    ----------
    frame
        ``period``, ``version``, ``share`` (from :func:`toolkit.report.data.period_by_version`).
    """
    versions = frame["version"].unique().to_list()
    chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X("share:Q", title="share of requests", axis=alt.Axis(format="%")),
        y=alt.Y("period:N", title=None),
        color=alt.Color("version:N", scale=version_scale(versions, universe), legend=legend("resolved version")),
        order=alt.Order("version:N"),
        tooltip=["period:N", "version:N", "n:Q", alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=WIDTH * 0.8, height=90, title=title or "Version mix in the two windows")
    return finish(chart, legend_texts=["resolved version", *map(str, versions)])
