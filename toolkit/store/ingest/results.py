"""What an ingest call returns: one :class:`IngestResult` per file, gathered in an :class:`IngestReport`."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from ...frames import attrs_frame

Format = Literal["csv", "parquet", "json"]
Status = Literal["ingested", "skipped", "failed"]

#: a value named in a quarantine reason: a JSON string (plan.shown writes every value this way)
VALUE_PATTERN = r'"(?:[^"\\]|\\.)*"'
#: what stands for the value in a reason's rule
VALUE_MARK = "…"


def reason_rule(reason: str) -> str:
    """A quarantine reason with its values replaced by ``…``: the rule it broke, to count rows by."""
    return re.sub(VALUE_PATTERN, VALUE_MARK, reason)


def reason_rule_sql(column: str) -> str:
    """SQL of :func:`reason_rule` over a reason column (a fixed identifier of the calling SQL)."""
    return f"regexp_replace({column}, '{VALUE_PATTERN}', '{VALUE_MARK}', 'g')"


@dataclass(frozen=True)
class IngestResult:
    """What happened to one file.

    ``rows_read == accepted + quarantined`` for every ingested file (checked
    on construction); ``reasons`` counts quarantined rows by rule (the reason
    with its values replaced by ``…``, :func:`reason_rule`) and adds up to
    ``quarantined``; ``examples`` holds one whole reason per rule, naming a value.
    """

    path: str
    kind: str
    status: Status
    message: str
    sha256: str | None = None
    format: str | None = None
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    reasons: tuple[tuple[str, int], ...] = ()
    ingest_id: int | None = None
    seconds: float = 0.0
    new_covariates: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()
    examples: tuple[tuple[str, str], ...] = ()
    covariate_notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rows_read != self.accepted + self.quarantined:
            raise AssertionError(
                f"{self.path}: rows read {self.rows_read} != accepted {self.accepted} + "
                f"quarantined {self.quarantined}"
            )
        if sum(n for _, n in self.reasons) != self.quarantined:
            raise AssertionError(f"{self.path}: quarantine reasons do not add up")

    def summary(self) -> str:
        """The result as text: counts, quarantine reasons, new and ignored columns."""
        head = f"{self.status:<8} {self.path}"
        if self.status != "ingested":
            return f"{head}: {self.message}"
        lines = [
            f"{head}: {self.rows_read:,} rows read = {self.accepted:,} accepted + "
            f"{self.quarantined:,} quarantined ({self.seconds:.2f} s)"
        ]
        example = dict(self.examples)
        for reason, n in self.reasons:
            eg = example.get(reason)
            lines.append(f"           quarantined {n:,}: {reason}")
            if eg and eg != reason:
                lines.append(f"             e.g. {eg}")
        if self.new_covariates:
            lines.append("           new covariate columns: " + ", ".join(self.new_covariates))
        lines += [f"           {note}" for note in self.covariate_notes]
        if self.ignored_columns:
            shown = ", ".join(self.ignored_columns[:20])
            more = len(self.ignored_columns) - 20
            lines.append("           columns not stored: " + shown + (f" and {more:,} more" if more > 0 else ""))
        if self.message:
            lines.append(f"           note: {self.message}")
        return "\n".join(lines)


@dataclass(frozen=True)
class IngestReport:
    """The results of one ingest call, one per file, in order."""

    kind: str
    results: tuple[IngestResult, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return all(r.status != "failed" for r in self.results)

    @property
    def failed(self) -> tuple[IngestResult, ...]:
        """The results of the files that failed."""
        return tuple(r for r in self.results if r.status == "failed")

    @property
    def rows_read(self) -> int:
        """Rows read from all files."""
        return sum(r.rows_read for r in self.results)

    @property
    def accepted(self) -> int:
        """Rows accepted from all files."""
        return sum(r.accepted for r in self.results)

    @property
    def quarantined(self) -> int:
        """Rows quarantined from all files."""
        return sum(r.quarantined for r in self.results)

    def reasons(self) -> dict[str, int]:
        """Quarantined rows of all files by reason, most frequent first."""
        total: Counter[str] = Counter()
        for r in self.results:
            total.update(dict(r.reasons))
        return dict(total.most_common())

    def to_frame(self) -> pl.DataFrame:
        """One row per file: path, status, counts, ingest id and message."""
        return attrs_frame(self.results, {
            "path": ("path", pl.Utf8), "status": ("status", pl.Utf8), "rows_read": ("rows_read", pl.Int64),
            "accepted": ("accepted", pl.Int64), "quarantined": ("quarantined", pl.Int64),
            "ingest_id": ("ingest_id", pl.Int64), "message": ("message", pl.Utf8)})

    def summary(self) -> str:
        """The per-file results and a total line, as text."""
        lines = [r.summary() for r in self.results]
        counts = Counter(r.status for r in self.results)
        lines.append(
            f"{self.kind}: {len(self.results)} file(s): {counts['ingested']} ingested, "
            f"{counts['skipped']} skipped, {counts['failed']} failed; "
            f"{self.rows_read:,} rows read = {self.accepted:,} accepted + {self.quarantined:,} quarantined"
        )
        if len(self.results) > 1:
            for reason, n in self.reasons().items():
                lines.append(f"  quarantined {n:,}: {reason}")
        if self.quarantined:
            lines.append("  (inspect them with: vdrift quarantine --db FILE, or Store.quarantine())")
        return "\n".join(lines)
