"""The entry point :func:`ingest_mlflow`: read the registry, derive the alias events, ingest the extract."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from typing import Literal

from ...errors import InputError, StoreError
from ...store.ingest import IngestReport
from .aliases import alias_changes
from .client import open_client, mlflow_env, model_names, registered_model, display_uri
from .extract import extract_folder, safe_name, write_artifacts, write_deployments
from .records import DEFAULT_ALIASES, DEFAULT_LABEL, MlflowIngest, RegistryVersion
from .versions import check_labels, read_versions

_ALIAS = re.compile(r"^[\w-]+$")


def ingest_mlflow(
    store,
    uri: str,
    *,
    models: Iterable[str] | str | None = None,
    aliases: Iterable[str] | str | None = DEFAULT_ALIASES,
    label: str = DEFAULT_LABEL,
    feature_version_tag: str | None = "feature_version",
    component: str = "serving",
    scope: str = "all",
    observed_at: dt.datetime | None = None,
    extract_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: bool | Literal["lines"] = False,
) -> MlflowIngest:
    """Read an MLflow model registry and ingest it as artifacts and deployment events.

    Parameters
    ----------
    store
        An open, writable :class:`~toolkit.store.Store`.
    uri
        The tracking/registry URI: ``sqlite:///mlflow.db``, ``http://host:5000``,
        ``databricks``, or a file store folder (``file:///path/mlruns``, which
        MLflow 3 reads only with ``MLFLOW_ALLOW_FILE_STORE=true``).
    models
        Registered model names; default every registered model.
    aliases
        The aliases whose moves become deployment events (default
        ``champion``); ``None`` for every alias, ``()`` for none (only the
        artifacts are loaded). Give each serving alias its own call when they
        go to different components or scopes.
    label
        How a version is named in vdrift (``model_version`` in the logs,
        ``version`` in artifacts and deployments): a ``str.format`` template
        with ``model``, ``version``, ``run_id`` and ``tags`` (the version's
        tags), e.g. ``"{model}:{version}"`` (default), ``"v{version}"`` or
        ``"{tags[serving_version]}"``.
    feature_version_tag
        The model version tag holding the feature version (None: none).
    component, scope
        Where the alias events apply (deployments contract).
    observed_at
        The time of the read, stamped on the alias events (default now, UTC;
        a naive datetime is UTC).
    extract_dir
        Keep the extract files there (default: a temporary folder removed
        afterwards; ``ingest_log`` records the path either way).
    force, progress
        As for :meth:`Store.ingest <toolkit.store.Store.ingest>` (``vdrift ingest --force``, ``--progress``).

    Returns
    -------
    MlflowIngest
        The versions and alias changes read and both ingest reports.

    Raises
    ------
    InputError
        The mlflow package is missing, the URI cannot be read, a model is not
        registered, or the label template does not fit a version.
    """
    from ...store import Store

    if not isinstance(store, Store):
        raise InputError(f"store must be an open toolkit.Store, got {store!r}")
    if store.read_only:  # checked before the registry is read (and its sources downloaded)
        raise StoreError("this store was opened read-only; open it with read_only=False to ingest")
    if feature_version_tag is not None and not (isinstance(feature_version_tag, str) and feature_version_tag):
        raise InputError(f"feature_version_tag must be a tag name or None, got {feature_version_tag!r}")
    observed = _check_args(uri, label, component, scope, observed_at)
    wanted_aliases = _names(aliases, "aliases")
    if wanted_aliases is not None:
        for alias in wanted_aliases:
            if not _ALIAS.match(alias):
                raise InputError(f"alias {alias!r} is not an MLflow alias name (letters, digits, _ and - only)")
    with mlflow_env(uri):
        client, mlflow_exception = open_client(uri)
        names = model_names(client, uri, _names(models, "models"), mlflow_exception)
        versions: list[RegistryVersion] = []
        current: list[tuple[str, str, int]] = []
        for name in names:
            registered = registered_model(client, uri, name, mlflow_exception)
            for alias, number in sorted((registered.aliases or {}).items()):
                if wanted_aliases is None or alias in wanted_aliases:
                    current.append((name, alias, int(number)))
            versions += read_versions(client, uri, name, label, feature_version_tag)
    check_labels(versions, label)
    changes = alias_changes(store, names, wanted_aliases, current, versions, component, scope, observed)
    with extract_folder(extract_dir) as top:
        folder = top / f"mlflow-{safe_name(display_uri(uri))}"
        art_files = write_artifacts(folder, versions)
        artifacts = (store.ingest("artifacts", art_files, force=force, progress=progress) if art_files
                     else IngestReport(kind="artifacts"))
        dep_files = write_deployments(folder, changes, component, scope)
        deployments = (store.ingest("deployments", dep_files, force=force, progress=progress) if dep_files
                       else IngestReport(kind="deployments"))
    return MlflowIngest(uri=display_uri(uri), observed_at=observed, versions=tuple(versions), aliases=tuple(current),
                        changes=tuple(changes), artifacts=artifacts, deployments=deployments)


# -- arguments ---------------------------------------------------------------------------------------
def _check_args(uri: object, label: object, component: object, scope: object, observed_at: object) -> dt.datetime:
    if not isinstance(uri, str) or not uri.strip():
        raise InputError(f"the MLflow URI must be text such as sqlite:///mlflow.db, got {uri!r}")
    if not isinstance(label, str) or not label.strip():
        raise InputError(f"label must be a template such as {DEFAULT_LABEL!r}, got {label!r}")
    for name, value in (("component", component), ("scope", scope)):
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{name} must be non-empty text, got {value!r}")
    if observed_at is None:
        observed_at = dt.datetime.now(dt.UTC)
    if not isinstance(observed_at, dt.datetime):
        raise InputError(f"observed_at must be a datetime, got {observed_at!r}")
    if observed_at.tzinfo is not None:
        observed_at = observed_at.astimezone(dt.UTC).replace(tzinfo=None)
    # milliseconds, as the event files are written (and as MLflow keeps its times)
    return observed_at.replace(microsecond=observed_at.microsecond // 1000 * 1000)


def _names(values: Iterable[str] | str | None, what: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    items = (values,) if isinstance(values, str) else tuple(values)
    if not items and what == "aliases":  # no alias events: only the artifacts
        return ()
    if not items or not all(isinstance(v, str) and v for v in items):
        raise InputError(f"{what} must be a non-empty list of names (or None for all), got {values!r}")
    return tuple(dict.fromkeys(items))
