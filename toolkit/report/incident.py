"""The incident report: everything the incident notebook displays, computed once.

:meth:`IncidentReport.build` runs the attribution and the audit over the
store and collects the report-only series; each other method returns one
displayable section. The notebook only calls these methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import polars as pl

from ..store import Store
from ..timeutil import Window
from . import data, sections
from .build import ReportRun, StoreReport
from .figures import Figure
from .tables import Html, concat, paragraph

if TYPE_CHECKING:
    from ..attribution.api import MethodOption
    from ..audit.results import Bucket as AuditBucket


@dataclass(frozen=True)
class IncidentReport(sections.ReportViews, StoreReport):
    """Results behind one incident report.

    Attributes
    ----------
    attribution
        :class:`toolkit.attribution.results.AttributionResult` of the two windows.
    audit
        :class:`toolkit.audit.results.AuditResult` over both windows.
    series
        Metric by resolved version and time bucket (aggregated in DuckDB).
    mix
        Requests, share and metric per version in each window.
    deployments
        Deployment events inside the two windows.
    provenance
        ``files`` (ingest_log) and ``counts`` frames.
    causes
        :class:`toolkit.causes.ExplainResult`: the ranked causes, priced with
        the headline method (its attribution is :attr:`attribution` unless the
        headline method is not the regression and several methods are
        compared: then the comparison is a second attribution of all methods).
    method
        The headline method (one of ``methods``).
    bins
        Quantile bins per numeric covariate of the attribution.
    timezone
        The display time zone (IANA name); the windows and the store are UTC.
    """

    baseline: Window
    comparison: Window
    mix: pl.DataFrame

    def __post_init__(self) -> None:
        if self.comparison.end <= self.baseline.start:
            raise ValueError("the comparison window must not end before the baseline starts")
        self._check_methods()

    @classmethod
    def _run(cls, store: Store, run: ReportRun) -> dict[str, Any]:
        """The attribution of the two windows, the audit over both and the report-only series."""
        from ..audit import audit

        m, base, comp = run.metric, run.baseline, run.comparison
        causes, attr = explain_and_split(store, m.spec, comp, base, methods=run.methods, method=run.method,
                                         bins=run.bins, covariates=run.covariates, where=run.where,
                                         n_boot=run.n_boot, seed=run.seed)
        aud = audit(store, start=run.start, end=run.end, bucket=cast("AuditBucket", run.shared["bucket"]))
        return dict(
            title=run.title or f"Incident report: {m.spec}", baseline=base, comparison=comp,
            attribution=attr, audit=aud, causes=causes,
            series=data.metric_by_version(store.con, m, base, comp, where=run.where, hours=1),
            mix=data.period_by_version(store.con, m, base, comp, where=run.where),
            deployments=data.deployments_between(store.con, run.start, run.end),
            provenance=data.provenance(store.con),
        )

    # -- sections -------------------------------------------------------------------
    def header(self) -> Html:
        """Title and the metric, windows, filters and store of the report."""
        a, z = self.attribution, self.zone
        times = ("times in UTC" if z.is_utc else
                 f"times in {z.label} ({z.offsets(self.baseline.start, self.comparison.end)}; the store keeps UTC)")
        return sections.title_block(self.title, [
            f"Metric: {a.metric_label} [{a.metric}]",
            f"Baseline window {z.window(self.baseline)} ({a.rows[0]:,} requests); comparison window "
            f"{z.window(self.comparison)} ({a.rows[1]:,} requests); {times}, windows half-open.",
            f"Generated {sections.run_at_text(self.run_at, z)}. Data drift = change of the inputs; version drift = "
            "change of which model versions served them; residual = the same versions behaving differently.",
        ] + self._settings())

    def _settings(self) -> list[str]:
        """A line naming the headline method and the binning, when they are not the defaults."""
        if self.method == "regression" and self.bins == 5:
            return []
        return [f"Headline method: {sections.method_label(self.method)}; {self.bins} quantile bins per numeric "
                "covariate."]

    @property
    def headline(self) -> str:
        """One sentence: the shift and its split with intervals."""
        return sections.split_headline(self.attribution, methods=list(self.methods), method=self.method)

    def headline_block(self) -> Html:
        """The headline, highlighted."""
        return sections.headline_block(self.attribution, methods=list(self.methods), method=self.method)

    def causes_headline(self) -> Html:
        """The shift and its largest cause."""
        from .causes import causes_headline

        return causes_headline(self.causes, self.zone)

    def causes_table(self) -> Html:
        """The ranked causes: findings with their cost, data drift by feature, the residual."""
        from .causes import causes_table

        return causes_table(self.causes, zone=self.zone, method=self.method)

    def causes_waterfall(self) -> Figure:
        """From the baseline to the comparison, one step per cause."""
        from .causes import causes_waterfall

        return causes_waterfall(self.causes, self.output_dir)

    def off_intent_cost(self) -> Html:
        """What off-intent serving cost in each window."""
        from .causes import cost_block

        return cost_block(self.causes, self.zone)

    def change_points(self) -> Html:
        """When: change points of the metric per routing cell and version, with the nearest deployment event."""
        from .tables import bullets

        cp = self.causes.change_points
        if not cp.height:
            return paragraph("No change point (|z| >= 6) in any routing cell or version.", cls="vdrift-note")
        return bullets([self.zone.text(str(t)) for t in cp.head(10)["text"].to_list()])

    def waterfall(self) -> Figure:
        """Baseline, data drift, version drift, residual and comparison as a waterfall chart."""
        return sections.waterfall_figure(self.attribution, self.output_dir, methods=list(self.methods),
                                         method=self.method)

    def methods_table(self) -> Html:
        """The split by each method, side by side, with intervals."""
        return sections.methods_table(self.attribution, methods=list(self.methods))

    def notes(self) -> Html:
        """The attribution's diagnostics, most severe first."""
        return sections.notes_block(self.attribution)

    def census(self) -> Figure:
        """Requests over time by resolved version, with the deployment events."""
        return sections.census_figure(self.audit.census, self.deployments, self.output_dir, hours=self.hours,
                                      zone=self.zone, source_hours=24 if self.bucket == "day" else 1,
                                      universe=self.versions)

    def version_mix(self) -> Figure:
        """Each version's share of the requests in the two windows."""
        from .charts import versions_share
        from .figures import figure

        return figure(versions_share(self.mix, universe=self.versions), "version-mix", folder=self.output_dir)

    def census_table(self) -> Html:
        """Requests per component, resolved version and status."""
        return sections.census_table(self.audit.census)

    def findings(self) -> Html:
        """The audit findings over both windows, with the consistency score."""
        f = self.audit.findings
        score = self.audit.overall_score
        z = self.zone
        over = f"{z.fmt(self.baseline.start)}..{z.fmt(self.comparison.end)}" + ("" if z.is_utc else f" {z.label}")
        lead = paragraph(
            f"{f.height} finding(s) over {over}; "
            + ("consistency score n/a (no deployment history governs these requests)." if score is None
               else f"consistency score {100 * score:.1f}% of governed requests served as intended."),
            cls="vdrift-note",
        )
        return concat(lead, sections.findings_table(f, zone=z))

    def metric_by_version(self) -> Figure:
        """The metric over time, one line per resolved version (sparse buckets merged, 95% bands)."""
        return sections.metric_figure(self.series, self.output_dir, unit="%" if self.metric.is_rate else "",
                                      hours=self.hours, zone=self.zone, scale=self.metric.scale(),
                                      rate=self.metric.is_rate, universe=self.versions)

    def feature_drift(self) -> Figure | Html:
        """Population stability index of each covariate between the windows."""
        return sections.feature_drift_figure(self.attribution.feature_drift, self.output_dir)

    def feature_drift_table(self) -> Html:
        """The drift statistics of each covariate, all versions pooled."""
        return sections.feature_drift_table(self.attribution.feature_drift)

    def drift_by_covariate(self) -> Figure | Html:
        """The data drift split by covariate (regression), with intervals."""
        return sections.drift_parts_figure(self.attribution, self.output_dir)

    def support(self) -> Html:
        """Where the split rests on the outcome model rather than served rows."""
        return sections.support_block(self.attribution.diagnostics.details)

    def routing_table(self) -> Html:
        """Served version shares per routing cell and window."""
        return sections.routing_table(self.attribution)

    def provenance_block(self) -> Html:
        """Input files with their SHA-256, row counts, parameters, toolkit version and run time."""
        return sections.provenance_block(self.provenance, self.parameters, run_at=self.run_at, zone=self.zone)

    def finish(self) -> Html:
        """Write ``summary.json`` (headline for the index) into the run folder."""
        extra = {"attribution": self.attribution.to_dict()}
        if self.causes is not None:
            extra["causes"] = self.causes.to_dict()
        return sections.write_summary(self.output_dir, title=self.title, headline=self.headline, extra=extra)


def explain_and_split(store: Store, metric: str, comparison: Window, baseline: Window, *, methods: list[str],
                      method: str, bins: int, covariates: list[str] | None, where: dict | None, n_boot: int,
                      seed: int) -> tuple[Any, Any]:
    """The ranked causes (priced with the headline ``method``) and the attribution of every compared method.

    One attribution serves both when it can: explain prices the rows with the
    first method it runs, which for ``all`` is the regression. A headline
    method other than the regression, compared with other methods, needs a
    second attribution for the comparison (same seed: the same estimates).
    """
    from ..attribution import attribute
    from ..causes import explain

    covs = list(covariates) if covariates else None
    several = len(methods) > 1
    pricing = "all" if several and method == "regression" else method
    causes = explain(store, metric, comparison, baseline=baseline, covariates=covs, where=where,
                     method=cast("MethodOption", pricing), bins=bins, n_boot=n_boot, seed=seed)
    if not several or pricing == "all":
        return causes, causes.attribution
    attr = attribute(store, metric, baseline, comparison, covariates=covs, where=where, method="all", bins=bins,
                     n_boot=n_boot, seed=seed)
    return causes, attr
