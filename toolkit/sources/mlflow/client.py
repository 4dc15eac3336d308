"""The MLflow client: settings for one read, opening the registry, listing models, error messages."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from ...errors import InputError

PAGE = 1000


@contextlib.contextmanager
def mlflow_env(uri: str) -> Iterator[None]:
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


def open_client(uri: str):
    """``(MlflowClient, MlflowException)`` for ``uri``; a missing package or registry is an :class:`InputError`."""
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
        raise InputError(f"cannot open the MLflow registry at {display_uri(uri)!r}: {first_line(exc, uri)}") from None


def display_uri(uri: str) -> str:
    """The URI without a password (``http://user:secret@host`` -> ``http://user@host``), for reports and file names."""
    parsed = urlparse(uri)
    if parsed.password is None:
        return uri
    netloc = parsed.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parsed._replace(netloc=f"{user}@{netloc[1]}").geturl()


def first_line(exc: BaseException, uri: str) -> str:
    """The exception's type and first line, without the URI's password (MLflow's messages quote the URL)."""
    text = str(exc).strip()
    password = urlparse(uri).password
    if password:
        text = text.replace(f":{password}@", "@").replace(password, "***")
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'no message'}"


def model_names(client, uri: str, models: tuple[str, ...] | None, mlflow_exception) -> list[str]:
    """``models`` as given, else every registered model of the registry (sorted); none is an error."""
    if models is not None:
        return list(models)
    names: list[str] = []
    token = None
    try:
        while True:
            page = client.search_registered_models(max_results=PAGE, page_token=token)
            names += [m.name for m in page]
            token = page.token
            if not token:
                break
    except Exception as exc:
        raise InputError(f"cannot read the MLflow registry at {display_uri(uri)!r}: {first_line(exc, uri)}") from None
    if not names:
        raise InputError(f"the MLflow registry at {display_uri(uri)!r} has no registered models; nothing to ingest")
    return sorted(names)


def registered_model(client, uri: str, name: str, mlflow_exception):
    """The registered model ``name``; a missing one is an error that lists the known models."""
    try:
        return client.get_registered_model(name)
    except mlflow_exception as exc:
        if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
            known = _known_models(client)
            raise InputError(f"the MLflow registry at {display_uri(uri)!r} has no registered model {name!r}; it has: "
                             f"{', '.join(known) if known else 'none'}") from None
        raise InputError(f"cannot read model {name!r} from the MLflow registry at {display_uri(uri)!r}: "
                         f"{first_line(exc, uri)}") from None
    except Exception as exc:
        raise InputError(f"cannot read the MLflow registry at {display_uri(uri)!r}: {first_line(exc, uri)}") from None


def _known_models(client) -> list[str]:
    with contextlib.suppress(Exception):
        return sorted(m.name for m in client.search_registered_models(max_results=PAGE))[:20]
    return []
