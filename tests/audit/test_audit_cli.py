"""``vdrift audit``: terminal table, --json, window options and --fail-on exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit import Store
from toolkit.cli import main

from .test_audit_support import deploy, insert, predictions, t, traffic, digest


def _store(path: Path, *, stuck: bool) -> Path:
    """v1 everywhere; a v2 rollout in eu due at t(30), completed at t(25) unless ``stuck``."""
    with Store(path) as store:
        insert(store, "artifacts", [
            {"version": v, "artifact_hash": digest(v), "feature_version": "fp-1", "created_at": t(-100)}
            for v in ("v1", "v2")
        ])
        events = [
            {"ts": t(-10), "event": "deploy", "version": "v1"},
            {"ts": t(10), "event": "rollout_start", "scope": "eu", "version": "v2", "traffic_pct": 20.0,
             "expected_end": t(30), "actor": "ann"},
        ]
        if not stuck:
            events.append({"ts": t(25), "event": "rollout_complete", "scope": "eu", "version": "v2"})
        deploy(store, events)
        split_end = 60 if stuck else 25
        predictions(
            store,
            traffic(0, split_end, version="v1"),
            traffic(10, split_end, every_min=40, version="v2", instance="eu-5"),
            traffic(split_end, 60, version="v2") if not stuck else [],
        )
    return path


def test_fail_on_exit_codes(tmp_path: Path, capsys):
    db = str(_store(tmp_path / "stuck.duckdb", stuck=True))
    # the stuck rollout and the failed designed-diversity test are warnings
    assert main(["audit", "--db", db, "--fail-on", "warning"]) == 5
    assert main(["audit", "--db", db, "--fail-on", "critical"]) == 0
    assert main(["audit", "--db", db, "--fail-on", "info"]) == 5
    assert main(["audit", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "stuck_rollout" in out and "online/eu/eu-5" in out
    # before the deadline there is nothing to fail on
    assert main(["audit", "--db", db, "--to", "2026-11-03T05:00", "--fail-on", "warning"]) == 0


def test_clean_store_passes_fail_on_warning(tmp_path: Path, capsys):
    db = str(_store(tmp_path / "ok.duckdb", stuck=False))
    assert main(["audit", "--db", db, "--fail-on", "warning"]) == 0
    out = capsys.readouterr().out
    assert "designed_multi_version" in out and "owner ann" in out


def test_json_output(tmp_path: Path, capsys):
    db = str(_store(tmp_path / "stuck.duckdb", stuck=True))
    assert main(["audit", "--db", db, "--json", "--bucket", "day", "--from", "2026-11-02", "--to", "2026-11-05"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bucket"] == "day"
    assert data["window"] == {"start": "2026-11-02T00:00:00", "end": "2026-11-05T00:00:00"}
    kinds = {f["kind"] for f in data["findings"]}
    assert kinds == {"stuck_rollout", "designed_multi_version"}
    stuck = next(f for f in data["findings"] if f["kind"] == "stuck_rollout")
    assert stuck["evidence"]["requests_by_version_after_deadline"] == {"v1": 180, "v2": 45}
    assert len(data["consistency"]) == 3


def test_errors_have_exit_codes(tmp_path: Path, capsys):
    assert main(["audit", "--db", str(tmp_path / "missing.duckdb")]) == 3
    db = str(_store(tmp_path / "s.duckdb", stuck=True))
    assert main(["audit", "--db", db, "--from", "2027-01-01", "--to", "2027-01-02"]) == 4
    assert main(["audit", "--db", db, "--from", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert "no predictions in 2027-01-01" in err and "ISO 8601" in err
    with pytest.raises(SystemExit):
        main(["audit", "--db", db, "--fail-on", "fatal"])
