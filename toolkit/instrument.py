"""Helpers for the services that write prediction logs.

The discipline that makes version drift visible: validate the artifact on
load, and log the version actually loaded with every prediction.

>>> stamp = VersionStamp.load("models/fraud-v2.0", version="v2.0",
...                           feature_version="fv7", instance_id="eu-2")  # doctest: +SKIP
>>> log.write(stamp.record("req-123", "approved", score=0.07, amount=42.0))  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import VdriftError


class ArtifactMismatch(VdriftError):
    """The artifact on disk is not the one the deployment expects."""

    exit_code = 2


def artifact_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a model artifact: a file, or a directory in a stable order.

    For a directory every regular file below it is hashed; the digest covers
    each file's path relative to the directory (with ``/`` separators) and its
    content, in sorted path order, so it does not depend on the file system's
    listing order or on where the directory lives.
    """
    root = Path(path)
    if root.is_file():
        return _file_sha256(root)
    if not root.is_dir():
        raise FileNotFoundError(f"artifact {str(root)!r} does not exist")
    digest = hashlib.sha256()
    files = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix())
    for file in files:
        rel = file.relative_to(root).as_posix()
        digest.update(rel.encode("utf-8") + b"\0" + _file_sha256(file).encode("ascii") + b"\n")
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def verify_artifact(path: str | os.PathLike, expected: str) -> str:
    """Check that the artifact at ``path`` has digest ``expected``; return it.

    Raises
    ------
    ArtifactMismatch
        With both digests and the path, so the log says which artifact was
        actually found (a config pointing at the wrong file).
    """
    actual = artifact_digest(path)
    want = expected.lower().removeprefix("sha256:")
    if actual != want:
        raise ArtifactMismatch(
            f"artifact {str(path)!r} has digest {actual[:16]}..., but {want[:16]}... was expected: "
            "the service would serve a different model than the one it reports; fix the artifact "
            "path or the expected digest in the deployment config"
        )
    return actual


@dataclass(frozen=True)
class VersionStamp:
    """The per-prediction version record of the data contract.

    Build it once when the model loads (with :meth:`load`, which computes the
    digest of what was really loaded), then call :meth:`record` for every
    prediction to get a dict with the contract columns.
    """

    model_version: str
    artifact_hash: str
    feature_version: str | None = None
    instance_id: str | None = None
    region: str | None = None
    component: str = "online"

    @classmethod
    def load(
        cls,
        artifact_path: str | os.PathLike,
        *,
        version: str,
        expected_hash: str | None = None,
        feature_version: str | None = None,
        instance_id: str | None = None,
        region: str | None = None,
        component: str = "online",
    ) -> VersionStamp:
        """Digest (and, given ``expected_hash``, verify) the loaded artifact."""
        digest = verify_artifact(artifact_path, expected_hash) if expected_hash else artifact_digest(artifact_path)
        return cls(version, digest, feature_version, instance_id, region, component)

    def record(
        self,
        request_id: str,
        prediction: object,
        *,
        score: float | None = None,
        cache_hit: bool = False,
        ts: dt.datetime | None = None,
        entity_id: str | None = None,
        **covariates: object,
    ) -> dict[str, object]:
        """One prediction-log row: contract columns plus the given covariates."""
        when = ts or dt.datetime.now(dt.UTC)
        if when.tzinfo is None:
            raise ValueError("ts must be timezone-aware (e.g. datetime.now(timezone.utc))")
        row: dict[str, object] = {
            "request_id": request_id,
            "ts": when.astimezone(dt.UTC).isoformat(),
            "model_version": self.model_version,
            "prediction": prediction,
            "score": score,
            "artifact_hash": self.artifact_hash,
            "feature_version": self.feature_version,
            "component": "cache" if cache_hit else self.component,
            "cache_hit": cache_hit,
            "region": self.region,
            "instance_id": self.instance_id,
            "entity_id": entity_id,
        }
        clash = set(covariates) & set(row)
        if clash:
            raise ValueError(f"covariate names clash with contract columns: {sorted(clash)}")
        row.update(covariates)
        return row
