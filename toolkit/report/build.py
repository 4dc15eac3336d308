"""What the incident and the weekly report share: their common fields and one ``build`` signature.

``build`` parses the notebook's ``parameters`` cell (see
:data:`toolkit.report.params.SPECS`) into a :class:`ReportRun`, opens the
store read-only and hands both to the report class's ``_run``, which runs its
own analyses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self, cast

import polars as pl

from ..attribution.metrics import Metric, parse_metric
from ..store import Store
from ..timeutil import Window, parse_window
from . import data
from .params import METHODS, DisplayZone


@dataclass(frozen=True)
class ReportRun:
    """The parsed parameters of one report build.

    ``baseline`` and ``comparison`` are the two windows (naive UTC),
    ``start``/``end`` the span the report covers; ``shared`` holds the
    constructor fields both reports take (metric, methods, bucket, hours,
    output_dir, parameters, method, bins, timezone; ``run_at`` is stamped
    when the analyses are done).
    """

    metric: Metric
    baseline: Window
    comparison: Window
    start: dt.datetime
    end: dt.datetime
    methods: list[str]
    zone: DisplayZone
    where: dict | None
    covariates: list[str] | None
    method: str
    bins: int
    n_boot: int
    seed: int
    title: str
    shared: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class StoreReport:
    """The fields and the ``build`` classmethod of a report computed from a store.

    The base of the incident and the weekly report dataclasses; its fields are
    keyword-only, so each report adds its own windows and frames. The
    attributes are documented on :class:`toolkit.report.incident.IncidentReport`.
    """

    title: str
    metric: Metric
    methods: tuple[str, ...]
    bucket: str
    hours: int
    output_dir: Path | None
    parameters: dict[str, Any]
    run_at: str
    attribution: Any
    audit: Any
    series: pl.DataFrame
    deployments: pl.DataFrame
    provenance: dict[str, pl.DataFrame] = field(repr=False)
    causes: Any = field(default=None, repr=False)
    method: str = "regression"
    bins: int = 5
    timezone: str = "UTC"

    #: What the parse errors call the ``baseline`` and the ``comparison`` parameter.
    window_labels: ClassVar[tuple[str, str]] = ("baseline window", "comparison window")

    @classmethod
    def span(cls, baseline: Window, comparison: Window) -> tuple[dt.datetime, dt.datetime]:
        """The time span the report covers (the audit's, the bucket's): both windows."""
        return min(baseline.start, comparison.start), max(baseline.end, comparison.end)

    @classmethod
    def build(
        cls,
        *,
        store_path: str,
        metric: str,
        baseline: str,
        comparison: str,
        filters: dict | None = None,
        covariates: list[str] | None = None,
        methods: list[str] | None = None,
        method: str = "regression",
        bins: int = 5,
        bucket: str = "",
        n_boot: int = 200,
        seed: int = 0,
        title: str = "",
        output_dir: str = "",
        run_at: str = "",
        timezone: str = "UTC",
        parameters: dict[str, Any] | None = None,
    ) -> Self:
        """Run the analyses of the report's notebook.

        Parameters are those of the notebook's ``parameters`` cell (see
        :data:`toolkit.report.params.SPECS`); the report class's ``_run``
        says what it computes.
        """
        m = parse_metric(metric)
        base = parse_window(baseline, what=cls.window_labels[0])
        comp = parse_window(comparison, what=cls.window_labels[1])
        start, end = cls.span(base, comp)
        bkt = bucket or data.auto_bucket(start, end)
        zone = DisplayZone(timezone)
        run = ReportRun(
            metric=m, baseline=base, comparison=comp, start=start, end=end, methods=list(methods or METHODS),
            zone=zone, where=dict(filters or {}) or None, covariates=covariates, method=method, bins=bins,
            n_boot=n_boot, seed=seed, title=title,
            shared=dict(
                metric=m, methods=tuple(methods or METHODS), bucket=bkt,
                hours=max(24 if bkt == "day" else 1, data.display_hours(start, end)),
                output_dir=Path(output_dir) if output_dir else None, parameters=dict(parameters or {}),
                method=method, bins=int(bins), timezone=zone.name,
            ),
        )
        with Store(store_path, read_only=True) as store:
            fields = cls._run(store, run)
        run_at = run_at or dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")
        return cast(Any, cls)(**run.shared, run_at=run_at, **fields)

    @classmethod
    def _run(cls, store: Store, run: ReportRun) -> dict[str, Any]:
        """Run the report's analyses over ``store``: its constructor fields besides ``run.shared`` and run_at."""
        raise NotImplementedError
