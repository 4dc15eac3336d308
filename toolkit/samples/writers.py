"""Write a simulated sample to a directory (predictions, history, registry, truth)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Iterable

import polars as pl

from ..errors import InputError
from .results import GroundTruth
from .scenarios import FORMATS, Format
from .simulate import simulate

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.3fZ"
_EXT = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}


def _texts(frame: pl.DataFrame) -> pl.DataFrame:
    """Datetime columns as ISO 8601 UTC text with a Z suffix (for CSV and JSON lines)."""
    cols = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
    return frame.with_columns(
        pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None).dt.to_string(_TS_FORMAT) for c in cols
    )


def _write(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.write_parquet(path, compression="zstd", statistics=True)
    elif fmt == "csv":
        _texts(frame).write_csv(path)
    else:
        _texts(frame).write_ndjson(path)


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
    out_dir: "str | os.PathLike",
    scenarios: "str | Iterable[str]" = ("all",),
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
        ``parquet``, ``csv`` or ``jsonl`` for the predictions.
    partition_by_day
        One predictions file per UTC day.

    Returns
    -------
    GroundTruth
        The ground truth, with ``files`` naming what was written (relative
        to ``out_dir``). The same arguments give byte-identical files.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a directory: give a directory to write the sample into")
    sim = simulate(scenarios, rows=rows, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)

    ext = _EXT[fmt]
    preds = sim.predictions
    if partition_by_day:
        day = preds["ts"].dt.date()
        for value in day.unique().sort().to_list():
            _write(preds.filter(day == value), out / "predictions" / f"day={value.isoformat()}" / f"part.{ext}", fmt)
        predictions_name = f"predictions/day=*/part.{ext}"
    else:
        _write(preds, out / f"predictions.{ext}", fmt)
        predictions_name = f"predictions.{ext}"
    _write(sim.deployments, out / "deployments.jsonl", "jsonl")
    _write(sim.artifacts, out / "artifacts.csv", "csv")
    files = {
        "predictions": predictions_name,
        "deployments": "deployments.jsonl",
        "artifacts": "artifacts.csv",
        "ground_truth": "ground_truth.json",
    }
    truth = dataclasses.replace(sim.ground_truth, files=files)
    (out / "ground_truth.json").write_text(truth.to_json(), encoding="utf-8")
    return truth
