"""The committed cases: where they live, their case.json and replay table."""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any
from collections.abc import Mapping

import polars as pl

from ...errors import InputError

#: Where the committed cases live (override with ``VDRIFT_REAL_DATA``).
DEFAULT_ROOT = Path(__file__).resolve().parents[3] / "data" / "samples" / "real"
CASES: tuple[str, ...] = ("flights", "nlswork")
#: What the ground truth of every case covers (the simulator's scenario names).
SCENARIOS: tuple[str, ...] = ("canary", "rollback", "experiment", "covariate_shift")
PERIODS = ("baseline", "comparison")


def cases_root(root: str | os.PathLike | None) -> Path:
    """``root`` if given, else ``VDRIFT_REAL_DATA``, else :data:`DEFAULT_ROOT`."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("VDRIFT_REAL_DATA", DEFAULT_ROOT))


def case_names(root: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The cases committed under ``root`` (those with a case.json)."""
    base = cases_root(root)
    return tuple(sorted(p.parent.name for p in base.glob("*/case.json")))


def utc(text: str) -> dt.datetime:
    """Naive UTC from ISO text with a Z suffix (the simulator's representation)."""
    return dt.datetime.fromisoformat(text.removesuffix("Z"))


@lru_cache(maxsize=8)
def _load(root: Path, name: str) -> tuple[dict, pl.DataFrame]:
    folder = root / name
    if not (folder / "case.json").is_file():
        known = ", ".join(case_names(root)) or "none"
        raise InputError(f"unknown real-data case {name!r} (looked in {root}); cases: {known}")
    case = json.loads((folder / "case.json").read_text(encoding="utf-8"))
    table = pl.read_parquet(folder / "replay.parquet")
    return case, table


def load_case(name: str, *, root: str | os.PathLike | None = None) -> tuple[dict, pl.DataFrame]:
    """The case description (case.json) and its replay table, as committed."""
    case, table = _load(cases_root(root).resolve(), name)
    return json.loads(json.dumps(case)), table


def metrics_of(case: Mapping[str, Any]) -> tuple[str, ...]:
    """The metrics the ground truth covers: positive rate, mean score, accuracy."""
    return (f"rate:prediction={case['positive_label']}", "mean:score", "accuracy")
