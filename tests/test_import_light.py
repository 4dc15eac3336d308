"""``import toolkit`` loads none of the heavy libraries: the analyses and the store are imported on first use."""

from __future__ import annotations

import json
import subprocess
import sys

#: Libraries that ``import toolkit`` must not load (each costs from tens of milliseconds to seconds).
HEAVY = ("duckdb", "polars", "statsmodels", "scipy", "altair", "papermill", "pyspark")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}; import sys, json; print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_toolkit_loads_no_heavy_module():
    assert _loaded_after("import toolkit") == []


def test_errors_and_names_need_no_heavy_module():
    code = "import toolkit; toolkit.VdriftError, toolkit.InputError, toolkit.__version__, dir(toolkit)"
    assert _loaded_after(code) == []


def test_public_names_still_resolve():
    code = ("import toolkit; from toolkit import Store; "
            "assert Store.__name__ == 'Store' and callable(toolkit.attach) and callable(toolkit.attribute) "
            "and callable(toolkit.explain) and callable(toolkit.render_report); "
            "assert all(hasattr(toolkit, n) for n in toolkit.__all__)")
    assert "duckdb" in _loaded_after(code)


def test_sources_import_first():
    """toolkit.sources and the store import each other; either may be the first import (the store no longer is)."""
    for first in ("toolkit.sources", "toolkit.store.ingest.load", "toolkit.sources.mlflow"):
        subprocess.run([sys.executable, "-c", f"import {first}"], check=True, capture_output=True)
