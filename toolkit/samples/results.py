"""Result objects of the simulator: planted problems, replay effects, ground truth."""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping

import polars as pl

from .scenarios import COMPONENTS, PROBLEM_KINDS, REGIONS, SCENARIOS, VERSION_NAMES

_TOL = 1e-9


def iso(t: dt.datetime | None) -> str | None:
    """ISO 8601 UTC text with a ``Z`` suffix (``None`` stays ``None``)."""
    return None if t is None else t.isoformat(timespec="milliseconds") + "Z"


@dataclass(frozen=True)
class Problem:
    """One planted problem, as a correct audit should report it.

    Parameters
    ----------
    kind
        One of :data:`~toolkit.samples.scenarios.PROBLEM_KINDS`.
    component
        The prediction component whose rows show it: online, batch, cache or shadow.
    region, instance_id
        Scope; ``None`` means all regions / all instances (that report the
        version concerned).
    versions
        Resolved versions of the rows that show the problem.
    reported_version
        The label those rows report, where it matters (artifact and
        preprocessing mismatches).
    start, end
        The planted time range, naive UTC, half-open ``[start, end)``.
    scenario
        The scenario that planted it.
    note
        One plain-language sentence.
    evidence
        Counts behind a problem found in the logs themselves (for
        prediction_divergence: ``pairs`` of exact retries answered by the
        two versions, how many of them got ``diverging`` predictions, and
        the replay ``disagreement_rate``: the share of the region's online
        inputs over the whole fortnight on which the two versions disagree).
    """

    kind: str
    component: str
    region: str | None
    instance_id: str | None
    versions: tuple[str, ...]
    reported_version: str | None
    start: dt.datetime
    end: dt.datetime
    scenario: str
    note: str
    evidence: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in PROBLEM_KINDS:
            raise ValueError(f"unknown problem kind {self.kind!r}")
        if self.component not in COMPONENTS:
            raise ValueError(f"unknown component {self.component!r}")
        if self.region is not None and self.region not in REGIONS:
            raise ValueError(f"unknown region {self.region!r}")
        if not self.versions or any(v not in VERSION_NAMES for v in self.versions):
            raise ValueError(f"problem versions must be registered versions, got {self.versions!r}")
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}")
        if self.end < self.start:
            raise ValueError("a problem cannot end before it starts")

    def to_dict(self) -> dict[str, Any]:
        """The problem as JSON-ready values (times as ISO text)."""
        return {
            "kind": self.kind,
            "component": self.component,
            "region": self.region,
            "instance_id": self.instance_id,
            "versions": list(self.versions),
            "reported_version": self.reported_version,
            "start": iso(self.start),
            "end": iso(self.end),
            "scenario": self.scenario,
            "note": self.note,
            "evidence": None if self.evidence is None else dict(self.evidence),
        }


@dataclass(frozen=True)
class ReplayEffects:
    """Exact replay decomposition of one metric's shift (docs/methods.md).

    ``m[a + b]`` is M(data a, routing b) for a, b in {A, B}; the effects are the
    two-factor Shapley values. ``residual`` is 0 for a model-output metric
    (the scoring functions do not change); ``sampling_noise`` is what the
    observed total has beyond data + version drift (which version each
    request happened to get), with its cluster-robust (by entity) standard error.
    """

    metric: str
    baseline: float
    comparison: float
    m_aa: float
    m_ab: float
    m_ba: float
    m_bb: float
    data_drift: float
    version_drift: float
    residual: float
    sampling_noise: float
    sampling_noise_se: float
    n_baseline: int
    n_comparison: int
    routing: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = 0.5 * ((self.m_ba - self.m_aa) + (self.m_bb - self.m_ab))
        version = 0.5 * ((self.m_ab - self.m_aa) + (self.m_bb - self.m_ba))
        if abs(data - self.data_drift) > _TOL or abs(version - self.version_drift) > _TOL:
            raise ValueError("data/version drift are not the Shapley values of the replay table")
        if abs(self.data_drift + self.version_drift + self.residual - (self.m_bb - self.m_aa)) > _TOL:
            raise ValueError("replay effects do not add up to M(B,B) - M(A,A)")
        if abs(self.total - (self.data_drift + self.version_drift + self.residual + self.sampling_noise)) > _TOL:
            raise ValueError("effects plus sampling noise do not add up to the observed total")
        if not (self.sampling_noise_se >= 0 and math.isfinite(self.sampling_noise_se)):
            raise ValueError("sampling_noise_se must be a finite non-negative number")

    @property
    def total(self) -> float:
        """Observed comparison minus baseline."""
        return self.comparison - self.baseline

    def to_dict(self) -> dict[str, Any]:
        """The effects as JSON-ready values."""
        return {
            "metric": self.metric,
            "population": "all non-shadow prediction rows",
            "observed": {"baseline": self.baseline, "comparison": self.comparison},
            "total": self.total,
            "replay": {
                "M(A,A)": self.m_aa,
                "M(A,B)": self.m_ab,
                "M(B,A)": self.m_ba,
                "M(B,B)": self.m_bb,
                "note": "M(data, routing): mean over the data period's logged inputs of "
                "sum_v Pi_routing(v | region) f(x, v)",
            },
            "data_drift": self.data_drift,
            "version_drift": self.version_drift,
            "residual": self.residual,
            "sampling_noise": self.sampling_noise,
            "sampling_noise_se": self.sampling_noise_se,
            "n": {"baseline": self.n_baseline, "comparison": self.n_comparison},
            "routing": {p: {r: dict(v) for r, v in regions.items()} for p, regions in self.routing.items()},
        }


@dataclass(frozen=True)
class GroundTruth:
    """What the simulator planted and the exact effects, as written to ground_truth.json.

    ``to_frame()`` is the tidy attribution table (metric, quantity, value);
    ``problems_frame()`` lists the planted problems.
    """

    scenarios: tuple[str, ...]
    seed: int
    rows: int
    rows_written: int
    periods: Mapping[str, tuple[dt.datetime, dt.datetime]]
    versions: tuple[Mapping[str, Any], ...]
    covariates: tuple[Mapping[str, str], ...]
    problems: tuple[Problem, ...]
    attribution: Mapping[str, ReplayEffects]
    files: Mapping[str, str] = field(default_factory=dict)
    generator: str = "toolkit.samples"
    #: ``{metric: {scenario or 'all': {'baseline': cost, 'comparison': cost}}}``: the replay cost of each
    #: planted serving problem (metric as served minus the metric with that plant removed).
    problem_costs: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.periods) != {"baseline", "comparison"}:
            raise ValueError("ground truth needs exactly the baseline and comparison periods")
        for name in self.scenarios:
            if name not in SCENARIOS:
                raise ValueError(f"unknown scenario {name!r}")
        if self.rows_written < self.rows:
            raise ValueError("rows_written counts every row written, so it cannot be below rows")
        for name, eff in self.attribution.items():
            if eff.metric != name:
                raise ValueError(f"attribution entry {name!r} holds metric {eff.metric!r}")

    # -- accessors -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The ground truth as JSON-ready values (what ``ground_truth.json`` holds)."""
        return {
            "generator": self.generator,
            "scenarios": list(self.scenarios),
            "seed": self.seed,
            "rows": self.rows,
            "rows_written": self.rows_written,
            "periods": {k: {"start": iso(a), "end": iso(b)} for k, (a, b) in self.periods.items()},
            "versions": [dict(v) for v in self.versions],
            "covariates": [dict(c) for c in self.covariates],
            "problems": [p.to_dict() for p in self.problems],
            "attribution": {k: v.to_dict() for k, v in self.attribution.items()},
            "problem_costs": {m: {p: dict(c) for p, c in per.items()} for m, per in self.problem_costs.items()},
            "files": dict(self.files),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The ground truth as JSON text (numbers at full precision)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False) + "\n"

    def to_frame(self) -> pl.DataFrame:
        """Tidy attribution table: one row per (metric, quantity)."""
        rows = []
        for name, eff in self.attribution.items():
            for quantity in ("baseline", "comparison", "total", "data_drift", "version_drift", "residual",
                             "sampling_noise", "sampling_noise_se"):
                value = eff.total if quantity == "total" else getattr(eff, quantity)
                rows.append({"metric": name, "quantity": quantity, "value": float(value)})
        return pl.DataFrame(rows, schema={"metric": pl.String, "quantity": pl.String, "value": pl.Float64})

    def problems_frame(self) -> pl.DataFrame:
        """One row per planted problem."""
        schema: dict[str, pl.DataType | type[pl.DataType]] = {
            "kind": pl.String, "component": pl.String, "region": pl.String, "instance_id": pl.String,
            "versions": pl.List(pl.String), "reported_version": pl.String, "start": pl.Datetime("ms"),
            "end": pl.Datetime("ms"), "scenario": pl.String, "note": pl.String,
            "evidence": pl.Struct({"pairs": pl.Int64, "diverging": pl.Int64, "disagreement_rate": pl.Float64}),
        }
        rows = [{**p.to_dict(), "start": p.start, "end": p.end} for p in self.problems]
        return pl.DataFrame(rows, schema=schema)

    def effect(self, metric: str, quantity: str) -> float:
        """One number of the attribution table, e.g. ``effect("mean:score", "data_drift")``."""
        frame = self.to_frame().filter((pl.col("metric") == metric) & (pl.col("quantity") == quantity))
        if frame.height != 1:
            raise KeyError(f"no {quantity!r} for metric {metric!r}; metrics: {', '.join(self.attribution)}")
        return frame["value"][0]

    def summary(self) -> str:
        """A short text description of the sample."""
        (a0, a1), (b0, b1) = self.periods["baseline"], self.periods["comparison"]
        lines = [
            f"Sample scenarios: {', '.join(self.scenarios)} (seed {self.seed})",
            f"  {self.rows:,} requests, {self.rows_written:,} prediction rows incl. shadow",
            f"  baseline {iso(a0)}..{iso(a1)}, comparison {iso(b0)}..{iso(b1)}",
            f"  planted problems: {len(self.problems)}",
        ]
        for p in self.problems:
            scope = p.region or "all regions"
            if p.instance_id:
                scope += f"/{p.instance_id}"
            lines.append(
                f"    - {p.kind:<24} {p.component:<6} {scope:<12} {','.join(p.versions):<10} "
                f"{(iso(p.start) or '')[:16]} .. {(iso(p.end) or '')[:16]}"
            )
        for name, e in self.attribution.items():
            lines.append(
                f"  {name}: {e.baseline:.4f} -> {e.comparison:.4f} (total {e.total:+.4f}) = "
                f"data {e.data_drift:+.4f} + version {e.version_drift:+.4f} + residual {e.residual:+.4f} "
                f"+ sampling noise {e.sampling_noise:+.4f} (se {e.sampling_noise_se:.4f})"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        items = "".join(
            f"<tr><td>{html.escape(p.kind)}</td><td>{p.component}</td><td>{p.region or 'all'}</td>"
            f"<td>{html.escape(', '.join(p.versions))}</td><td>{iso(p.start)}</td><td>{iso(p.end)}</td></tr>"
            for p in self.problems
        )
        effects = "".join(
            f"<tr><td>{html.escape(n)}</td><td>{e.baseline:.4f}</td><td>{e.comparison:.4f}</td>"
            f"<td>{e.total:+.4f}</td><td>{e.data_drift:+.4f}</td><td>{e.version_drift:+.4f}</td>"
            f"<td>{e.sampling_noise:+.4f}</td></tr>"
            for n, e in self.attribution.items()
        )
        return (
            f"<div><strong>Sample ground truth</strong>: {html.escape(', '.join(self.scenarios))}, "
            f"seed {self.seed}, {self.rows:,} requests"
            "<table><tr><th>problem</th><th>component</th><th>region</th><th>versions</th>"
            f"<th>start</th><th>end</th></tr>{items}</table>"
            "<table><tr><th>metric</th><th>baseline</th><th>comparison</th><th>total</th>"
            f"<th>data drift</th><th>version drift</th><th>sampling noise</th></tr>{effects}</table></div>"
        )
