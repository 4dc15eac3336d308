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


@pytest.fixture(autouse=True)
def _quarantine_reasons_name_their_value(request):
    """After every test: each quarantine reason in the stores it left names the value it rejected.

    A value is shown as a JSON string (toolkit.store.ingest.plan.shown); a required value that
    is absent says so ("(absent)", "is missing", "has no value"). Stores that cannot be opened (deliberately damaged, or still held
    by a killed writer) are not inspected.
    """
    root = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if root is None:
        return
    import re

    import duckdb

    from toolkit.store.ingest.results import VALUE_PATTERN

    for path in root.rglob("*.duckdb"):
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:
            continue
        try:
            try:
                reasons = [r[0] for r in con.execute("SELECT DISTINCT reason FROM quarantine").fetchall()]
            except duckdb.Error:
                continue
            absent = re.compile(r"\(absent\)|\bis missing\b|\bhas no value\b")  # no value to name
            silent = [r for r in reasons if not re.search(VALUE_PATTERN, r) and not absent.search(r)]
            assert not silent, f"{path.name}: quarantine reasons that do not name the rejected value: {silent[:5]}"
        finally:
            con.close()
