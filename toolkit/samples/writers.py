"""Write a simulated sample to a directory (predictions, history, registry, truth)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import operator
import os
import shutil
from pathlib import Path
from collections.abc import Iterable
from typing import IO, Any, cast

import polars as pl
import pyarrow.parquet as pq

from ..errors import InputError
from . import scenarios as S
from .history import artifacts, deployments
from .results import GroundTruth
from .scenarios import FORMATS, Format
from .simulate import Run

#: Up to this many requests the days are kept in memory between the two
#: passes; above it each day is drawn twice and memory stays at one day.
KEEP_IN_MEMORY_ROWS = 2_000_000


def _check_rows(rows: Any) -> int:
    try:
        return operator.index(rows)
    except TypeError:
        raise InputError(f"rows must be a whole number, got {rows!r}") from None

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"
_EXT = {"parquet": "parquet", "csv": "csv", "csv.gz": "csv.gz", "jsonl": "jsonl"}


def _texts(frame: pl.DataFrame) -> pl.DataFrame:
    """Datetime columns as ISO 8601 UTC text with a Z suffix (for CSV and JSON lines)."""
    cols = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
    return frame.with_columns(
        pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None).dt.to_string(_TS_FORMAT) for c in cols
    )


class _Sink:
    """Appends day frames to one predictions file (Parquet row groups, CSV or JSON lines)."""

    def __init__(self, path: Path, fmt: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.fmt = path, fmt
        self._parquet: pq.ParquetWriter | None = None
        self._raw: IO[bytes] | None = None if fmt == "parquet" else open(path, "wb")
        self._handle: IO[bytes] | None = self._raw
        if fmt == "csv.gz":  # no time stamp and no name in the gzip header: the same sample gives the same bytes
            self._handle = cast(IO[bytes], gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0))
        self._header = True

    def write(self, frame: pl.DataFrame) -> None:
        if self.fmt == "parquet":
            table = frame.to_arrow()
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema, compression="zstd")
            self._parquet.write_table(table)
        elif self.fmt in ("csv", "csv.gz"):
            _texts(frame).write_csv(self._handle, include_header=self._header)
        else:
            _texts(frame).write_ndjson(self._handle)
        self._header = False

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._handle is not None:
            self._handle.close()
        if self._raw is not None and self._raw is not self._handle:
            self._raw.close()  # GzipFile does not close a file object it was given


def _write(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    sink = _Sink(path, fmt)
    try:
        sink.write(frame)
    finally:
        sink.close()


def _clear_previous(out: Path) -> None:
    """Remove prediction files an earlier run wrote here (and nothing else)."""
    for ext in _EXT.values():
        (out / f"predictions.{ext}").unlink(missing_ok=True)
    parts = out / "predictions"
    if parts.is_dir():
        foreign = [p for p in parts.iterdir() if not (p.is_dir() and p.name.startswith("day="))]
        if foreign:
            raise InputError(
                f"{parts} holds files the sample generator did not write ({foreign[0].name}); "
                "choose an empty output directory or remove them"
            )
        shutil.rmtree(parts)


def generate(
    out_dir: str | os.PathLike,
    scenarios: str | Iterable[str] = ("all",),
    *,
    rows: int = 100_000,
    seed: int = 0,
    fmt: Format = "parquet",
    partition_by_day: bool = False,
) -> GroundTruth:
    """Simulate a sample and write it to ``out_dir``.

    Parameters
    ----------
    out_dir
        Directory to write (created if needed). Files written:
        ``predictions.<fmt>`` (or ``predictions/day=YYYY-MM-DD/part.<fmt>``),
        ``deployments.jsonl``, ``artifacts.csv`` and ``ground_truth.json``.
    scenarios, rows, seed
        See :func:`~toolkit.samples.simulate.simulate`.
    fmt
        ``parquet``, ``csv``, ``csv.gz`` (gzip-compressed CSV) or ``jsonl`` for the predictions.
    partition_by_day
        One predictions file per UTC day.

    Returns
    -------
    GroundTruth
        The ground truth, with ``files`` naming what was written (relative
        to ``out_dir``). The same arguments give byte-identical files.
        Predictions are written one day at a time, so memory stays at about
        one day of rows whatever ``rows`` is (100M rows need a few GB).
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a directory: give a directory to write the sample into")
    run = Run(scenarios, rows, seed, keep=_check_rows(rows) <= KEEP_IN_MEMORY_ROWS)
    run.routing_pass()  # validates the sample (every region in both weeks) before writing
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)

    ext = _EXT[fmt]
    sink = None if partition_by_day else _Sink(out / f"predictions.{ext}", fmt)
    try:
        for day, frame in run.days():
            if sink is None:
                date = (S.DATA_START + dt.timedelta(days=day.index)).date().isoformat()
                _write(frame, out / "predictions" / f"day={date}" / f"part.{ext}", fmt)
            else:
                sink.write(frame)
    finally:
        if sink is not None:
            sink.close()
    predictions_name = f"predictions/day=*/part.{ext}" if partition_by_day else f"predictions.{ext}"
    _write(deployments(run.scenarios), out / "deployments.jsonl", "jsonl")
    _write(artifacts(), out / "artifacts.csv", "csv")
    files = {
        "predictions": predictions_name,
        "deployments": "deployments.jsonl",
        "artifacts": "artifacts.csv",
        "ground_truth": "ground_truth.json",
    }
    truth = dataclasses.replace(run.ground_truth(), files=files)
    (out / "ground_truth.json").write_text(truth.to_json(), encoding="utf-8")
    return truth
