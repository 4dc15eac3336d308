"""Working with the quarantine: select rejected rows, export them for fixing, release them, purge them.

Quarantined rows keep their source row whole as JSON (``raw``), so they can go
back out in their original columns (:func:`export`), and go through the same
ingest again after a mapping fix (:func:`release`): the released rows are
taken out of quarantine in the transaction that loads them, and whatever still
fails is quarantined again with its new reason. :func:`purge` drops what a
wrong first try left. Releases and purges leave a record in ``ingest_log``
(kind ``release`` / ``purge``; ``rows_read`` = the rows taken out of quarantine).

CSV lines the reader could not split into columns (reason ``malformed CSV
line: ...``) have no columns to go back into: export writes their text to a
``.malformed.txt`` file next to the export, and release leaves them in quarantine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from .. import __version__
from ..errors import InputError
from .ingest.results import IngestReport, IngestResult

if TYPE_CHECKING:  # pragma: no cover
    from .mapping import Mapping
    from .store import Store

MALFORMED = "malformed CSV line"
_EXPORT_FORMATS = (".csv", ".jsonl", ".ndjson", ".parquet")


@dataclass(frozen=True)
class Selection:
    """Which quarantined rows an operation takes: one ingest's, and/or those whose reason contains a text."""

    ingest_id: int | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.ingest_id is not None and (isinstance(self.ingest_id, bool) or not isinstance(self.ingest_id, int)):
            raise InputError(f"ingest id must be an integer (see vdrift status), got {self.ingest_id!r}")
        if self.reason is not None and not self.reason.strip():
            raise InputError("--reason must be a non-empty text that the reasons contain")

    def where(self) -> tuple[str, list]:
        """SQL condition over the quarantine table and its parameters."""
        parts: list[str] = ["true"]
        params: list[object] = []
        if self.ingest_id is not None:
            parts.append("ingest_id = ?")
            params.append(self.ingest_id)
        if self.reason is not None:
            parts.append("contains(lower(reason), lower(?))")
            params.append(self.reason.strip())
        return " AND ".join(parts), params

    def describe(self) -> str:
        """The selection in words, for messages and ingest_log."""
        parts = [f"ingest {self.ingest_id}" if self.ingest_id is not None else "every ingest"]
        if self.reason is not None:
            parts.append(f"reason containing {self.reason.strip()!r}")
        return ", ".join(parts)


def select(store: Store, selection: Selection) -> pl.DataFrame:
    """The selected quarantined rows (ingest_id, kind, source_file, row_number, reason, raw)."""
    where, params = selection.where()
    return store.con.execute(
        f"SELECT * FROM quarantine WHERE {where} ORDER BY ingest_id, row_number", params).pl()


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote."""

    path: str
    rows: int
    columns: tuple[str, ...]
    malformed_path: str | None
    malformed: int

    def summary(self) -> str:
        """The export as text."""
        lines = [f"exported {self.rows:,} quarantined row(s) to {self.path} in their original columns "
                 f"({', '.join(self.columns)})"]
        if self.malformed:
            lines.append(f"{self.malformed:,} malformed CSV line(s) written as text to {self.malformed_path}")
        return "\n".join(lines)


def export(store: Store, path: str | os.PathLike, selection: Selection = Selection()) -> ExportResult:
    """Write the selected rows back out in their original columns (CSV, JSON lines or Parquet by the ending)."""
    out = Path(path)
    ending = next((e for e in _EXPORT_FORMATS if out.name.lower().endswith(e)), None)
    if ending is None:
        raise InputError(f"{out}: export to a file ending in {', '.join(_EXPORT_FORMATS)}")
    rows = _one_kind(_nonempty(select(store, selection), selection), selection, "export")
    columnar, malformed = _split(rows)
    frame = _frame(columnar["raw"].to_list()) if columnar.height else pl.DataFrame()
    if columnar.height:
        if ending == ".csv":
            nested = [c for c, t in frame.schema.items() if isinstance(t, (pl.List, pl.Struct, pl.Array))]
            frame.with_columns(pl.col(nested).map_elements(json.dumps, return_dtype=pl.Utf8)).write_csv(out) \
                if nested else frame.write_csv(out)
        elif ending == ".parquet":
            frame.write_parquet(out)
        else:
            frame.write_ndjson(out)
    bad_path = None
    if malformed.height:
        bad_path = str(out) + ".malformed.txt"
        texts = [json.loads(r).get("text") or "" for r in malformed["raw"].to_list()]
        Path(bad_path).write_text("\n".join(texts) + "\n")
    return ExportResult(path=str(out), rows=columnar.height, columns=tuple(frame.columns),
                        malformed_path=bad_path, malformed=malformed.height)


def release(store: Store, selection: Selection = Selection(), *,
            mapping: str | os.PathLike | dict | Mapping | None = None) -> ReleaseResult:
    """Validate the selected rows again (after a mapping fix) and load what now passes.

    Per source ingest, the rows go through :func:`toolkit.store.ingest.ingest`
    as one JSON lines file of their original columns; in its transaction they
    leave quarantine, and those that fail again are quarantined anew with their
    new reason (under the release's ingest id). A release of the same rows with
    the same content as an earlier one replaces it, as ``--force`` does.
    """
    from .ingest import ingest

    rows = _one_kind(_nonempty(select(store, selection), selection), selection, "release")
    columnar, malformed = _split(rows)
    if not columnar.height:
        raise InputError(f"the selection ({selection.describe()}) holds only malformed CSV lines: they have no "
                         "columns to validate again; export them (--export FILE), fix the lines, ingest the file")
    results: list[IngestResult] = []
    with tempfile.TemporaryDirectory(prefix="vdrift-release-") as tmp:
        for (source_id, kind), part in columnar.group_by(["ingest_id", "kind"], maintain_order=True):
            file = Path(tmp) / f"quarantine-of-ingest-{source_id}.jsonl"
            file.write_text("\n".join(part["raw"].to_list()) + "\n")
            taken = part.select("ingest_id", "row_number", "reason")

            def take_out(con, ingest_id: int, taken: pl.DataFrame = taken, source_id: int = source_id) -> None:
                con.register("_vd_released", taken.to_arrow())
                try:
                    con.execute("""DELETE FROM quarantine AS q USING _vd_released AS r
                                   WHERE q.ingest_id = r.ingest_id AND q.row_number IS NOT DISTINCT FROM r.row_number
                                     AND q.reason = r.reason""")
                finally:
                    con.unregister("_vd_released")
                name = f"release of quarantined rows of ingest {source_id}"  # not the temporary file's name
                con.execute("UPDATE ingest_log SET path = ? WHERE ingest_id = ?", [name, ingest_id])
                con.execute("UPDATE quarantine SET source_file = ? WHERE ingest_id = ?", [name, ingest_id])
                _log(con, "release", f"quarantine of ingest {source_id}, released as ingest {ingest_id}",
                     selection.describe(), taken.height)

            store._in_transaction = take_out
            try:
                report = ingest(store, str(kind), file, mapping=mapping, force=True)
            finally:
                store._in_transaction = None
            results.extend(replace(r, path=f"release of quarantined rows of ingest {source_id}")
                           for r in report.results)
    return ReleaseResult(kind=str(columnar["kind"][0]), results=tuple(results), released=columnar.height,
                         malformed_left=malformed.height)


@dataclass(frozen=True, kw_only=True)
class ReleaseResult(IngestReport):
    """What :func:`release` did: the ingest of the released rows, and what it left in quarantine.

    An :class:`IngestReport` of that ingest (``accepted``: released rows that
    passed this time and are now stored; ``quarantined``: those that failed
    again, quarantined anew with their new reason), with the rows released
    and the malformed CSV lines left behind.
    """

    released: int
    malformed_left: int

    @property
    def report(self) -> IngestReport:
        """The ingest of the released rows alone."""
        return IngestReport(kind=self.kind, results=self.results)

    def summary(self) -> str:
        """The release as text."""
        lines = [super().summary(),
                 f"released {self.released:,} row(s) from quarantine: {self.accepted:,} now stored, "
                 f"{self.quarantined:,} quarantined again"]
        if self.malformed_left:
            lines.append(f"{self.malformed_left:,} malformed CSV line(s) left in quarantine: export them to fix them")
        return "\n".join(lines)


@dataclass(frozen=True)
class PurgeResult:
    """What :func:`purge` dropped."""

    ingest_id: int
    rows: int
    selection: str

    def summary(self) -> str:
        """The purge as text."""
        return (f"purged {self.rows:,} quarantined row(s) of {self.selection}; recorded in ingest_log "
                "(kind purge)")


def purge(store: Store, selection: Selection) -> PurgeResult:
    """Drop the selected quarantined rows of one ingest, and record it in ``ingest_log``."""
    if selection.ingest_id is None:
        raise InputError("purge drops the quarantine of one ingest: give its id (--ingest ID; vdrift status lists "
                         "them)")
    rows = _nonempty(select(store, selection), selection)
    where, params = selection.where()
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM quarantine WHERE {where}", params)
        _log(con, "purge", f"quarantine of ingest {selection.ingest_id}", selection.describe(), rows.height)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return PurgeResult(ingest_id=selection.ingest_id, rows=rows.height, selection=selection.describe())


def _nonempty(rows: pl.DataFrame, selection: Selection) -> pl.DataFrame:
    if rows.height == 0:
        raise InputError(f"no quarantined row matches {selection.describe()} (vdrift quarantine lists them)")
    return rows


def _one_kind(rows: pl.DataFrame, selection: Selection, what: str) -> pl.DataFrame:
    kinds = sorted(rows["kind"].unique().to_list())
    if len(kinds) > 1:
        raise InputError(f"the selection ({selection.describe()}) holds rows of {', '.join(kinds)}: {what} "
                         "one kind at a time (choose them with --ingest-id or --reason)")
    return rows


def _split(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    bad = pl.col("reason").str.starts_with(MALFORMED)
    return rows.filter(~bad), rows.filter(bad)


def _frame(raws: list[str]) -> pl.DataFrame:
    """Rows of raw JSON objects as a frame of their original columns, in their original order."""
    objects = [json.loads(r) for r in raws]
    columns: dict[str, None] = {}
    for obj in objects:
        columns.update(dict.fromkeys(obj))
    data = {c: [obj.get(c) for obj in objects] for c in columns}
    return pl.DataFrame(data, strict=False)


def _log(con, kind: str, path: str, what: str, rows: int) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ingest_id = con.execute("SELECT nextval('ingest_id_seq')").fetchone()[0]
    con.execute("INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                [ingest_id, kind, path, "", "-", what, rows, 0, 0, now, now, __version__])
