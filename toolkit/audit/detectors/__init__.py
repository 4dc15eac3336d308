"""Detectors of version-drift failure modes; each returns finding rows.

Every detector reads the audit's temporary tables (the aggregated cells and
the intended-state segments) or runs one set-based query over
``predictions_resolved``; none loops over requests in Python.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Callable

from .artifacts import detect_artifact_mismatch, detect_preprocessing_mismatch
from .batch import detect_batch_online
from .common import Context
from .divergence import detect_prediction_divergence
from .offintent import detect_off_intent
from .splits import detect_splits

DETECTORS: tuple[Callable[[Context], list[dict[str, Any]]], ...] = (
    detect_splits,
    detect_off_intent,
    detect_artifact_mismatch,
    detect_preprocessing_mismatch,
    detect_batch_online,
    detect_prediction_divergence,
)


def run_detectors(ctx: Context) -> list[dict[str, Any]]:
    """All findings of all detectors, unsorted and without ids."""
    rows: list[dict[str, Any]] = []
    for detector in DETECTORS:
        rows.extend(detector(ctx))
    return rows


__all__ = ["Context", "DETECTORS", "run_detectors"]
