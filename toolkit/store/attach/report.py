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
    from ...engine.run import Runner
    from ..store import Store


def report(store: Store, *, examples: int = 5, seconds: float = 0.0, run: Runner | None = None) -> AttachResult:
    """Counts, reasons and examples of the attached source, and files that are new, gone or changed.

    With a Spark runner that reads the files (``run.checked``,
    ``toolkit.engine.lake``) Spark counts the rows and picks the examples.
    """
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
        # the scans of every row: on the runner's engine when it reads the files (its view of the checked rows)
        checked = getattr(run, "checked", None)
        query = run.frame if run is not None and checked is not None else (lambda q, p: con.execute(q, p).pl())
        relation = checked or CHECKED_VIEW
        rows, valid = query(f"SELECT count(*) AS n, count(*) FILTER (WHERE _reason IS NULL) AS v FROM {relation}",
                            []).row(0)
        excluded = rows - valid
        reasons = tuple((r, int(n)) for r, n in query(
            f"SELECT _reason, count(*) AS n FROM {relation} WHERE _reason IS NOT NULL GROUP BY _reason", [])
            .sort(["n", "_reason"], descending=[True, False]).iter_rows())
        ex = query(
            f"""SELECT reason, file, "row", raw FROM (
                SELECT _reason AS reason, _file AS file, _row AS "row", _raw AS raw,
                       row_number() OVER (PARTITION BY _reason ORDER BY _file, _row) AS _k
                FROM {relation} WHERE _reason IS NOT NULL) AS e
            WHERE _k <= ?""", [examples]).sort(["reason", "file", "row"])
        ex = ex.with_columns(pl.col("row").cast(pl.Int64))
        in_files = sum(int(r[3]) for r in files_rows)
        # what analyses read: the store's view (on Spark, the valid rows by construction)
        served = one_row(con, "SELECT count(*) FROM predictions")[0] if checked is None else valid
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
