"""What an attached source holds and how much of it is valid: :class:`AttachResult`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import polars as pl

from .dataset import FILE_COLUMN


@dataclass(frozen=True)
class AttachResult:
    """What an attached predictions source holds and how much of it is valid.

    Returned by :meth:`Store.attach`, :meth:`Store.validate` and
    :meth:`Store.attached`. ``rows == valid + excluded`` always; analyses see
    the ``valid`` rows only.

    Attributes
    ----------
    pattern
        The path, directory or glob that was attached.
    partitioning
        ``"hive"`` (``key=value`` directories are columns) or ``"none"``.
    files
        The validated files, in the order rows are numbered and duplicates are kept.
    rows, valid, excluded
        Rows in the files, rows analyses read, rows they do not.
    reasons
        ``(reason, rows)`` of the excluded rows, most frequent first.
    examples
        Up to ``examples`` excluded rows per reason: reason, file, row, raw (the row as JSON).
    covariates
        The dataset's extra columns kept as covariates.
    ignored_columns
        Columns neither in the contract nor kept (hive partition keys, reserved names).
    unvalidated_files
        Files that match the pattern now but were not there when the dataset
        was validated: not read until ``vdrift validate`` takes them in.
    missing_files
        Validated files that are gone or changed since (size or time), which
        ``vdrift validate`` drops or checks again.
    """

    pattern: str
    partitioning: str
    mapping: str
    attach_id: int
    attached_at: str
    validated_at: str
    files: tuple[str, ...]
    rows: int
    valid: int
    excluded: int
    reasons: tuple[tuple[str, int], ...]
    examples: pl.DataFrame = field(compare=False, repr=False)
    covariates: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()
    unvalidated_files: tuple[str, ...] = ()
    missing_files: tuple[str, ...] = ()
    seconds: float = 0.0

    def summary(self, *, examples: int = 3) -> str:
        """Readable text: source, counts, exclusions by reason with examples, stale files."""
        lines = [
            f"predictions attached from {self.pattern} (partitioning {self.partitioning}; "
            f"{len(self.files):,} file(s), validated {self.validated_at} UTC)",
            f"  {self.rows:,} rows in the files: {self.valid:,} valid, {self.excluded:,} excluded from analyses",
        ]
        if self.covariates:
            lines.append("  covariates: " + ", ".join(self.covariates))
        if self.ignored_columns:
            lines.append("  not read: " + ", ".join(self.ignored_columns))
        if self.reasons:
            lines.append("  excluded rows by reason:")
            for reason, n in self.reasons:
                lines.append(f"    {n:>10,}  {reason}")
                shown = self.examples.filter(pl.col("reason") == reason).head(examples)
                for ex in shown.iter_rows(named=True):
                    lines.append(f"        {ex['file']} row {ex['row']}: {_named_values(reason, ex['raw'])}")
        if self.unvalidated_files:
            lines.append(f"  {len(self.unvalidated_files):,} new file(s) match but are not read until "
                         f"`vdrift validate` takes them in, e.g. {self.unvalidated_files[0]}")
        if self.missing_files:
            lines.append(f"  {len(self.missing_files):,} validated file(s) are gone or changed since, e.g. "
                         f"{self.missing_files[0]}: run `vdrift validate`")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready fields (examples as a list of records)."""
        return {
            "pattern": self.pattern, "partitioning": self.partitioning, "mapping": self.mapping,
            "files": list(self.files), "rows": self.rows, "valid": self.valid, "excluded": self.excluded,
            "reasons": [list(r) for r in self.reasons], "examples": self.examples.to_dicts(),
            "covariates": list(self.covariates), "ignored_columns": list(self.ignored_columns),
            "unvalidated_files": list(self.unvalidated_files), "missing_files": list(self.missing_files),
            "validated_at": self.validated_at,
        }


def _named_values(reason: str, raw: str | None) -> str:
    """The example's values of the columns its reason names (``score=NaN``), else the whole raw row."""
    try:
        row = json.loads(raw) if raw else {}
    except ValueError:
        return str(raw)
    named = [f"{k}={json.dumps(v)}" for k, v in row.items()
             if k not in (FILE_COLUMN, "file_row_number") and re.search(rf"(^|[^\w]){re.escape(k)}([^\w]|$)", reason)]
    return "; ".join(named) if named else json.dumps({k: v for k, v in row.items()
                                                      if k not in (FILE_COLUMN, "file_row_number")})
