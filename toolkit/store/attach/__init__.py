"""Attached predictions: an external Parquet dataset read in place, validated by a view.

``vdrift attach predictions PATH`` registers a Parquet dataset (hive-partitioned
directories such as ``date=2026-11-09/part-0.parquet``, a directory or a glob)
as the predictions of a store without copying it (docs/attach.md).

How the store reads it:

``_vd_attached_rows(files)``
    A table macro: every row of the files typed by ingest's column plan
    (:func:`toolkit.store.ingest.plan._plan_columns`, the one definition of
    each row rule), with ``_reason`` (NULL when the row is valid), ``_file``,
    ``_row`` (1-based row number in its file) and ``_raw`` (the row as JSON).
``attached_duplicates``
    The rows whose key (``_DUPLICATE_KEYS`` of ingest) repeats an earlier row,
    found when the dataset is validated (attach, ``vdrift validate``).
``attached_checked``
    Every row of the validated files with its reason: what ``vdrift validate``
    and ``vdrift status`` report.
``predictions``
    A view in place of the table: the valid rows only, in the table's column
    order. It is a UNION ALL with one branch per day of files, each carrying
    the exact time range of its files' rows, so a query of a time window
    binds only the footers of the other files and scans only its own
    (DuckDB drops a branch whose range cannot meet the window).

The file list is a snapshot taken when the dataset is validated: files that
appear later are not read until ``vdrift validate`` takes them in, so no row
reaches an analysis without having been validated. Views cannot hold bound
parameters, so the values the plan binds are written into the view as SQL
literals by :func:`inline_params` (quoted, never concatenated raw).
"""

from .dataset import PARTITIONINGS, Partitioning, expand_dataset
from .literals import inline_params, sql_literal
from .registry import attach, attach_source, checked_report, detach, validate
from .report import report
from .result import AttachResult
from .state import (
    CHECKED_VIEW,
    DUPLICATES_TABLE,
    FILES_TABLE,
    MACRO,
    META_KEY,
    guard,
    info,
    stale_files,
    stale_message,
    unguard,
)

__all__ = [
    "CHECKED_VIEW", "DUPLICATES_TABLE", "FILES_TABLE", "MACRO", "META_KEY", "PARTITIONINGS", "AttachResult",
    "checked_report",
    "Partitioning", "attach", "attach_source", "detach", "expand_dataset", "guard", "info", "inline_params",
    "report", "sql_literal", "stale_files", "stale_message", "unguard", "validate",
]
