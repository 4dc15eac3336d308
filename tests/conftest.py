"""Shared fixtures: stores in temporary folders and small contract-shaped files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from toolkit import Store

# CI replays a fixed set of generated examples so a submission's verdict does not depend on a
# random draw; on developer machines hypothesis keeps exploring new examples on every run.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "t.duckdb") as s:
        yield s


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path
