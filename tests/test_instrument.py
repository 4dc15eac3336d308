"""Instrumentation helpers: artifact digests, verification, per-prediction records."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from toolkit import Store
from toolkit.instrument import ArtifactMismatch, VersionStamp, artifact_digest, verify_artifact


def test_file_digest_is_sha256_of_the_bytes(tmp_path):
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights")
    assert artifact_digest(f) == hashlib.sha256(b"weights").hexdigest()


def test_directory_digest_is_stable_and_content_sensitive(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root, order in ((a, ["w.bin", "cfg/x.json"]), (b, ["cfg/x.json", "w.bin"])):  # different creation order
        for name in order:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(name)
    assert artifact_digest(a) == artifact_digest(b)
    expected = hashlib.sha256(
        b"cfg/x.json\0" + hashlib.sha256(b"cfg/x.json").hexdigest().encode() + b"\n"
        + b"w.bin\0" + hashlib.sha256(b"w.bin").hexdigest().encode() + b"\n"
    ).hexdigest()
    assert artifact_digest(a) == expected  # the documented construction, by hand
    (b / "w.bin").write_text("changed")
    assert artifact_digest(a) != artifact_digest(b)


def test_verify_artifact_names_both_digests(tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"v1")
    good = hashlib.sha256(b"v1").hexdigest()
    assert verify_artifact(f, "sha256:" + good) == good
    with pytest.raises(ArtifactMismatch, match="different model than the one it reports"):
        verify_artifact(f, hashlib.sha256(b"v2").hexdigest())


def test_records_round_trip_through_ingest(tmp_path):
    f = tmp_path / "m.bin"
    f.write_bytes(b"v2-weights")
    stamp = VersionStamp.load(f, version="v2", feature_version="fv2", instance_id="eu-1", region="eu")
    when = dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)
    rows = [stamp.record("r1", "approved", score=0.1, ts=when, amount=3.0),
            stamp.record("r2", "declined", score=0.9, ts=when, cache_hit=True, amount=4.0)]
    import polars as pl

    pl.DataFrame(rows).write_ndjson(tmp_path / "log.jsonl")
    with Store(tmp_path / "s.duckdb") as store:
        store.ingest("artifacts", _registry(tmp_path, stamp.artifact_hash))
        assert store.ingest("predictions", tmp_path / "log.jsonl").accepted == 2
        got = store.sql("SELECT request_id, component, resolved_version, version_status "
                        "FROM predictions_resolved ORDER BY request_id").rows()
    assert got == [("r1", "online", "v2", "verified"), ("r2", "cache", "v2", "verified")]
    with pytest.raises(ValueError, match="timezone-aware"):
        stamp.record("r3", "approved", ts=dt.datetime(2026, 11, 2))


def _registry(tmp_path, digest):
    p = tmp_path / "artifacts.csv"
    p.write_text(f"version,artifact_hash,feature_version\nv2,{digest},fv2\n")
    return p
