"""What an MLflow registry read yields: the versions, the alias changes (deployment events) and the result."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import polars as pl

from ...frames import attrs_frame
from ...store.ingest import IngestReport

#: the default ``model_version`` label of an MLflow version: ``fraud:3``
DEFAULT_LABEL = "{model}:{version}"
#: the aliases read by default: the one that says which version serves
DEFAULT_ALIASES = ("champion",)
#: the actor of every event derived from the registry
ACTOR = "mlflow"
#: the start of the note of every alias event; vdrift reads its alias history back from it
NOTE_HEAD = "mlflow alias "
NOTE_PATTERN = re.compile(r"^mlflow alias (?P<alias>[\w-]+) of model (?P<model>.+): version (?P<version>\d+|removed)"
                   r"(?: \| .*)?$", re.DOTALL)


def iso(ts: dt.datetime) -> str:
    """A naive UTC datetime as ISO 8601 with ``Z`` (milliseconds: MLflow's resolution)."""
    return ts.isoformat(timespec="milliseconds") + "Z"


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
        when = f"after {iso(self.since)} and " if self.since is not None else ""
        return f"{head} | {what} {when}no later than {iso(self.ts)} (when vdrift read the registry)"

    def row(self, component: str, scope: str) -> dict:
        """The deployments contract row of this event."""
        return {
            "ts": iso(self.ts), "component": component, "scope": scope, "event": self.event,
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
        return attrs_frame(self.versions, {
            "model": ("model", pl.Utf8), "mlflow_version": ("version", pl.Int64), "version": ("label", pl.Utf8),
            "artifact_hash": ("artifact_hash", pl.Utf8), "feature_version": ("feature_version", pl.Utf8),
            "created_at": ("created_at", pl.Datetime("us")), "source": ("source", pl.Utf8),
            "run_id": ("run_id", pl.Utf8), "problem": ("problem", pl.Utf8)})

    def summary(self) -> str:
        """What was read, the alias changes, the problems, then both ingest summaries, as text."""
        models = sorted({v.model for v in self.versions} | {m for m, _, _ in self.aliases})
        lines = [f"mlflow registry {self.uri}: {len(models)} model(s), {len(self.versions)} version(s) read "
                 f"at {iso(self.observed_at)}"]
        for change in self.changes:
            was = "new" if change.previous is None else str(change.previous)
            now = "removed" if change.version is None else str(change.version)
            lines.append(f"  alias {change.alias} of {change.model}: {was} -> {now} ({change.event} at "
                         f"{iso(change.ts)})")
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
