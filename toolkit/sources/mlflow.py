"""MLflow's model registry as vdrift's artifact registry, and its aliases as deployment events.

:func:`ingest_mlflow` reads a registry through the real MLflow client
(``mlflow.MlflowClient``), writes what it read as ordinary contract files
(one artifacts CSV per model version, one deployments JSON line per alias
change) into an extract folder and loads them with :meth:`Store.ingest
<toolkit.store.Store.ingest>`: the same validation, quarantine, transactions,
checksum-based skips and ``ingest_log`` rows as any other file, no second
validator. docs/sources-mlflow.md has the worked example and the limits.

* **Digests.** Each version's source (``get_model_version_download_uri``: a
  local folder or file, ``runs:/``, ``models:/m-...``, ``mlflow-artifacts:/``,
  a cloud URI) is digested with :func:`toolkit.instrument.artifact_digest`,
  the digest serving code logs. A local source is digested in place; any other
  is downloaded into a temporary folder first. A version whose source cannot
  be resolved, downloaded or is empty is written with an empty digest, so the
  ingest quarantines it ("missing required value: artifact_hash ...") with the
  problem, model, version and source in the raw row; the report lists it too.
* **Events.** MLflow keeps no alias history: the registry holds only where
  each alias points now (the SQL store does not even update a timestamp when
  an alias moves). vdrift keeps the history itself: every call compares the
  aliases it reads with the last alias event it stored for that model, alias,
  component and scope, and writes one event per difference, stamped with the
  time of the read (``observed_at``). An alias that moved to a higher version
  number is a ``deploy``, to a lower one a ``rollback``, a removed alias a
  ``config_change`` without a version. The event's note says between which
  times the move happened. Several moves between two reads are seen as one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import inspect
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

import polars as pl

from ..errors import InputError, StoreError
from ..instrument import artifact_digest
from ..store.ingest import IngestReport

#: the default ``model_version`` label of an MLflow version: ``fraud:3``
DEFAULT_LABEL = "{model}:{version}"
#: the aliases read by default: the one that says which version serves
DEFAULT_ALIASES = ("champion",)
#: the actor of every event derived from the registry
ACTOR = "mlflow"
#: the start of the note of every alias event; vdrift reads its alias history back from it
NOTE_HEAD = "mlflow alias "
_NOTE = re.compile(r"^mlflow alias (?P<alias>[\w-]+) of model (?P<model>.+): version (?P<version>\d+|removed)"
                   r"(?: \| .*)?$", re.DOTALL)
_ALIAS = re.compile(r"^[\w-]+$")
_EPOCH = dt.datetime(1970, 1, 1)
_PAGE = 1000


@dataclass(frozen=True)
class RegistryVersion:
    """One model version as read from the registry.

    ``label`` is the ``model_version`` vdrift stores for it (the ``label``
    template applied); ``artifact_hash`` is None when ``problem`` says why the
    source could not be digested (the version is then quarantined).
    """

    model: str
    version: int
    label: str
    source: str
    download_uri: str
    run_id: str | None
    artifact_hash: str | None
    feature_version: str | None
    created_at: dt.datetime
    problem: str | None = None


@dataclass(frozen=True)
class AliasChange:
    """A difference between the aliases read now and the last ones stored: one deployment event.

    ``version`` is None for a removed alias, ``previous`` None when vdrift
    had never seen the alias. The move happened after ``since`` (when known)
    and no later than ``ts``, the time of the read.
    """

    model: str
    alias: str
    version: int | None
    previous: int | None
    event: str
    ts: dt.datetime
    since: dt.datetime | None
    label: str | None
    artifact_hash: str | None

    @property
    def note(self) -> str:
        """The event's note: alias, model and version first (read back as the alias's state), then the window."""
        version = "removed" if self.version is None else self.version
        head = f"{NOTE_HEAD}{self.alias} of model {self.model}: version {version}"
        if self.previous is None:
            what = "first read by vdrift; set at an unknown time"
        else:
            what = f"was {self.previous}; moved"
        when = f"after {_iso(self.since)} and " if self.since is not None else ""
        return f"{head} | {what} {when}no later than {_iso(self.ts)} (when vdrift read the registry)"

    def row(self, component: str, scope: str) -> dict:
        """The deployments contract row of this event."""
        return {
            "ts": _iso(self.ts), "component": component, "scope": scope, "event": self.event,
            "version": self.label, "artifact_hash": self.artifact_hash,
            "traffic_pct": None if self.version is None else 100.0, "actor": ACTOR, "note": self.note,
        }


@dataclass(frozen=True)
class MlflowIngest:
    """What :func:`ingest_mlflow` read and what the two ingests of its extract did."""

    uri: str
    observed_at: dt.datetime
    versions: tuple[RegistryVersion, ...]
    aliases: tuple[tuple[str, str, int], ...]
    changes: tuple[AliasChange, ...]
    artifacts: IngestReport
    deployments: IngestReport = field(default_factory=lambda: IngestReport(kind="deployments"))

    @property
    def problems(self) -> tuple[str, ...]:
        """One line per version whose source could not be digested (quarantined), naming model, version, source."""
        return tuple(
            f"model {v.model!r} version {v.version} (source {v.source!r}): {v.problem}"
            for v in self.versions if v.problem
        )

    @property
    def ok(self) -> bool:
        """True when no extract file failed to load."""
        return self.artifacts.ok and self.deployments.ok

    @property
    def quarantined(self) -> int:
        """Rows quarantined by both ingests."""
        return self.artifacts.quarantined + self.deployments.quarantined

    def to_frame(self) -> pl.DataFrame:
        """One row per version read: model, version, label, digest, feature version, created_at, source, problem."""
        return pl.DataFrame(
            {
                "model": [v.model for v in self.versions],
                "mlflow_version": [v.version for v in self.versions],
                "version": [v.label for v in self.versions],
                "artifact_hash": [v.artifact_hash for v in self.versions],
                "feature_version": [v.feature_version for v in self.versions],
                "created_at": [v.created_at for v in self.versions],
                "source": [v.source for v in self.versions],
                "run_id": [v.run_id for v in self.versions],
                "problem": [v.problem for v in self.versions],
            },
            schema={"model": pl.Utf8, "mlflow_version": pl.Int64, "version": pl.Utf8, "artifact_hash": pl.Utf8,
                    "feature_version": pl.Utf8, "created_at": pl.Datetime("us"), "source": pl.Utf8,
                    "run_id": pl.Utf8, "problem": pl.Utf8},
        )

    def summary(self) -> str:
        """What was read, the alias changes, the problems, then both ingest summaries, as text."""
        models = sorted({v.model for v in self.versions} | {m for m, _, _ in self.aliases})
        lines = [f"mlflow registry {self.uri}: {len(models)} model(s), {len(self.versions)} version(s) read "
                 f"at {_iso(self.observed_at)}"]
        for change in self.changes:
            was = "new" if change.previous is None else str(change.previous)
            now = "removed" if change.version is None else str(change.version)
            lines.append(f"  alias {change.alias} of {change.model}: {was} -> {now} ({change.event} at "
                         f"{_iso(change.ts)})")
        if not self.changes:
            state = ", ".join(f"{m}@{a}={v}" for m, a, v in self.aliases) or "none set"
            lines.append(f"  aliases unchanged since the last ingest ({state})")
        lines += [f"  problem: {p} (quarantined)" for p in self.problems]
        lines.append(self.artifacts.summary())
        if self.deployments.results:
            lines.append(self.deployments.summary())
        else:
            lines.append("deployments: no alias changed since the last ingest; nothing to load")
        return "\n".join(lines)


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
    from ..store import Store

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
    with _mlflow_env(uri):
        client, mlflow_exception = _client(uri)
        names = _model_names(client, uri, _names(models, "models"), mlflow_exception)
        versions: list[RegistryVersion] = []
        current: list[tuple[str, str, int]] = []
        for name in names:
            registered = _registered_model(client, uri, name, mlflow_exception)
            for alias, number in sorted((registered.aliases or {}).items()):
                if wanted_aliases is None or alias in wanted_aliases:
                    current.append((name, alias, int(number)))
            versions += _read_versions(client, uri, name, label, feature_version_tag)
    _check_labels(versions, label)
    changes = _alias_changes(store, names, wanted_aliases, current, versions, component, scope, observed)
    with _folder(extract_dir) as top:
        folder = top / f"mlflow-{_safe(display_uri(uri))}"
        art_files = _write_artifacts(folder, versions)
        artifacts = (store.ingest("artifacts", art_files, force=force, progress=progress) if art_files
                     else IngestReport(kind="artifacts"))
        dep_files = _write_deployments(folder, changes, component, scope)
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


# -- the client ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _mlflow_env(uri: str) -> Iterator[None]:
    """MLflow settings for one read, restored afterwards.

    * MLflow's default tracking and registry URIs are this registry's: MLflow's own code opens
      ``MlflowClient()`` with the defaults in places (its file store looks logged models up that way), which
      would read another store, or create an empty ``./mlflow.db``.
    * No artifacts progress bar (it would interleave with vdrift's output), unless the user set it.
    * For HTTP, no retries and a 30 s timeout, unless the user set them: MLflow retries a failed request
      for minutes by default; a registry that cannot be reached is reported at once instead.
    """
    settings = [("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")]
    if urlparse(uri).scheme in ("http", "https"):
        settings += [("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0"), ("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")]
    before = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    for name, _ in settings:
        before.setdefault(name, os.environ.get(name))
    os.environ["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_REGISTRY_URI"] = uri
    for name, value in settings:
        os.environ.setdefault(name, value)
    # a URI set in-process (mlflow.set_tracking_uri) wins over the variables: swap it for the read
    globals_before: list[tuple[object, str, object]] = []
    with contextlib.suppress(ImportError):
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        for module, attr in ((tracking_utils, "_tracking_uri"), (registry_utils, "_registry_uri")):
            if getattr(module, attr, None) is not None:
                globals_before.append((module, attr, getattr(module, attr)))
                setattr(module, attr, uri)
    try:
        yield
    finally:
        for owner, attr, old in globals_before:
            setattr(owner, attr, old)
        for name, previous in before.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


def _check_local(uri: str) -> None:
    """A local registry must exist: MLflow would create an empty one at a mistyped path."""
    parsed, shown = urlparse(uri), display_uri(uri)
    if parsed.scheme == "sqlite":
        if not uri.startswith("sqlite:///") or uri == "sqlite:///:memory:":
            raise InputError(f"MLflow registry {shown!r}: give a database file, e.g. sqlite:////abs/path/mlflow.db")
        path = Path(uri[len("sqlite:///"):].split("?", 1)[0])
        if not path.is_file() or path.stat().st_size == 0:
            raise InputError(f"no MLflow registry at {shown!r}: {str(path)!r} is not an existing database file "
                             "(MLflow would create an empty one); check the path")
    elif parsed.scheme in ("", "file"):
        path = Path(unquote(parsed.path) if parsed.scheme == "file" else uri)
        if path.is_file():
            raise InputError(f"MLflow registry {shown!r} is a file, not a file store folder; for a SQLite "
                             f"registry write sqlite:///{path}")
        if not path.is_dir():
            raise InputError(f"no MLflow registry at {shown!r}: {str(path)!r} is not an existing folder; "
                             "check the path")


def _client(uri: str):
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError as exc:
        raise InputError(f"reading an MLflow registry needs the mlflow client ({exc}); install it with "
                         "pip install 'vdrift[mlflow]' (mlflow-skinny with SQLAlchemy and Alembic)") from None
    _check_local(uri)
    try:
        return MlflowClient(tracking_uri=uri, registry_uri=uri), MlflowException
    except Exception as exc:
        raise InputError(f"cannot open the MLflow registry at {display_uri(uri)!r}: {_first_line(exc, uri)}") from None


def display_uri(uri: str) -> str:
    """The URI without a password (``http://user:secret@host`` -> ``http://user@host``), for reports and file names."""
    parsed = urlparse(uri)
    if parsed.password is None:
        return uri
    netloc = parsed.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parsed._replace(netloc=f"{user}@{netloc[1]}").geturl()


def _first_line(exc: BaseException, uri: str) -> str:
    """The exception's type and first line, without the URI's password (MLflow's messages quote the URL)."""
    text = str(exc).strip()
    password = urlparse(uri).password
    if password:
        text = text.replace(f":{password}@", "@").replace(password, "***")
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no message'}"


def _model_names(client, uri: str, models: tuple[str, ...] | None, mlflow_exception) -> list[str]:
    if models is not None:
        return list(models)
    names: list[str] = []
    token = None
    try:
        while True:
            page = client.search_registered_models(max_results=_PAGE, page_token=token)
            names += [m.name for m in page]
            token = page.token
            if not token:
                break
    except Exception as exc:
        raise InputError(f"cannot read the MLflow registry at {display_uri(uri)!r}: {_first_line(exc, uri)}") from None
    if not names:
        raise InputError(f"the MLflow registry at {display_uri(uri)!r} has no registered models; nothing to ingest")
    return sorted(names)


def _registered_model(client, uri: str, name: str, mlflow_exception):
    try:
        return client.get_registered_model(name)
    except mlflow_exception as exc:
        if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
            known = _known_models(client)
            raise InputError(f"the MLflow registry at {display_uri(uri)!r} has no registered model {name!r}; it has: "
                             f"{', '.join(known) if known else 'none'}") from None
        raise InputError(f"cannot read model {name!r} from the MLflow registry at {display_uri(uri)!r}: "
                         f"{_first_line(exc, uri)}") from None
    except Exception as exc:
        raise InputError(f"cannot read the MLflow registry at {display_uri(uri)!r}: {_first_line(exc, uri)}") from None


def _known_models(client) -> list[str]:
    with contextlib.suppress(Exception):
        return sorted(m.name for m in client.search_registered_models(max_results=_PAGE))[:20]
    return []


def _filter_string(name: str) -> str:
    if "'" not in name:
        return f"name = '{name}'"
    if '"' not in name:
        return f'name = "{name}"'
    raise InputError(f"model name {name!r} holds both quote characters; MLflow's search filter cannot name it")


# -- versions and digests ----------------------------------------------------------------------------
def _read_versions(client, uri: str, name: str, label: str, feature_tag: str | None) -> list[RegistryVersion]:
    found = []
    token = None
    try:
        while True:
            page = client.search_model_versions(_filter_string(name), max_results=_PAGE, page_token=token)
            found += [mv for mv in page if mv.name == name]
            token = page.token
            if not token:
                break
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot list the versions of model {name!r} in the MLflow registry at {display_uri(uri)!r}: "
                         f"{_first_line(exc, uri)}") from None
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
            problem = f"its download location cannot be resolved: {_first_line(exc, uri)}"
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


def _check_labels(versions: list[RegistryVersion], template: str) -> None:
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
            return None, f"{location} cannot be downloaded: {_first_line(exc, uri).replace(tmp, '<download folder>')}"
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


# -- aliases ---------------------------------------------------------------------------------------------
def _stored_aliases(store, component: str, scope: str) -> dict[tuple[str, str], tuple[int | None, dt.datetime]]:
    """The last alias event vdrift stored per (model, alias) for this component and scope."""
    rows = store.con.execute(
        "SELECT note, ts FROM deployments WHERE component = ? AND scope = ? AND actor = ? "
        "AND starts_with(note, ?) ORDER BY ts, ingest_id",
        [component, scope, ACTOR, NOTE_HEAD],
    ).fetchall()
    state: dict[tuple[str, str], tuple[int | None, dt.datetime]] = {}
    for note, ts in rows:
        m = _NOTE.match(note)
        if m:
            version = None if m["version"] == "removed" else int(m["version"])
            state[(m["model"], m["alias"])] = (version, ts)
    return state


def _alias_changes(
    store, names: list[str], wanted: tuple[str, ...] | None, current: list[tuple[str, str, int]],
    versions: list[RegistryVersion], component: str, scope: str, observed: dt.datetime,
) -> list[AliasChange]:
    by_number = {(v.model, v.version): v for v in versions}
    now = {(m, a): v for m, a, v in current}
    stored = {k: s for k, s in _stored_aliases(store, component, scope).items() if k[0] in names
              and (wanted is None or k[1] in wanted)}
    changes = []
    for key in sorted(set(now) | set(stored)):
        model, alias = key
        new = now.get(key)
        old, old_ts = stored.get(key, (None, None))
        if key in stored and old == new:
            continue
        if old_ts is not None and observed <= old_ts:
            raise InputError(
                f"alias {alias} of model {model!r} changed since vdrift's last alias event ({_iso(old_ts)}), "
                f"but the read time {_iso(observed)} is not after it; give a later observed_at"
            )
        target = by_number.get((model, new)) if new is not None else None
        since = old_ts
        # the move came after the target version was made, unless the registry's clock is ahead of the read's
        if target is not None and (since is None or target.created_at > since) and target.created_at <= observed:
            since = target.created_at
        if new is None:
            event = "config_change"
        elif old is not None and new < old:
            event = "rollback"
        else:
            event = "deploy"
        changes.append(AliasChange(
            model=model, alias=alias, version=new, previous=old, event=event, ts=observed, since=since,
            label=target.label if target is not None else None,
            artifact_hash=target.artifact_hash if target is not None else None,
        ))
    return changes


# -- the extract files -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _folder(extract_dir: str | os.PathLike | None) -> Iterator[Path]:
    if extract_dir is not None:
        path = Path(extract_dir)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="vdrift-mlflow-extract-") as tmp:
        yield Path(tmp)


def _safe(name: str) -> str:
    """A file-name part for a model name: readable, and distinct for distinct names."""
    short = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)[:60]}-{short}"


def _write_artifacts(folder: Path, versions: list[RegistryVersion]) -> list[Path]:
    """One CSV per version; its content depends only on the version, so an unchanged one is skipped."""
    files = []
    for v in versions:
        path = folder / "artifacts" / _safe(v.model) / f"version-{v.version}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        # the column "mlflow" is not stored, but a quarantined row keeps it: which model, version and source
        origin = {"model": v.model, "version": v.version, "source": v.source, "run_id": v.run_id,
                  "problem": v.problem}
        pl.DataFrame(
            [{"version": v.label, "artifact_hash": v.artifact_hash, "feature_version": v.feature_version,
              "created_at": _iso(v.created_at), "mlflow": json.dumps(origin)}],
            schema={c: pl.Utf8 for c in ("version", "artifact_hash", "feature_version", "created_at", "mlflow")},
        ).write_csv(path)
        files.append(path)
    return files


def _write_deployments(folder: Path, changes: list[AliasChange], component: str, scope: str) -> list[Path]:
    files = []
    for c in changes:
        stamp = c.ts.strftime("%Y%m%dT%H%M%S%f")
        what = "removed" if c.version is None else c.version
        path = folder / "deployments" / _safe(c.model) / c.alias / f"{stamp}-{what}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(c.row(component, scope)) + "\n", encoding="utf-8")
        files.append(path)
    return files


def _iso(ts: dt.datetime) -> str:
    """A naive UTC datetime as ISO 8601 with ``Z`` (milliseconds: MLflow's resolution)."""
    return ts.isoformat(timespec="milliseconds") + "Z"
