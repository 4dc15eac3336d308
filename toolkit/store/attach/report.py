"""The report of an attached source: counts, reasons, examples, and new, gone or changed files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ...errors import InputError, StoreError
from ...sqlutil import one_row
from .dataset import expand_dataset
from .result import AttachResult
from .state import CHECKED_VIEW, FILES_TABLE, recorded_mapping, require_record, stale_files

if TYPE_CHECKING:  # pragma: no cover
    from ..store import Store


def report(store: Store, *, examples: int = 5, seconds: float = 0.0) -> AttachResult:
    """Counts, reasons and examples of the attached source, and files that are new, gone or changed."""
    con = store.con
    record = require_record(store)
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 0:
        raise InputError(f"examples must be a non-negative integer, got {examples!r}")
    files_rows = con.execute(f"SELECT path, bytes, mtime, rows FROM {FILES_TABLE} ORDER BY path").fetchall()
    stale = stale_files(con)
    if stale:  # the views would fail or read unvalidated content: report without scanning
        rows = valid = excluded = 0
        reasons: tuple[tuple[str, int], ...] = ()
        ex = pl.DataFrame(schema={"reason": pl.Utf8, "file": pl.Utf8, "row": pl.Int64, "raw": pl.Utf8})
    else:
        rows, valid = one_row(
            con, f"SELECT count(*), count(*) FILTER (WHERE _reason IS NULL) FROM {CHECKED_VIEW}")
        excluded = rows - valid
        reasons = tuple((r, int(n)) for r, n in con.execute(
            f"SELECT _reason, count(*) FROM {CHECKED_VIEW} WHERE _reason IS NOT NULL "
            "GROUP BY 1 ORDER BY 2 DESC, 1").fetchall())
        ex = con.execute(
            f"""SELECT _reason AS reason, _file AS file, _row AS "row", _raw AS raw FROM {CHECKED_VIEW}
            WHERE _reason IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY _reason ORDER BY _file, _row) <= ?
            ORDER BY reason, file, "row" """, [examples]).pl()
        in_files = sum(int(r[3]) for r in files_rows)
        served = one_row(con, "SELECT count(*) FROM predictions")[0]
        if rows != in_files or served != valid or sum(n for _, n in reasons) != excluded:
            raise StoreError(
                f"attached predictions: the counts do not add up ({in_files:,} rows in the files' footers, "
                f"{rows:,} read, {valid:,} valid, {served:,} served to analyses, {excluded:,} excluded); "
                "run `vdrift validate` (please report this if it persists)"
            )
    validated = {r[0] for r in files_rows}
    try:
        now = set(expand_dataset(record["pattern_abs"]))
    except InputError:
        now = set()
    return AttachResult(
        pattern=record["pattern"], partitioning=record["partitioning"],
        mapping=recorded_mapping(record).describe(), attach_id=int(record["attach_id"]),
        attached_at=record["attached_at"], validated_at=record["validated_at"],
        files=tuple(r[0] for r in files_rows), rows=int(rows), valid=int(valid), excluded=int(excluded),
        reasons=reasons, examples=ex, covariates=tuple(record.get("covariates", ())),
        ignored_columns=tuple(record.get("ignored", ())), unvalidated_files=tuple(sorted(now - validated)),
        missing_files=tuple(stale), seconds=seconds,
    )
