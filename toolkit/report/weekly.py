"""The weekly report: census trend, consistency, new and ongoing findings, week-over-week split.

One audit covers the previous and the reported week, so the census and the
consistency score are drawn on one time axis; a finding is *new* when it
starts in the reported week, *ongoing* when it started before and lasts into
it, and *resolved* when it ended before the reported week began.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import polars as pl

from ..store import Store
from ..timeutil import Window
from . import data, sections
from .build import ReportRun, StoreReport
from .figures import Figure, figure
from .params import DisplayZone
from .tables import Html, paragraph, table

if TYPE_CHECKING:
    from ..audit.results import Bucket as AuditBucket


def classify_findings(findings: pl.DataFrame, week_start: dt.datetime) -> pl.DataFrame:
    """Add ``status``: new (starts in the week), ongoing (started before, lasts into it), resolved (ended before)."""
    if findings.height == 0:
        return findings.with_columns(pl.lit(None, dtype=pl.String).alias("status"))
    return findings.with_columns(
        pl.when(pl.col("start") >= week_start).then(pl.lit("new"))
        .when(pl.col("end").is_null() | (pl.col("end") > week_start)).then(pl.lit("ongoing"))
        .otherwise(pl.lit("resolved")).alias("status")
    )


def weekly_score(consistency: pl.DataFrame, window: Window) -> float | None:
    """Share of governed requests of ``window`` served as intended (None without any)."""
    sub = consistency.filter((pl.col("bucket_start") >= window.start) & (pl.col("bucket_start") < window.end))
    n = int(sub["n"].sum()) if sub.height else 0
    return None if n == 0 else float(sub["n_as_intended"].sum()) / n


#: Weeks of the off-intent cost trend, the reported week included.
TREND_WEEKS = 4


def weeks_before(week: Window, k: int, zone: DisplayZone) -> Window:
    """The week ``k`` weeks before ``week``, from local midnight to local midnight of the display zone."""
    first = zone.local(week.start).date() - dt.timedelta(days=7 * k)
    return Window(zone.midnight(first), zone.midnight(first + dt.timedelta(days=7)))


def cost_trend(store: Store, metric: str, causes: Any, week: Window, *, weeks: int, where: dict | None,
               covariates: list[str] | None, n_boot: int, seed: int, method: str = "regression", bins: int = 5,
               zone: DisplayZone | None = None) -> pl.DataFrame:
    """The cost of off-intent serving of the reported week and the ``weeks - 1`` before it.

    The reported and the previous week come from the week-over-week
    explain; each earlier week (local weeks of ``zone``) is explained on its
    own, priced with ``method``. A week without rows for the metric is left
    out. ``week`` is naive UTC, and so is the ``week`` column.
    """
    from ..causes import explain
    from ..errors import NotApplicable

    zone = zone or DisplayZone("UTC")
    rows = []
    for c in causes.window_costs.iter_rows(named=True):
        start = week.start if c["window"] == "comparison" else weeks_before(week, 1, zone).start
        rows.append({"week": start, "cost": c["cost"], "ci_low": c["ci_low"], "ci_high": c["ci_high"]})
    for k in range(2, weeks):
        w = weeks_before(week, k, zone)
        try:
            res = explain(store, metric, w, where=where, covariates=covariates, n_boot=n_boot, seed=seed,
                          method=method, bins=bins)
        except NotApplicable:
            continue
        c = res.window_costs.row(0, named=True)
        rows.append({"week": w.start, "cost": c["cost"], "ci_low": c["ci_low"], "ci_high": c["ci_high"]})
    schema = pl.Schema({"week": pl.Datetime("us"), "cost": pl.Float64(), "ci_low": pl.Float64(),
                        "ci_high": pl.Float64()})
    return pl.DataFrame(rows, schema=schema).sort("week")


@dataclass(frozen=True)
class WeeklyReport(sections.ReportViews, StoreReport):
    """Results behind one weekly report (reported week vs the previous week)."""

    previous: Window
    week: Window
    findings: pl.DataFrame
    trend: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False)

    def __post_init__(self) -> None:
        if self.previous.end != self.week.start:
            raise ValueError("the previous week must end where the reported week starts")
        if "status" not in self.findings.columns:
            raise ValueError("findings must carry a status column (new/ongoing/resolved)")
        self._check_methods()

    window_labels = ("previous week", "reported week")

    @classmethod
    def span(cls, baseline: Window, comparison: Window) -> tuple[dt.datetime, dt.datetime]:
        """From the start of the previous week to the end of the reported week."""
        return baseline.start, comparison.end

    @classmethod
    def _run(cls, store: Store, run: ReportRun) -> dict[str, Any]:
        """The audit over both weeks, the week-over-week explain and attribution, and the cost trend.

        ``baseline`` is the previous week and ``comparison`` the reported week
        (``vdrift report weekly`` derives both from ``week``, from local
        midnight in ``timezone``), both naive UTC.
        """
        from ..audit import audit
        from .incident import explain_and_split

        m, prev, week, zone = run.metric, run.baseline, run.comparison, run.zone
        aud = audit(store, start=prev.start, end=week.end, bucket=cast("AuditBucket", run.shared["bucket"]))
        causes, attr = explain_and_split(store, m.spec, week, prev, methods=run.methods, method=run.method,
                                         bins=run.bins, covariates=run.covariates, where=run.where,
                                         n_boot=run.n_boot, seed=run.seed)
        trend = cost_trend(store, m.spec, causes, week, weeks=TREND_WEEKS, where=run.where,
                           covariates=list(run.covariates) if run.covariates else None, n_boot=run.n_boot,
                           seed=run.seed, method=run.method, bins=run.bins, zone=zone)
        return dict(
            title=run.title or f"Weekly report, week of {zone.local(week.start):%Y-%m-%d}", previous=prev, week=week,
            attribution=attr, audit=aud, findings=classify_findings(aud.findings, week.start),
            series=data.metric_by_version(store.con, m, prev, week, where=run.where, hours=1),
            deployments=data.deployments_between(store.con, prev.start, week.end),
            provenance=data.provenance(store.con), causes=causes, trend=trend,
        )

    # -- figures of the headline ------------------------------------------------------
    @property
    def score_week(self) -> float | None:
        """Consistency score of the reported week (``None`` when no deployment history governs it)."""
        return weekly_score(self.audit.consistency, self.week)

    @property
    def score_previous(self) -> float | None:
        """Consistency score of the week before."""
        return weekly_score(self.audit.consistency, self.previous)

    def _count(self, status: str) -> int:
        return int((self.findings["status"] == status).sum()) if self.findings.height else 0

    @property
    def headline(self) -> str:
        """One sentence: consistency, findings and the metric's week-over-week split."""
        sw, sp = self.score_week, self.score_previous
        score = "consistency n/a" if sw is None else f"consistency {100 * sw:.1f}%"
        if sw is not None and sp is not None:
            score += f" (previous week {100 * sp:.1f}%)"
        current = self.findings.filter(pl.col("status") != "resolved") if self.findings.height else self.findings
        sev = ""
        if current.height:
            order = {"info": 0, "warning": 1, "critical": 2}
            sev = f", worst {max(current['severity'].to_list(), key=lambda s: order.get(s, -1))}"
        return (
            f"Week of {self.zone.local(self.week.start):%Y-%m-%d}: {score}; {self._count('new')} new and "
            f"{self._count('ongoing')} ongoing finding(s){sev}. "
            + sections.split_headline(self.attribution, methods=list(self.methods), method=self.method)
        )

    # -- sections -----------------------------------------------------------------------
    def header(self) -> Html:
        """Title and the weeks, metric and store of the report."""
        a, z = self.attribution, self.zone
        times = ("times in UTC." if z.is_utc else
                 f"weeks from local midnight, times in {z.label} "
                 f"({z.offsets(self.previous.start, self.week.end)}; the store keeps UTC).")
        lines = [
            f"Reported week {z.window(self.week)} ({a.rows[1]:,} requests for the metric) against the previous week "
            f"{z.window(self.previous)} ({a.rows[0]:,}); {times}",
            f"Metric: {a.metric_label} [{a.metric}]. Generated {sections.run_at_text(self.run_at, z)}.",
        ]
        if self.method != "regression" or self.bins != 5:
            lines.append(f"Headline method: {sections.method_label(self.method)}; {self.bins} quantile bins per "
                         "numeric covariate.")
        return sections.title_block(self.title, lines)

    def headline_block(self) -> Html:
        """The headline, highlighted."""
        return Html(f'<div class="vdrift-headline"><p><b>{sections.esc(self.headline)}</b></p></div>')

    def census(self) -> Figure:
        """Requests over the two weeks by resolved version, with the deployment events."""
        return sections.census_figure(self.audit.census, self.deployments, self.output_dir, hours=self.hours,
                                      name="version-census",
                                      title="Versions serving traffic, previous and reported week",
                                      zone=self.zone, source_hours=24 if self.bucket == "day" else 1,
                                      universe=self.versions)

    def consistency(self) -> Figure | Html:
        """The consistency score over time (a note when no deployment history governs the requests)."""
        c = self.audit.consistency
        if c.height == 0:
            return paragraph("No consistency score: no deployment history governs these requests.", cls="vdrift-note")
        from .charts import consistency_trend

        z = self.zone
        local = data.display_buckets(c, self.hours, z, source_hours=24 if self.bucket == "day" else 1)
        return figure(consistency_trend(local, hours=None, time_title=z.axis()), "consistency-score",
                      folder=self.output_dir)

    def consistency_table(self) -> Html:
        """The consistency score of the previous and the reported week."""
        rows = []
        for label, w in (("previous week", self.previous), ("reported week", self.week)):
            s = weekly_score(self.audit.consistency, w)
            share = "n/a" if s is None else f"{100 * s:.1f}%"
            rows.append({"week": label, "window": self.zone.window(w), "served as intended": share})
        return table(pl.DataFrame(rows))

    def findings_section(self, status: str) -> Html:
        """The findings that are ``new``, ``ongoing`` or ``resolved`` this week."""
        sub = self.findings.filter(pl.col("status") == status) if self.findings.height else self.findings
        empty = {"new": "No new findings this week.", "ongoing": "No ongoing findings.",
                 "resolved": "No findings ended last week."}[status]
        if sub.height == 0:
            return paragraph(empty, cls="vdrift-note")
        return sections.findings_table(sub, zone=self.zone)

    def metric_by_version(self) -> Figure:
        """The metric over time, one line per resolved version (sparse buckets merged, 95% bands)."""
        return sections.metric_figure(self.series, self.output_dir, unit="%" if self.metric.is_rate else "",
                                      hours=self.hours, zone=self.zone, scale=self.metric.scale(),
                                      rate=self.metric.is_rate, universe=self.versions)

    def waterfall(self) -> Figure:
        """The week-over-week split as a waterfall chart."""
        return sections.waterfall_figure(self.attribution, self.output_dir, name="week-over-week-split",
                                         methods=list(self.methods), method=self.method,
                                         title=f"{self.attribution.metric_label}: week over week")

    def methods_table(self) -> Html:
        """The week-over-week split by each method, side by side."""
        return sections.methods_table(self.attribution, methods=list(self.methods))

    def notes(self) -> Html:
        """The attribution's diagnostics, most severe first."""
        return sections.notes_block(self.attribution)

    def off_intent_trend(self) -> Figure | Html:
        """The cost of off-intent serving per week, the reported week last (a note says which weeks had no data)."""
        from .causes import cost_trend_figure

        a = self.attribution
        fig = cost_trend_figure(self.trend, self.output_dir, unit=a.unit, scale=a.scale, zone=self.zone,
                                observed=a.observed)  # the trend comes from explain runs at 0.95
        shown = self.trend.height
        if shown >= TREND_WEEKS or isinstance(fig, Html):
            return fig
        from .tables import concat

        note = paragraph(f"{shown} of the last {TREND_WEEKS} weeks have predictions for the metric; the weeks "
                         "before them are left out.", cls="vdrift-note")
        return concat(Html(fig._repr_html_()), note)

    def off_intent_cost(self) -> Html:
        """The cost of off-intent serving in the reported and the previous week."""
        from .causes import cost_block

        return cost_block(self.causes, self.zone)

    def causes_table(self) -> Html:
        """The ranked causes of the week-over-week change."""
        from .causes import causes_table

        return causes_table(self.causes, zone=self.zone, method=self.method)

    def provenance_block(self) -> Html:
        """Input files with their SHA-256, row counts, parameters, toolkit version and run time."""
        return sections.provenance_block(self.provenance, self.parameters, run_at=self.run_at, zone=self.zone)

    def finish(self) -> Html:
        """Write ``summary.json`` (title, headline, scores, finding counts) and return a short note."""
        return sections.write_summary(self.output_dir, title=self.title, headline=self.headline,
                                      extra={"consistency_week": self.score_week,
                                             "consistency_previous": self.score_previous,
                                             "new_findings": self._count("new"),
                                             "ongoing_findings": self._count("ongoing")})
