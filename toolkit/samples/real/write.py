"""A routed case as files like the simulator's samples, or as a loaded store."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from collections.abc import Mapping

import polars as pl

from ...errors import InputError
from ..load import load_simulation
from ..results import GroundTruth
from ..simulate import Simulation
from ..writers import _write
from .replay import replay_case


def as_simulation(frames: Mapping[str, pl.DataFrame], truth: GroundTruth) -> Simulation:
    """The case as a :class:`~toolkit.samples.simulate.Simulation` (for code that takes one)."""
    return Simulation(frames["predictions"], frames["deployments"], frames["artifacts"], truth)


def write_case(
    out_dir: str | os.PathLike,
    name: str,
    *,
    seed: int = 0,
    fraction: float = 1.0,
    root: str | os.PathLike | None = None,
) -> GroundTruth:
    """Write a routed case like the simulator's samples.

    Files: ``predictions.parquet``, ``deployments.jsonl``, ``artifacts.csv``
    and ``ground_truth.json`` (the returned truth, with ``files`` set).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a directory: give a directory to write the case into")
    frames, truth = replay_case(name, seed=seed, fraction=fraction, root=root)
    out.mkdir(parents=True, exist_ok=True)
    _write(frames["predictions"], out / "predictions.parquet", "parquet")
    _write(frames["deployments"], out / "deployments.jsonl", "jsonl")
    _write(frames["artifacts"], out / "artifacts.csv", "csv")
    files = {"predictions": "predictions.parquet", "deployments": "deployments.jsonl",
             "artifacts": "artifacts.csv", "ground_truth": "ground_truth.json"}
    truth = dataclasses.replace(truth, files=files)
    (out / "ground_truth.json").write_text(truth.to_json(), encoding="utf-8")
    return truth


def load_case_store(
    name: str,
    path: str | os.PathLike = ":memory:",
    *,
    seed: int = 0,
    fraction: float = 1.0,
    root: str | os.PathLike | None = None,
):
    """A store holding the routed case's predictions, registry and deployments, and its truth.

    Returns
    -------
    store, truth
        The store is open (a context manager); the caller closes it.
    """
    frames, truth = replay_case(name, seed=seed, fraction=fraction, root=root)
    return load_simulation(as_simulation(frames, truth), path), truth  # loads the deployment history too
