"""Result objects of the version audit: thresholds, findings and :class:`AuditResult`.

The finding kinds are a fixed vocabulary shared with the sample simulator's
ground truth (``toolkit.samples``), so planted problems and detected ones can
be compared by name.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass, field
from typing import Literal, get_args

import polars as pl

from .. import formatting as fmt
from ..errors import InputError
from ..store.attach.excluded import Excluded
from ..store.attach.excluded import sentence as excluded_sentence
from ..vocab import AUDIT_BUCKETS, AuditBucket

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
_RANK = {name: i for i, name in enumerate(SEVERITIES)}

# Old names kept as aliases so ``toolkit.audit.Bucket`` keeps working.
Bucket = AuditBucket
BUCKETS = AUDIT_BUCKETS

FindingKind = Literal[
    "stuck_rollout",
    "incomplete_rollback",
    "abandoned_experiment",
    "artifact_mismatch",
    "preprocessing_mismatch",
    "stale_cache",
    "batch_online_divergence",
    "unexpected_multi_version",
    "prediction_divergence",
    "designed_multi_version",
]
FINDING_KINDS: tuple[str, ...] = get_args(FindingKind)


def severity_rank(severity: str) -> int:
    """Position of ``severity`` in info < warning < critical.

    Raises
    ------
    InputError
        For a name outside the vocabulary.
    """
    if severity not in _RANK:
        raise InputError(f"unknown severity {severity!r}; use one of: {', '.join(SEVERITIES)}")
    return _RANK[severity]


@dataclass(frozen=True)
class AuditThresholds:
    """Thresholds of the detectors, with their documented defaults.

    Parameters
    ----------
    min_count
        Fewest requests that make a finding (smaller groups are ignored as noise).
    min_share
        Smallest share of its scope's traffic (same bucket and component) a
        version must have to count as "serving" for the multi-version,
        stuck-split and batch/online comparisons.
    max_rollout_age
        Deadline of a rollout whose deployment event has no ``expected_end``,
        counted from ``rollout_start``.
    max_experiment_age
        The same for an experiment without ``expected_end``.
    cache_grace
        How long after a version stops being live cache hits may still come
        from it (the cache's time to live) before they are stale.
    rollback_grace
        How long after a rollback other components may lag before the rollback
        counts as incomplete.
    batch_grace
        How long after a change batch may still run the previous version
        before batch and online count as divergent.
    divergence_rate
        Share of compared requests (shadow pairs or repeated identical inputs)
        answered differently at or above which a version pair is reported at
        warning severity (below it, at info).
    min_pairs
        Fewest compared requests for a prediction-divergence finding.
    max_unverified_share
        Largest share of rows without an artifact digest for designed
        multi-version serving to count as observable.
    n_examples
        Example request_ids kept per finding.
    """

    min_count: int = 5
    min_share: float = 0.01
    max_rollout_age: dt.timedelta = dt.timedelta(days=7)
    max_experiment_age: dt.timedelta = dt.timedelta(days=14)
    cache_grace: dt.timedelta = dt.timedelta(hours=1)
    rollback_grace: dt.timedelta = dt.timedelta(minutes=0)
    batch_grace: dt.timedelta = dt.timedelta(hours=0)
    divergence_rate: float = 0.05
    min_pairs: int = 20
    max_unverified_share: float = 0.5
    n_examples: int = 3

    def __post_init__(self) -> None:
        if self.min_count < 1:
            raise InputError(f"min_count must be at least 1, got {self.min_count}")
        for name in ("min_share", "divergence_rate", "max_unverified_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} is a share and must lie in [0, 1], got {value}")
        for name in ("max_rollout_age", "max_experiment_age", "cache_grace", "rollback_grace", "batch_grace"):
            value = getattr(self, name)
            if not isinstance(value, dt.timedelta) or value < dt.timedelta(0):
                raise InputError(f"{name} must be a non-negative datetime.timedelta, got {value!r}")
        if self.min_pairs < 1 or self.n_examples < 1:
            raise InputError("min_pairs and n_examples must be at least 1")

    def to_dict(self) -> dict:
        """The thresholds as plain values (durations in seconds), for JSON."""
        out = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.total_seconds() if isinstance(value, dt.timedelta) else value
        return out


#: Column order and polars types of :attr:`AuditResult.findings`.
FINDING_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "finding_id": pl.Utf8,
    "kind": pl.Utf8,
    "severity": pl.Utf8,
    "component": pl.Utf8,
    "region": pl.Utf8,
    "instance_id": pl.Utf8,
    "versions": pl.List(pl.Utf8),
    "start": pl.Datetime("us"),
    "end": pl.Datetime("us"),
    "n_requests": pl.Int64,
    "share": pl.Float64,
    "examples": pl.List(pl.Utf8),
    "explanation": pl.Utf8,
    "evidence": pl.Utf8,
}

CENSUS_COLUMNS = (
    "bucket_start", "resolved_version", "model_version", "version_status",
    "component", "region", "instance_id", "n", "share",
)
INTENDED_COLUMNS = (
    "start", "end", "component", "scope", "version", "traffic_share",
    "source_event", "actor", "expected_end", "experiment",
)
CONSISTENCY_COLUMNS = ("bucket_start", "n", "n_as_intended", "score", "n_versions")
COVERAGE_COLUMNS = ("component", "n", "n_governed", "has_history_kind")
#: a component with more than this share of its requests ungoverned is a warning of the audit
UNGOVERNED_WARN = 0.01
UNKNOWN_COMPONENT = ("vdrift governs the components online, cache and batch (and cache hits of any component): "
                     "map this name onto one of them with [values.component] in the predictions mapping file")


def ungoverned_warning(component: str, n: int, share_of_all: float, why: str) -> str:
    """The warning for a component's requests that no deployment history governs (audit and status)."""
    return (f"component `{component}`: {fmt.share(share_of_all, 0)} of traffic ({n:,} requests) not governed by any "
            f"deployment history, so never checked; {why}")


def _check_columns(frame: pl.DataFrame, expected: tuple[str, ...], what: str) -> None:
    if tuple(frame.columns) != tuple(expected):
        raise ValueError(f"{what} frame has columns {frame.columns}, expected {list(expected)}")


def _fmt_time(value: dt.datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class AuditResult:
    """What served traffic, what was intended, and where the two differ.

    Attributes
    ----------
    census
        Requests per bucket x resolved version x reported version x status x
        component x region x instance; ``share`` is the share of the bucket's
        requests in that component.
    intended
        Intended state per component x scope over time (one row per version
        that should serve, with its traffic share).
    findings
        One row per finding (see :data:`FINDING_SCHEMA`), most severe first.
    consistency
        Per bucket: governed requests, those served as intended, the score
        (their share) and the number of distinct versions serving.
    excluded
        For attached predictions: the window's rows that are not valid and
        are left out of the audit, by reason (None for an ingested store,
        whose bad rows are in its quarantine).
    coverage
        Per predictions component: requests and governed requests (those a
        deployment history covers: the consistency score's base). Ungoverned
        traffic is never checked; :meth:`warnings` says so per component.
    window_start, window_end
        The audited half-open window.
    bucket
        ``"hour"`` or ``"day"``.
    thresholds
        The thresholds used.
    """

    census: pl.DataFrame
    intended: pl.DataFrame
    findings: pl.DataFrame
    consistency: pl.DataFrame
    window_start: dt.datetime
    window_end: dt.datetime
    bucket: Literal["hour", "day"]
    thresholds: AuditThresholds = field(default_factory=AuditThresholds)
    coverage: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(
        schema={"component": pl.Utf8, "n": pl.Int64, "n_governed": pl.Int64, "has_history_kind": pl.Boolean}))
    excluded: Excluded | None = None

    def __post_init__(self) -> None:
        _check_columns(self.census, CENSUS_COLUMNS, "census")
        _check_columns(self.coverage, COVERAGE_COLUMNS, "coverage")
        _check_columns(self.intended, INTENDED_COLUMNS, "intended")
        _check_columns(self.consistency, CONSISTENCY_COLUMNS, "consistency")
        _check_columns(self.findings, tuple(FINDING_SCHEMA), "findings")
        if self.bucket not in ("hour", "day"):
            raise ValueError(f"bucket must be hour or day, got {self.bucket!r}")
        if self.findings.height:
            bad = set(self.findings["kind"].unique().to_list()) - set(FINDING_KINDS)
            if bad:
                raise ValueError(f"unknown finding kinds {sorted(bad)}")
            bad = set(self.findings["severity"].unique().to_list()) - set(SEVERITIES)
            if bad:
                raise ValueError(f"unknown severities {sorted(bad)}")
            if self.findings["finding_id"].n_unique() != self.findings.height:
                raise ValueError("finding ids must be unique")
            if self.findings.filter(pl.col("end") < pl.col("start")).height:
                raise ValueError("a finding cannot end before it starts")
            if self.findings.filter(pl.col("n_requests") < 0).height:
                raise ValueError("finding request counts must be non-negative")
        if self.consistency.height:
            outside = self.consistency.filter(
                (pl.col("n_as_intended") > pl.col("n")) | (pl.col("n_as_intended") < 0)
            )
            if outside.height:
                raise ValueError("consistency: n_as_intended must lie in [0, n]")
        if self.census.height:
            if self.census.filter(pl.col("n") <= 0).height:
                raise ValueError("census counts must be positive")
            governed = int(self.consistency["n"].sum()) if self.consistency.height else 0
            if governed > int(self.census["n"].sum()):
                raise ValueError("consistency counts more requests than the census")

    # -- derived -----------------------------------------------------------------
    @property
    def max_severity(self) -> Severity | None:
        """The most severe finding's severity, or None without findings."""
        if self.findings.height == 0:
            return None
        return max(self.findings["severity"].to_list(), key=severity_rank)

    def at_least(self, severity: Severity) -> pl.DataFrame:
        """Findings at or above ``severity``."""
        rank = severity_rank(severity)
        keep = [severity_rank(s) >= rank for s in self.findings["severity"].to_list()]
        return self.findings.filter(pl.Series(keep, dtype=pl.Boolean))

    def by_kind(self, kind: FindingKind) -> pl.DataFrame:
        """Findings of one kind."""
        if kind not in FINDING_KINDS:
            raise InputError(f"unknown finding kind {kind!r}; use one of: {', '.join(FINDING_KINDS)}")
        return self.findings.filter(pl.col("kind") == kind)

    @property
    def overall_score(self) -> float | None:
        """Share of all governed requests served as intended (None without any)."""
        n = int(self.consistency["n"].sum()) if self.consistency.height else 0
        if n == 0:
            return None
        return float(self.consistency["n_as_intended"].sum()) / n

    @property
    def governed_share(self) -> float | None:
        """Share of the window's non-shadow requests a deployment history governs (None without requests)."""
        rows = self.coverage.filter(pl.col("component") != "shadow")
        n = int(rows["n"].sum()) if rows.height else 0
        return None if n == 0 else int(rows["n_governed"].sum()) / n

    def warnings(self) -> tuple[str, ...]:
        """One sentence per component whose traffic is (partly) not governed by any deployment history."""
        rows = self.coverage.filter(pl.col("component") != "shadow")
        total = int(rows["n"].sum()) if rows.height else 0
        out = []
        for row in rows.iter_rows(named=True):
            ungoverned = row["n"] - row["n_governed"]
            if row["n"] == 0 or ungoverned / row["n"] <= UNGOVERNED_WARN:
                continue
            why = (UNKNOWN_COMPONENT if not row["has_history_kind"] else
                   "the deployment history has no version-changing event for it before these requests: "
                   "ingest the history that covers them")
            out.append(ungoverned_warning(row["component"], ungoverned, ungoverned / total, why))
        if self.excluded is not None and self.excluded.total:
            out.append(excluded_sentence(self.excluded, "the audit"))
        return tuple(out)

    def to_frame(self) -> pl.DataFrame:
        """The findings: the tidy table the other accessors derive from."""
        return self.findings

    # -- rendering ---------------------------------------------------------------
    def summary(self) -> str:
        """A plain-text report: header, versions served, findings table."""
        lines = [
            f"vdrift audit  {self.window_start.isoformat(sep=' ')} .. {self.window_end.isoformat(sep=' ')}"
            f"  (bucket: {self.bucket})",
        ]
        total = int(self.census["n"].sum()) if self.census.height else 0
        score = self.overall_score
        covered = self.governed_share
        lines.append(
            f"requests: {total}   consistency: "
            + ("n/a (no deployment history governs these requests)" if score is None else
               f"{fmt.share(score)} (it covers {fmt.share(covered, 0)} of requests: those a deployment history "
               "governs)" if covered is not None
               else fmt.share(score))
        )
        lines += [f"warning: {w}" for w in self.warnings()]
        if self.census.height:
            served = (
                self.census.group_by("component", "resolved_version", "version_status")
                .agg(pl.col("n").sum())
                .sort("component", "n", descending=[False, True])
            )
            lines.append("")
            lines.append("versions served (component / resolved version / status / requests):")
            for row in served.iter_rows(named=True):
                lines.append(
                    f"  {row['component']:<10} {row['resolved_version']:<28} {row['version_status']:<12} {row['n']:>9}"
                )
        lines.append("")
        if self.findings.height == 0:
            lines.append("no findings: traffic was served as the deployment history intended")
            return "\n".join(lines)
        counts = self.findings.group_by("severity").len()
        by_sev = {r["severity"]: r["len"] for r in counts.iter_rows(named=True)}
        lines.append(
            "findings: " + ", ".join(f"{by_sev.get(s, 0)} {s}" for s in reversed(SEVERITIES))
        )
        header = f"{'severity':<9} {'kind':<25} {'scope':<28} {'versions':<24} {'from':<16} {'to':<16} {'requests':>8}"
        lines.append(header)
        lines.append("-" * len(header))
        for row in self.findings.iter_rows(named=True):
            scope = "/".join(x for x in (row["component"], row["region"], row["instance_id"]) if x)
            versions = ",".join(row["versions"] or [])
            lines.append(
                f"{row['severity']:<9} {row['kind']:<25} {scope[:28]:<28} {versions[:24]:<24} "
                f"{_fmt_time(row['start']):<16} {_fmt_time(row['end']):<16} {row['n_requests']:>8}"
            )
            lines.append(f"          {row['explanation']}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain JSON-ready data: window, thresholds, findings, consistency, census."""

        def rows(frame: pl.DataFrame) -> list[dict]:
            out = []
            for row in frame.iter_rows(named=True):
                clean = {}
                for key, value in row.items():
                    if isinstance(value, (dt.datetime, dt.date)):
                        value = value.isoformat()
                    clean[key] = value
                out.append(clean)
            return out

        findings = rows(self.findings)
        for item in findings:
            item["evidence"] = json.loads(item["evidence"]) if item["evidence"] else {}
        return {
            "window": {"start": self.window_start.isoformat(), "end": self.window_end.isoformat()},
            "bucket": self.bucket,
            "max_severity": self.max_severity,
            "consistency_score": self.overall_score,
            "governed_share": self.governed_share,
            "warnings": list(self.warnings()),
            "excluded_rows": self.excluded.as_dict(["window"]) if self.excluded is not None else None,
            "coverage": rows(self.coverage),
            "thresholds": self.thresholds.to_dict(),
            "findings": findings,
            "consistency": rows(self.consistency),
            "intended": rows(self.intended),
            "census": rows(self.census),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def _repr_html_(self) -> str:
        esc = html.escape
        score = self.overall_score
        parts = [
            "<div class='vdrift-audit'>",
            f"<p><b>vdrift audit</b> {esc(self.window_start.isoformat(sep=' '))} .. "
            f"{esc(self.window_end.isoformat(sep=' '))} (bucket: {esc(self.bucket)}); "
            f"consistency: {esc(fmt.share(score))}</p>",
        ]
        parts += [f"<p><b>warning:</b> {esc(w)}</p>" for w in self.warnings()]
        if self.findings.height == 0:
            parts.append("<p>No findings.</p></div>")
            return "".join(parts)
        cols = ("severity", "kind", "component", "region", "instance_id", "versions", "start", "end", "n_requests",
                "explanation")
        parts.append("<table><thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr></thead><tbody>")
        for row in self.findings.iter_rows(named=True):
            cells = []
            for c in cols:
                value = row[c]
                if isinstance(value, list):
                    text = ", ".join(str(v) for v in value)
                elif isinstance(value, dt.datetime):
                    text = _fmt_time(value)
                elif value is None:
                    text = ""
                else:
                    text = str(value)
                cells.append(f"<td>{esc(text)}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table></div>")
        return "".join(parts)

    def __repr__(self) -> str:
        return (
            f"AuditResult(window={self.window_start.isoformat()}..{self.window_end.isoformat()}, "
            f"bucket={self.bucket!r}, findings={self.findings.height}, max_severity={self.max_severity!r})"
        )
