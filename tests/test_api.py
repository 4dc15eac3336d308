"""The top-level Python API mirrors the CLI and imports analyses lazily."""

from __future__ import annotations

import subprocess
import sys

import toolkit
from toolkit.audit import AuditResult


def test_import_is_light():
    code = "import sys, toolkit; print('statsmodels' in sys.modules, 'altair' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_top_level_names_resolve_to_the_capabilities():
    from toolkit.attribution import attribute
    from toolkit.report import render

    assert toolkit.attribute is attribute
    assert toolkit.render_report is render
    assert callable(toolkit.audit)
    assert toolkit.samples.generate is not None and toolkit.checks is not None


def test_toolkit_audit_is_callable_like_the_cli(tmp_path):
    # a store with one hand-made row: the audit runs and returns its result type
    with toolkit.Store(tmp_path / "s.duckdb") as store:
        p = tmp_path / "p.csv"
        p.write_text("request_id,ts,model_version,prediction\na,2026-11-02 10:00:00,v1,approved\n")
        store.ingest("predictions", p)
    result = toolkit.audit(str(tmp_path / "s.duckdb"))
    assert isinstance(result, AuditResult)
    assert result.census["n"].sum() == 1
