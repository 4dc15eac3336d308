"""The extract folder: the registry read written as ordinary artifacts and deployments contract files."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from .records import AliasChange, RegistryVersion, iso


@contextlib.contextmanager
def extract_folder(extract_dir: str | os.PathLike | None) -> Iterator[Path]:
    """``extract_dir`` (created), else a temporary folder removed afterwards."""
    if extract_dir is not None:
        path = Path(extract_dir)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="vdrift-mlflow-extract-") as tmp:
        yield Path(tmp)


def safe_name(name: str) -> str:
    """A file-name part for a model name: readable, and distinct for distinct names."""
    short = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)[:60]}-{short}"


def write_artifacts(folder: Path, versions: list[RegistryVersion]) -> list[Path]:
    """One CSV per version; its content depends only on the version, so an unchanged one is skipped."""
    files = []
    for v in versions:
        path = folder / "artifacts" / safe_name(v.model) / f"version-{v.version}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        # the column "mlflow" is not stored, but a quarantined row keeps it: which model, version and source
        origin = {"model": v.model, "version": v.version, "source": v.source, "run_id": v.run_id,
                  "problem": v.problem}
        pl.DataFrame(
            [{"version": v.label, "artifact_hash": v.artifact_hash, "feature_version": v.feature_version,
              "created_at": iso(v.created_at), "mlflow": json.dumps(origin)}],
            schema={c: pl.Utf8 for c in ("version", "artifact_hash", "feature_version", "created_at", "mlflow")},
        ).write_csv(path)
        files.append(path)
    return files


def write_deployments(folder: Path, changes: list[AliasChange], component: str, scope: str) -> list[Path]:
    """One JSON-lines file per alias change (one deployments contract row each)."""
    files = []
    for c in changes:
        stamp = c.ts.strftime("%Y%m%dT%H%M%S%f")
        what = "removed" if c.version is None else c.version
        path = folder / "deployments" / safe_name(c.model) / c.alias / f"{stamp}-{what}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(c.row(component, scope)) + "\n", encoding="utf-8")
        files.append(path)
    return files
