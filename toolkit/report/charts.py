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

WIDTH = 760
_PALETTE = [
    "#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2",
    "#eeca3b", "#9d755d", "#ff9da6", "#bab0ac", "#1f77b4", "#8c564b",
]
_COMPONENT_COLOURS = {
    "baseline": "#7f7f7f", "comparison": "#7f7f7f",
    "data": "#4c78a8", "version": "#f58518", "residual": "#b279a2", "other": "#bab0ac",
}


def version_scale(versions: Sequence[str]) -> alt.Scale:
    """A colour scale giving each version (sorted) a fixed colour."""
    domain = sorted({str(v) for v in versions})
    return alt.Scale(domain=domain, range=[_PALETTE[i % len(_PALETTE)] for i in range(len(domain))])


def waterfall(
    parts: pl.DataFrame,
    *,
    baseline: float,
    comparison: float,
    unit: str = "",
    title: str = "",
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
    """
    rows = [{"step": "baseline", "kind": "baseline", "start": 0.0, "end": baseline, "label": f"{baseline:.2f}",
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
            "start": level, "end": level + est, "label": f"{est:+.2f}",
            "lo": (level + float(lo)) if lo is not None else None,
            "hi": (level + float(hi)) if hi is not None else None,
            "order": i,
        })
        level += est
    rows.append({"step": "comparison", "kind": "comparison", "start": 0.0, "end": comparison,
                 "label": f"{comparison:.2f}", "lo": None, "hi": None, "order": len(rows)})
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
    text = base.mark_text(dy=-8, fontSize=12).encode(y=alt.Y("top:Q"), text="label:N").transform_calculate(
        top="max(datum.start, datum.end)"
    )
    return (bars + errs + caps + text).properties(width=WIDTH * 0.8, height=300,
                                                  title=title or "Where the shift comes from")


def census_area(
    census: pl.DataFrame,
    deployments: pl.DataFrame | None = None,
    *,
    title: str = "",
    value: str = "share",
    hours: int = 1,
) -> alt.LayerChart:
    """Stacked area of traffic share by resolved version, with deployment events as rules.

    Parameters
    ----------
    census
        ``bucket_start``, ``resolved_version`` and ``n`` (any further
        breakdown columns are summed over).
    deployments
        ``ts``, ``event``, ``component``, ``version`` of the events in the window.
    value
        ``share`` (stacked to 100%) or ``n`` (requests).
    hours
        Display bucket width: the census is summed into buckets this wide.
    """
    summed = (
        census.with_columns(pl.col("bucket_start").dt.truncate(f"{int(hours)}h"))
        .group_by("bucket_start", "resolved_version").agg(pl.col("n").sum())
    )
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
        x=alt.X("bucket_start:T", title="time (UTC)"),
        y=alt.Y(f"{value}:Q", stack="normalize" if value == "share" else "zero",
                title="share of requests" if value == "share" else "requests",
                axis=alt.Axis(format="%") if value == "share" else alt.Axis()),
        color=alt.Color("resolved_version:N", title="resolved version", scale=version_scale(versions)),
        tooltip=["bucket_start:T", "resolved_version:N", "n:Q", alt.Tooltip("share:Q", format=".1%")],
    )
    layers: list = [area]
    if deployments is not None and deployments.height:
        dep = deployments.select(
            "ts", "event", "component",
            pl.col("version").fill_null("").alias("version"),
        ).with_columns((pl.col("event") + " " + pl.col("version")).str.strip_chars().alias("label"))
        # Events at the same instant share one rule and one label.
        dep = (
            dep.group_by("ts", maintain_order=True)
            .agg(pl.col("label").unique(maintain_order=True).str.join(" / "),
                 pl.col("event").unique(maintain_order=True).str.join(", "),
                 pl.col("component").unique(maintain_order=True).str.join(", "),
                 pl.col("version").unique(maintain_order=True).str.join(", "))
        )
        rules = alt.Chart(dep).mark_rule(color="black", strokeDash=[4, 3], strokeWidth=1).encode(
            x="ts:T", tooltip=["ts:T", "event:N", "component:N", "version:N"]
        )
        labels = alt.Chart(dep).mark_text(angle=270, align="left", baseline="bottom", dx=-4, dy=-2, fontSize=9).encode(
            x="ts:T", y=alt.value(0), text="label:N"
        )
        layers += [rules, labels]
    return alt.LayerChart(layer=list(layers)).properties(width=WIDTH, height=280,
                                         title=title or "Which versions really served the traffic")


def metric_by_version(frame: pl.DataFrame, *, unit: str = "", title: str = "", min_n: int = 1) -> alt.Chart:
    """The metric of each resolved version over time (buckets with fewer than ``min_n`` requests dropped).

    Parameters
    ----------
    frame
        ``bucket_start``, ``version``, ``n``, ``value`` (from
        :func:`toolkit.report.data.metric_by_version`).
    """
    df = frame.filter(pl.col("n") >= min_n)
    versions = df["version"].unique().to_list()
    return alt.Chart(df).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("bucket_start:T", title="time (UTC)"),
        y=alt.Y("value:Q", title=f"metric ({unit})" if unit else "metric", scale=alt.Scale(zero=False)),
        color=alt.Color("version:N", title="resolved version", scale=version_scale(versions)),
        tooltip=["bucket_start:T", "version:N", "n:Q", alt.Tooltip("value:Q", format=".2f")],
    ).properties(width=WIDTH, height=260, title=title or "Metric by resolved version over time")


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
    return alt.LayerChart(layer=list(layers)).properties(width=WIDTH * 0.7, height=max(60, 22 * df.height),
                                         title=title or "Input drift per feature")


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
        color=alt.Color("stage:N", title=None),
        shape=alt.Shape("stage:N", title=None),
        tooltip=["covariate:N", "stage:N", alt.Tooltip("abs_smd:Q", format=".3f")],
    )
    rule = alt.Chart(pl.DataFrame({"x": [0.1]})).mark_rule(strokeDash=[4, 3], color="#999").encode(x="x:Q")
    return alt.LayerChart(layer=[points, rule]).properties(width=WIDTH * 0.7,
                                                           height=max(60, 26 * df["covariate"].n_unique()),
                                                           title=title or "Covariate balance")


def drift_parts(frame: pl.DataFrame, *, unit: str = "", title: str = "") -> alt.LayerChart:
    """Data drift split by covariate: one bar per part with its interval.

    Parameters
    ----------
    frame
        ``part``, ``estimate``, ``ci_low``, ``ci_high`` in display units.
    """
    order = frame.sort(pl.col("estimate").abs(), descending=True)["part"].to_list()
    label = f"contribution to data drift ({unit})" if unit else "contribution to data drift"
    bars = alt.Chart(frame).mark_bar(color="#4c78a8").encode(
        x=alt.X("estimate:Q", title=label),
        y=alt.Y("part:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        tooltip=["part:N", alt.Tooltip("estimate:Q", format="+.3f"), alt.Tooltip("ci_low:Q", format="+.3f"),
                 alt.Tooltip("ci_high:Q", format="+.3f")],
    )
    err = alt.Chart(frame).mark_rule(color="#333").encode(x="ci_low:Q", x2="ci_high:Q", y=alt.Y("part:N", sort=order))
    return alt.LayerChart(layer=[bars, err]).properties(width=WIDTH * 0.7, height=max(60, 24 * frame.height),
                                           title=title or "Which covariates carry the data drift")


def overlap(frame: pl.DataFrame, *, title: str = "") -> alt.Chart:
    """Share of each window's requests in strata with support in the other window, by version.

    Parameters
    ----------
    frame
        ``period``, ``group`` (a version or ``(all versions)``) and
        ``supported_share`` in [0, 1].
    """
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("supported_share:Q", title="share of requests with common support", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
        y=alt.Y("group:N", title=None),
        yOffset="period:N",
        color=alt.Color("period:N", title="window"),
        tooltip=["group:N", "period:N", alt.Tooltip("supported_share:Q", format=".1%")],
    ).properties(width=WIDTH * 0.7, title=title or "Overlap: common support between the windows")


def consistency_trend(consistency: pl.DataFrame, *, title: str = "", hours: int = 1) -> alt.Chart:
    """The consistency score (share of requests served as intended) over time.

    Parameters
    ----------
    consistency
        ``bucket_start``, ``n``, ``n_as_intended``, ``n_versions``.
    hours
        Display bucket width: counts are summed into buckets this wide and
        the score recomputed from the sums.
    """
    agg = (
        consistency.with_columns(pl.col("bucket_start").dt.truncate(f"{int(hours)}h"))
        .group_by("bucket_start")
        .agg(pl.col("n").sum(), pl.col("n_as_intended").sum(), pl.col("n_versions").max())
        .filter(pl.col("n") > 0)
        .with_columns((pl.col("n_as_intended") / pl.col("n")).alias("score"))
        .sort("bucket_start")
    )
    return alt.Chart(agg).mark_line(point=alt.OverlayMarkDef(size=14), color="#54a24b").encode(
        x=alt.X("bucket_start:T", title="time (UTC)"),
        y=alt.Y("score:Q", title="served as intended", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=["bucket_start:T", alt.Tooltip("score:Q", format=".1%"), "n:Q", "n_versions:Q"],
    ).properties(width=WIDTH, height=200, title=title or "Consistency score")


def versions_share(frame: pl.DataFrame, *, title: str = "") -> alt.Chart:
    """Traffic share of each version in the two windows, side by side.

    Parameters
    ----------
    frame
        ``period``, ``version``, ``share`` (from :func:`toolkit.report.data.period_by_version`).
    """
    versions = frame["version"].unique().to_list()
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("share:Q", title="share of requests", axis=alt.Axis(format="%")),
        y=alt.Y("period:N", title=None),
        color=alt.Color("version:N", title="resolved version", scale=version_scale(versions)),
        order=alt.Order("version:N"),
        tooltip=["period:N", "version:N", "n:Q", alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=WIDTH * 0.8, height=90, title=title or "Version mix in the two windows")
