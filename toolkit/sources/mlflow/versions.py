"""The model versions of a registered model: labels and artifact digests."""

from __future__ import annotations

import datetime as dt
import inspect
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

from ...errors import InputError
from ...instrument import artifact_digest
from .client import PAGE, display_uri, first_line
from .records import DEFAULT_LABEL, RegistryVersion

_EPOCH = dt.datetime(1970, 1, 1)


def _filter_string(name: str) -> str:
    if "'" not in name:
        return f"name = '{name}'"
    if '"' not in name:
        return f'name = "{name}"'
    raise InputError(f"model name {name!r} holds both quote characters; MLflow's search filter cannot name it")


def read_versions(client, uri: str, name: str, label: str, feature_tag: str | None) -> list[RegistryVersion]:
    """Every version of model ``name``, in version order, labelled and digested."""
    found = []
    token = None
    try:
        while True:
            page = client.search_model_versions(_filter_string(name), max_results=PAGE, page_token=token)
            found += [mv for mv in page if mv.name == name]
            token = page.token
            if not token:
                break
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot list the versions of model {name!r} in the MLflow registry at {display_uri(uri)!r}: "
                         f"{first_line(exc, uri)}") from None
    out = []
    for mv in sorted(found, key=lambda m: int(m.version)):
        number = int(mv.version)
        tags = dict(mv.tags or {})
        the_label = _label(label, name, number, mv.run_id, tags, mv.source)
        digest: str | None
        problem: str | None
        try:
            download_uri = str(client.get_model_version_download_uri(name, str(number)) or "")
        except Exception as exc:
            digest, download_uri = None, ""
            problem = f"its download location cannot be resolved: {first_line(exc, uri)}"
        else:
            digest, problem = _digest(uri, download_uri or mv.source or "")
        feature = tags.get(feature_tag) if feature_tag else None
        out.append(RegistryVersion(
            model=name, version=number, label=the_label, source=mv.source or "", download_uri=download_uri or "",
            run_id=mv.run_id or None, artifact_hash=digest, feature_version=feature or None,
            created_at=_EPOCH + dt.timedelta(milliseconds=int(mv.creation_timestamp or 0)), problem=problem,
        ))
    return out


def _label(template: str, model: str, version: int, run_id: str | None, tags: dict, source: str) -> str:
    try:
        text = template.format(model=model, version=version, run_id=run_id or "", tags=tags)
    except (KeyError, IndexError, AttributeError, ValueError) as exc:
        raise InputError(f"label template {template!r} does not fit model {model!r} version {version} "
                         f"(source {source!r}): {type(exc).__name__} {exc}; its tags: "
                         f"{', '.join(sorted(tags)) or 'none'}") from None
    if not text.strip():
        raise InputError(f"label template {template!r} gives an empty label for model {model!r} version {version}")
    return text.strip()


def check_labels(versions: list[RegistryVersion], template: str) -> None:
    """Versions of different models must not share a label: vdrift could not tell them (or their events) apart.

    Versions of one model may (a ``{tags[...]}`` template that gives a re-registered artifact its old name).
    """
    seen: dict[str, RegistryVersion] = {}
    for v in versions:
        other = seen.setdefault(v.label, v)
        if other.model != v.model:
            raise InputError(
                f"label template {template!r} names both model {other.model!r} version {other.version} and model "
                f"{v.model!r} version {v.version} {v.label!r}; put {{model}} in it (e.g. {DEFAULT_LABEL!r}) or "
                "read one model at a time"
            )


def _local_path(location: str) -> Path | None:
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return Path(location)
    return None


def _digest(uri: str, location: str) -> tuple[str | None, str | None]:
    """(digest, None) of a version's artifacts, or (None, why not)."""
    if not location:
        return None, "it has no source"
    local = _local_path(location)
    if local is not None:
        return _digest_path(local, location)
    with tempfile.TemporaryDirectory(prefix="vdrift-mlflow-") as tmp:
        try:
            from mlflow.artifacts import download_artifacts

            extra = {"registry_uri": uri} if "registry_uri" in inspect.signature(download_artifacts).parameters else {}
            path = download_artifacts(artifact_uri=location, dst_path=tmp, tracking_uri=uri, **extra)  # 3.1 lacks it
        except Exception as exc:
            # the message must not name the temporary folder: the extract file's content (and so the
            # ingest's checksum-based skip) would differ on every run
            return None, f"{location} cannot be downloaded: {first_line(exc, uri).replace(tmp, '<download folder>')}"
        return _digest_path(Path(path), location)


def _digest_path(path: Path, location: str) -> tuple[str | None, str | None]:
    if not path.exists():
        return None, f"{location} does not exist"
    if path.is_dir() and not any(p.is_file() for p in path.rglob("*")):
        return None, f"{location} holds no files"
    try:
        return artifact_digest(path), None
    except OSError as exc:
        return None, f"{location} cannot be read: {exc.strerror or exc}"
