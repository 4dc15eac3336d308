"""Smoke run of the benchmark runner on the tiny 100k tier, so that benchmarks/ cannot rot.

Everything goes to a temporary directory (data, stores, results); the
committed benchmarks/RESULTS.md is not touched.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--tiers", "100k", "--repeats", "1",
           "--tasks", "ingest", "pruning", "attribute", "--methods", "standardization", "--n-boot", "0",
           "--data-root", str(tmp / "data"), "--work", str(tmp / "work"),
           "--results", str(tmp / "runs.json"), "--out", str(tmp / "RESULTS.md")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp


def test_runner_writes_measures(smoke):
    runs = json.loads((smoke / "runs.json").read_text())["tiers"]["100k"]
    truth = json.loads((smoke / "data" / "100k" / "ground_truth.json").read_text())
    # every simulated row (requests + shadow rows) is ingested, none quarantined
    assert runs["ingest"]["last"]["rows"] == truth["rows_written"]
    assert runs["ingest"]["last"]["quarantined"] == 0
    assert runs["duckdb_ctas"]["last"]["rows"] == truth["rows_written"]
    assert runs["ingest"]["last"]["files"] == 14  # one file per day of the fortnight
    # peak memory measured from the child process: above the interpreter, far below the machine
    for key in ("ingest", "attribute:standardization:0"):
        assert 50 * 2**20 < runs[key]["peak_rss_bytes"] < 8 * 2**30
        assert runs[key]["min"] <= runs[key]["median"] <= runs[key]["max"]
    # the attribution run's parts add up to the observed shift, which matches the simulator's
    est = runs["attribute:standardization:0"]["last"]["estimates"]
    total = truth["attribution"]["rate:prediction=approved"]["total"]
    assert est["data_drift"] + est["version_drift"] + est["residual"] == pytest.approx(est["total"], abs=1e-12)
    assert est["total"] == pytest.approx(total, abs=1e-9)


def test_pruning_profile_counts_rows(smoke):
    p = json.loads((smoke / "runs.json").read_text())["tiers"]["100k"]["pruning"]["last"]
    truth = json.loads((smoke / "data" / "100k" / "ground_truth.json").read_text())
    assert p["table_rows"] == truth["rows_written"]
    assert 0 < p["window_rows"] < p["table_rows"]
    for job in ("audit", "attribution"):
        main = p[job]["main"]
        assert main is not None and main["scans"]
        # the window filter reaches the table scan (what lets DuckDB skip row groups)
        assert all("2026-11-0" in s["filters"] for s in main["scans"])
        assert all(s["rows_out"] <= s["rows_scanned"] <= p["table_rows"] for s in main["scans"])


def test_results_markdown(smoke):
    text = (smoke / "RESULTS.md").read_text()
    for heading in ("## Machine", "## Targets", "## Timings", "## Window pruning (100k)"):
        assert heading in text
    assert "ingest <= 1.5x DuckDB CTAS (100k)" in text
