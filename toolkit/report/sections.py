"""Report sections shared by the incident and weekly reports.

Each function turns a result object (attribution, audit) or a small frame
into something a notebook cell displays: a :class:`~toolkit.report.figures.Figure`
(inline SVG, also written under ``figures/``) or escaped
:class:`~toolkit.report.tables.Html`. No analysis happens here beyond
reshaping aggregated results.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import polars as pl

import altair as alt

from .. import __version__
from .. import formatting as fmt
from . import charts, data
from .figures import Figure, figure
from .params import DisplayZone
from .tables import Html, bullets, concat, esc, heading, paragraph, table

#: The default display zone: times shown as stored.
UTC = DisplayZone("UTC")
_COMPONENT_LABEL = {"data_drift": "data", "version_drift": "version", "residual": "residual"}
_METHOD_LABEL = {
    "regression": "regression (plug-in)",
    "matched": "matched cohort (CEM)",
    "standardization": "standardization (Das Gupta)",
}


def all_versions(*columns: pl.Series) -> list[str]:
    """Every version named in ``columns``, sorted (the universe of :func:`toolkit.report.charts.version_scale`)."""
    return sorted({str(v) for c in columns for v in c.drop_nulls().to_list()})


def method_label(method: str) -> str:
    """A method's name as the report writes it: ``matched cohort (CEM)``."""
    return _METHOD_LABEL.get(method, method)


def fmt_level(value: float | None, *, scale: float, unit: str, observed: tuple[float, ...] = ()) -> str:
    """A metric level in display units (:func:`toolkit.formatting.level`): ``85.00%`` for rates."""
    return fmt.level(value, scale=scale, unit=unit, observed=observed)


def fmt_effect(value: float | None, *, scale: float, unit: str, observed: tuple[float, ...] = ()) -> str:
    """A signed effect in display units (:func:`toolkit.formatting.effect`): ``-5.40 pt``, ``+0.0042``."""
    return fmt.effect(value, scale=scale, unit=unit, observed=observed)


def fmt_interval(lo: float | None, hi: float | None, *, scale: float, unit: str,
                 observed: tuple[float, ...] = ()) -> str:
    """An interval as ``[lo, hi]`` (:func:`toolkit.formatting.interval`), or ``no interval``."""
    return fmt.interval(lo, hi, scale=scale, unit=unit, observed=observed)


def headline_method(attr, methods: list[str] | None = None, method: str | None = None) -> str:
    """The method of the headline: ``method`` when the attribution ran it, else the first of ``methods`` it ran."""
    if method and method in attr.methods:
        return method
    return next((m for m in attr.methods if not methods or m in methods), attr.primary)


def split_headline(attr, *, methods: list[str] | None = None, method: str | None = None) -> str:
    """One sentence: the observed shift and its split with intervals (the headline method)."""
    method = headline_method(attr, methods, method)
    show = fmt.Display.of(attr)
    base, comp = attr.observed
    direction = "rose" if comp > base else "fell" if comp < base else "did not move"
    parts = []
    for c in ("data_drift", "version_drift", "residual"):
        name = "residual" if c == "residual" else f"{_COMPONENT_LABEL[c]} drift"
        parts.append(f"{name} {show.estimate(*attr.component(method, c))}")
    return (
        f"{attr.metric_label.capitalize()} {direction} from {show.level(base)} to "
        f"{show.level(comp)} ({show.effect(attr.total)}): "
        + "; ".join(parts)
        + f" ({_METHOD_LABEL.get(method, method)}, {fmt.level_label(attr.level)} intervals)."
    )


def headline_block(attr, *, methods: list[str] | None = None, method: str | None = None) -> Html:
    """The headline box: the observed shift and its split with intervals."""
    return Html(
        f'<div class="vdrift-headline"><p><b>{esc(split_headline(attr, methods=methods, method=method))}</b></p></div>'
    )


def waterfall_figure(attr, folder: Path | None, *, name: str = "waterfall-split", methods: list[str] | None = None,
                     title: str = "", method: str | None = None) -> Figure:
    """Baseline -> data drift -> version drift -> residual -> comparison (headline method, intervals)."""
    method = headline_method(attr, methods, method)
    s = attr.scale
    sub = (
        attr.to_frame().filter((pl.col("method") == method) & pl.col("component").is_in(list(_COMPONENT_LABEL)))
        .with_columns(
            pl.col("component").replace(_COMPONENT_LABEL),
            pl.col("estimate") * s, pl.col("ci_low") * s, pl.col("ci_high") * s,
        )
        .with_columns(pl.col("ci_low").fill_nan(None), pl.col("ci_high").fill_nan(None))
    )
    chart = charts.waterfall(
        sub, baseline=attr.observed[0] * s, comparison=attr.observed[1] * s,
        unit=fmt.axis_unit(attr.unit), decimals=attr.display.decimals,
        title=title or f"{attr.metric_label}: where the shift comes from ({_METHOD_LABEL.get(method, method)})",
    )
    return figure(chart, name, folder=folder, title="")


def methods_table(attr, *, methods: list[str] | None = None) -> Html:
    """Method x component table with intervals, plus the observed shift."""
    show = attr.display
    rows = []
    for m in attr.methods:
        if methods and m not in methods:
            continue
        row = {"method": _METHOD_LABEL.get(m, m)}
        for c in ("data_drift", "version_drift", "residual"):
            row[c] = show.estimate(*attr.component(m, c))
        row["total"] = show.effect(attr.total)
        rows.append(row)
    frame = pl.DataFrame(rows) if rows else pl.DataFrame()
    note = paragraph(
        f"Estimates in {fmt.unit_name(attr.unit)}; brackets are "
        f"{fmt.level_label(attr.level)} bootstrap intervals ({attr.n_boot} replicates, seed {attr.seed}, "
        + ("inputs held fixed: the effects on this traffic). " if attr.interval == "conditional"
           else "inputs resampled too: the effects expected from the input distribution). ") +
        "The three parts add up to the observed shift for every method.",
        cls="vdrift-note",
    )
    return concat(
        table(frame, headers={"data_drift": "data drift", "version_drift": "version drift",
                              "residual": "residual", "total": "observed shift"}),
        note,
    )


def notes_block(attr) -> Html:
    """The attribution's diagnostic notes, warnings first."""
    notes = attr.diagnostics.notes
    if not notes:
        return paragraph("No diagnostic warnings.", cls="vdrift-note")
    items = "".join(
        f'<li><span class="vdrift-sev-{esc(n.level)}">{esc(n.level)}</span> <b>{esc(n.code)}</b>: {esc(n.message)}</li>'
        for n in notes
    )
    return Html(f"<ul>{items}</ul>")


def census_figure(census: pl.DataFrame, deployments: pl.DataFrame | None, folder: Path | None,
                  *, name: str = "version-census", title: str = "", hours: int = 1,
                  zone: DisplayZone = UTC, source_hours: int = 1, universe: list[str] | None = None) -> Figure:
    """Stacked area of the resolved versions over time (``hours``-wide buckets) with deployment rules.

    Shadow scoring is left out: it did not answer traffic. Times are shown in
    ``zone``; ``source_hours`` is the width of the census buckets (24 for a
    daily audit); ``universe`` lists every version of the report (stable colours).
    """
    served = census.filter(pl.col("component") != "shadow") if "component" in census.columns else census
    binned = data.rebucket(served.select("bucket_start", "resolved_version", "n"), hours, zone,
                           keys=("resolved_version",), sums=("n",), source_hours=source_hours)
    deps = zone.frame(deployments, "ts") if deployments is not None else None
    chart = charts.census_area(binned, deps, title=title, hours=None, time_title=zone.axis(), universe=universe)
    return figure(chart, name, folder=folder)


def _percent(share: Any) -> str:
    return fmt.share(None if share is None else float(share))


def census_table(census: pl.DataFrame) -> Html:
    """Requests per component, resolved version, reported version and status."""
    agg = (
        census.group_by("component", "resolved_version", "model_version", "version_status")
        .agg(pl.col("n").sum().alias("requests"))
        .with_columns((pl.col("requests") / pl.col("requests").sum().over("component")).alias("share_of_component"))
        .sort("component", "requests", descending=[False, True])
    )
    return table(
        agg,
        headers={"resolved_version": "resolved version", "model_version": "reported version",
                 "version_status": "status", "share_of_component": "share of component"},
        formats={"share_of_component": _percent},
    )


def _when(value: object, zone: DisplayZone = UTC) -> str:
    if isinstance(value, dt.datetime):
        return zone.fmt(value, "%m-%d %H:%M")
    return "" if value is None else str(value)


def findings_table(findings: pl.DataFrame, *, status: bool = False, zone: DisplayZone = UTC) -> Html:
    """The audit findings, most severe first: one line of facts and one of explanation each.

    Every string (versions, scopes, explanations) is escaped; times are shown
    in ``zone`` (the explanations' times too).
    """
    if findings.height == 0:
        return paragraph("No findings: traffic was served as the deployment history intended.", cls="vdrift-note")
    heads = ["severity", "finding", "scope", "versions", f"from ({zone.label})", f"to ({zone.label})", "requests",
             "share"]
    if status:
        heads.insert(0, "status")
    rows = []
    for r in findings.iter_rows(named=True):
        scope = " / ".join(str(x) for x in (r["component"], r["region"], r["instance_id"]) if x) or "all"
        share = r.get("share")
        cells = [
            f'<td class="vdrift-sev-{esc(r["severity"])}">{esc(r["severity"])}</td>',
            f"<td>{esc(str(r['kind']).replace('_', ' '))}</td>",
            f"<td>{esc(scope)}</td>",
            f"<td>{esc(', '.join(r['versions'] or []))}</td>",
            f"<td>{esc(_when(r['start'], zone))}</td>",
            f"<td>{esc(_when(r['end'], zone))}</td>",
            f'<td class="num">{esc(r["n_requests"])}</td>',
            f'<td class="num">{esc("" if share is None else fmt.share(float(share)))}</td>',
        ]
        if status:
            cells.insert(0, f"<td>{esc(r.get('status') or '')}</td>")
        examples = ", ".join(r.get("examples") or [])
        note = f' <span class="vdrift-note">Example requests: {esc(examples)}.</span>' if examples else ""
        detail = esc(zone.text(r["explanation"])) + note
        rows.append(f'<tr class="vdrift-finding">{"".join(cells)}</tr>'
                    f'<tr class="vdrift-explain"><td colspan="{len(cells)}">{detail}</td></tr>')
    head = "".join(f"<th>{esc(h)}</th>" for h in heads)
    return Html(f'<table class="vdrift-table vdrift-findings"><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(rows)}</tbody></table>')


def metric_figure(series: pl.DataFrame, folder: Path | None, *, unit: str, name: str = "metric-by-version",
                  title: str = "", hours: int = 1, zone: DisplayZone = UTC, scale: float = 1.0, rate: bool = False,
                  min_rows: int = data.MIN_BUCKET_ROWS, universe: list[str] | None = None) -> Figure:
    """The metric of each resolved version over time, sparse buckets merged, with 95% interval bands.

    ``series`` is :func:`toolkit.report.data.metric_by_version` at hourly
    resolution; :func:`toolkit.report.data.adaptive_series` cuts it into
    ``hours``-wide buckets of ``zone`` and merges consecutive buckets of a
    version until each point holds ``min_rows`` requests.
    """
    points = data.adaptive_series(series, hours=hours, zone=zone, scale=scale, rate=rate, min_rows=min_rows)
    # the tooltips follow the metric's display rule (toolkit.formatting): the points are in display units already
    d = fmt.decimals(fmt.unit_for(rate), points["value"].to_list() if points.height else ())
    width = f"{hours} h" if hours < 24 else f"{hours // 24} day" + ("s" if hours >= 48 else "")
    chart = charts.metric_by_version(
        points, unit=unit, time_title=zone.axis(), universe=universe, decimals=d,
        title=alt.TitleParams(
            title or "Metric by resolved version over time",
            subtitle=f"{width} buckets, merged until each point holds at least {min_rows} requests; "
                     "band: 95% interval" + (" (Wilson)" if rate else "")))
    return figure(chart, name, folder=folder)


def feature_drift_figure(drift: pl.DataFrame, folder: Path | None, *, name: str = "feature-drift") -> Figure | Html:
    """PSI of every covariate (all versions pooled)."""
    pooled = drift.filter(pl.col("group") == "(all versions)") if "group" in drift.columns else drift
    if pooled.height == 0:
        return paragraph("No covariates: per-feature drift is not available.", cls="vdrift-note")
    return figure(charts.feature_drift(pooled, stat="psi"), name, folder=folder)


def feature_drift_table(drift: pl.DataFrame) -> Html:
    """The drift statistics of each covariate (all versions pooled) as a table."""
    pooled = drift.filter(pl.col("group") == "(all versions)") if "group" in drift.columns else drift
    stats = ("feature", "kind", "n_baseline", "n_comparison", "psi", "js_divergence", "ks", "chi2_pvalue",
             "wasserstein")
    cols: list[str] = [c for c in stats if c in pooled.columns]
    if "resolution" in pooled.columns and (pooled["resolution"] != "exact").any():
        cols.append("resolution")  # KS / Wasserstein of a covariate with > 1M distinct values: rounded
    return table(pooled.sort("psi", descending=True, nulls_last=True) if "psi" in pooled.columns else pooled,
                 columns=cols, empty="No covariates.")


def drift_parts_figure(attr, folder: Path | None, *, name: str = "data-drift-by-covariate") -> Figure | Html:
    """The regression's data drift split by covariate, with intervals."""
    parts = attr.data_drift_parts
    if parts.height == 0:
        return paragraph("No split of the data drift by covariate (the regression method was not run).",
                         cls="vdrift-note")
    df = parts.with_columns([pl.col(c) * attr.scale for c in ("estimate", "ci_low", "ci_high")])
    return figure(charts.drift_parts(df, unit=attr.unit, decimals=attr.display.decimals), name, folder=folder)


def support_block(details: dict) -> Html:
    """Where the counterfactual rests on the outcome model instead of served rows."""
    sup = details.get("support") or {}
    ext = sup.get("extrapolations") or []
    share = sup.get("extrapolated_share") or {}
    rows = [{"window": e["window"], "routing cell": e["cell"], "version": e["version"],
             "inputs it did not serve": fmt.share(e["unserved_share"], 0),
             "weight in the counterfactual": fmt.share(e["weight"]),
             "outside its served range": ", ".join(f"{o['covariate']} {fmt.share(o['share'], 0)}"
                                                   for o in e["outside"][:3])}
            for e in ext[:20]]
    intro = paragraph("Share of the counterfactual traffic that rests on the outcome model: "
                      + (", ".join(f"{k} {fmt.share(v, 0)}" for k, v in share.items()) or "none") + ".",
                      cls="vdrift-note")
    return Html(intro.body + table(pl.DataFrame(rows) if rows else pl.DataFrame(),
                                   empty="Every version's behaviour was observed where it was needed.").body)


def routing_table(attr) -> Html:
    """Served version shares per routing cell and window (the routing the split compares)."""
    cells = attr.cells
    if cells.height == 0:
        return table(pl.DataFrame(), empty="No cells.")
    from ..attribution.sums import SEGMENT_SEP
    df = (cells.with_columns(pl.col("cell").str.split(SEGMENT_SEP).list.first().alias("routing cell"),
                             pl.when(pl.col("period") == 0).then(pl.lit("baseline")).otherwise(pl.lit("comparison"))
                             .alias("window"))
          .group_by("window", "routing cell", "version").agg(pl.col("n").sum())
          .with_columns((pl.col("n") / pl.col("n").sum().over("window", "routing cell")).alias("share"))
          .sort("window", "routing cell", "version"))
    return table(df.select("window", "routing cell", "version", pl.col("n").alias("requests"), "share"),
                 formats={"share": _percent}, empty="No cells.")


def _plain(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value) or "-"
    return str(value)


def provenance_block(prov: dict[str, pl.DataFrame], params: dict, *, run_at: str, zone: DisplayZone = UTC) -> Html:
    """Input files with sha256, row counts, parameters, toolkit version and run time (times in ``zone``)."""
    files = zone.frame(prov["files"], "finished_at")
    shown = {k: _published(v) if k == "output_dir" else v for k, v in params.items()}
    utc_names = {"baseline", "comparison", "run_at"}  # the windows and the run time the analyses received
    param_frame = pl.DataFrame({
        "parameter": [k if zone.is_utc or k not in utc_names else f"{k} (UTC)" for k in shown],
        "value": [json.dumps(v) if isinstance(v, (list, dict)) else str(v) for v in shown.values()],
    })
    return concat(
        heading("Input files (ingest_log)", 3),
        table(files, columns=[c for c in ("ingest_id", "kind", "path", "sha256", "rows_read", "accepted",
                                          "quarantined", "finished_at") if c in files.columns],
              headers={} if zone.is_utc else {"finished_at": f"finished_at ({zone.label})"},
              empty="The store has no ingest records (tables were filled directly)."),
        heading("Row counts", 3),
        table(prov["counts"], headers={"table_name": "table"}),
        heading("Parameters", 3),
        table(param_frame),
        paragraph(f"vdrift {__version__}; report run at {run_at_text(run_at, zone)}; "
                  f"rendered from the store with the parameters above, so the numbers can be reproduced "
                  f"with `vdrift report` and the same store.", cls="vdrift-note"),
    )


def run_at_text(run_at: str, zone: DisplayZone = UTC) -> str:
    """The run time (naive UTC ISO text) as shown: ``2026-12-02T14:19:33 UTC``, or local with its abbreviation."""
    if zone.is_utc:
        return f"{run_at} UTC"
    try:
        ts = dt.datetime.fromisoformat(run_at)
    except ValueError:
        return f"{run_at} UTC"
    return f"{zone.fmt(ts, '%Y-%m-%dT%H:%M:%S')} {zone.abbrev(ts)}"


_PRIVATE_RUN = re.compile(r"^(?P<parent>.*)[\\/]\.(?P<name>[^\\/]+)\.tmp-[A-Za-z0-9_]+$")


def _published(folder: object) -> object:
    """The run folder a report is published to, for the private folder it was written in (``.<name>.tmp-*``)."""
    m = _PRIVATE_RUN.match(str(folder)) if folder else None
    return str(Path(m["parent"]) / m["name"]) if m else folder


def title_block(title: str, lines: list[str]) -> Html:
    """The report title and a list of what it covers."""
    return concat(heading(title, 1), bullets(lines, cls="vdrift-note"))


def write_summary(folder: Path | None, *, title: str, headline: str, extra: dict | None = None) -> Html:
    """Write ``summary.json`` (read by :func:`toolkit.report.render`) and return a short note."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        payload = {"title": title, "headline": headline, "written_at": dt.datetime.now(dt.UTC).isoformat()}
        payload.update(extra or {})
        (folder / "summary.json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return paragraph("End of report.", cls="vdrift-note")


class ReportViews:
    """What the incident and weekly reports share: the method checks, the versions' colours, the time zone.

    A mixin of the two frozen report classes (each has ``methods``,
    ``method``, ``timezone``, ``audit`` and ``series``).
    """

    methods: tuple[str, ...]
    method: str
    timezone: str
    audit: Any
    series: pl.DataFrame

    def _check_methods(self) -> None:
        from .params import METHODS

        if not self.methods or any(m not in METHODS for m in self.methods):
            raise ValueError(f"methods must be a non-empty subset of {METHODS}")
        if self.method not in self.methods:
            raise ValueError(f"the headline method {self.method!r} must be one of methods {self.methods}")

    @property
    def versions(self) -> list[str]:
        """Every resolved version the report shows (each keeps one colour across the charts)."""
        return all_versions(self.audit.census["resolved_version"], self.series["version"])

    @property
    def zone(self):
        """The display time zone (a weekly report's weeks start at its local midnight)."""
        from .params import DisplayZone

        return DisplayZone(self.timezone)

