"""Fixed facts of the simulated fraud-approval service and its scenarios.

Everything the simulator plants is named here: the two periods, the model
versions and their artifacts, the regions with their instances and input
distributions, and the timeline of every scenario. The other modules only
read these constants, so the story of each sample can be checked in one
place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Literal
from collections.abc import Iterable

from ..errors import InputError
from ..audit.results import FINDING_KINDS

ScenarioName = Literal["canary", "rollback", "config_mismatch", "experiment", "covariate_shift", "clean"]
Format = Literal["parquet", "csv", "csv.gz", "jsonl"]

#: Scenario names in the order ``all`` expands to, then ``clean``.
SCENARIOS: tuple[str, ...] = ("canary", "rollback", "config_mismatch", "experiment", "covariate_shift", "clean")
ALL: tuple[str, ...] = SCENARIOS[:5]
FORMATS: tuple[str, ...] = ("parquet", "csv", "csv.gz", "jsonl")

#: Problem kinds a simulation can plant: the audit's finding kinds, less the
#: designed (declared, owned, time-bound) diversity, which is not a problem.
PROBLEM_KINDS: tuple[str, ...] = tuple(k for k in FINDING_KINDS if k != "designed_multi_version")


def utc(text: str) -> dt.datetime:
    """Naive UTC datetime from an ISO string (the store's representation)."""
    return dt.datetime.fromisoformat(text)


# -- periods -------------------------------------------------------------------
BASELINE = (utc("2026-11-02T00:00:00"), utc("2026-11-09T00:00:00"))
COMPARISON = (utc("2026-11-09T00:00:00"), utc("2026-11-16T00:00:00"))
DATA_START, DATA_END = BASELINE[0], COMPARISON[1]
#: Labels are observed as of the end of the data (late labels are null).
LABELS_AS_OF = DATA_END


def seconds(t: dt.datetime) -> float:
    """Seconds since :data:`DATA_START` (the simulator's time axis)."""
    return (t - DATA_START).total_seconds()


# -- versions and artifacts ----------------------------------------------------
@dataclass(frozen=True)
class Version:
    """One registered model version."""

    name: str
    feature_version: str
    created_at: dt.datetime

    @property
    def artifact_hash(self) -> str:
        """A fixed sha256-like digest standing for the artifact's content."""
        return hashlib.sha256(f"vdrift-sample-artifact:{self.name}".encode()).hexdigest()


VERSIONS: tuple[Version, ...] = (
    Version("v1.4", "fp-3", utc("2026-09-14T11:20:00")),
    Version("v1.5", "fp-3", utc("2026-10-19T15:05:00")),
    Version("v1.6", "fp-3", utc("2026-10-30T09:40:00")),
    Version("v2.0", "fp-4", utc("2026-10-28T17:30:00")),
)
VERSION_NAMES: tuple[str, ...] = tuple(v.name for v in VERSIONS)
V14, V15, V16, V20 = range(4)
#: The version everything runs at the start of the data (after a completed rollout).
BASE = V15
#: The candidate scored in shadow on a share of online requests.
SHADOW = V20
FEATURE_VERSIONS: tuple[str, ...] = ("fp-3", "fp-4")

# -- regions -------------------------------------------------------------------
REGIONS: tuple[str, ...] = ("eu", "us", "apac")
EU, US, APAC = range(3)
#: Serving instances per region (the eu canary gets its own instance, eu-5).
SERVING_INSTANCES: tuple[tuple[str, ...], ...] = (
    ("eu-1", "eu-2", "eu-3", "eu-4"),
    ("us-1", "us-2", "us-3"),
    ("apac-1", "apac-2"),
)
CANARY_INSTANCE = "eu-5"
COMPONENTS: tuple[str, ...] = ("online", "cache", "batch", "shadow")
ONLINE, CACHE, BATCH, SHADOW_ROW = range(4)

# -- scenario timelines (all times naive UTC) ---------------------------------
CANARY_REGION = EU
CANARY_START = utc("2026-11-05T09:00:00")
CANARY_EXPECTED_END = utc("2026-11-09T12:00:00")
CANARY_PCT = 10.0
CANARY_ACTOR = "m.keller"

ROLLBACK_REGION = US
ROLLBACK_DEPLOY = utc("2026-11-04T10:00:00")
ROLLBACK_AT = utc("2026-11-10T15:00:00")
ROLLBACK_ACTOR = "r.singh"
#: Cache answers computed by v2.0 before the rollback fade out with this mean life ...
STALE_CACHE_MEAN_LIFE_H = 10.0
#: ... until the cache is flushed (a declared cache_flush event).
CACHE_FLUSH_AT = utc("2026-11-11T10:00:00")
#: The feature pipeline kept producing v2.0's features until this time (undeclared).
FEATURE_PIPELINE_FIXED_AT = utc("2026-11-12T06:00:00")
#: The nightly batch job kept running v2.0 until this time (undeclared).
BATCH_FIXED_AT = utc("2026-11-12T12:00:00")

CONFIG_REGION = EU
CONFIG_CHANGE_AT = utc("2026-11-09T10:00:00")
CONFIG_NOTE = "model store moved to s3://fraud-models-eu/serving/; eu instances restarted"

EXPERIMENT_REGION = APAC
EXPERIMENT_NAME = "apac-v16-ab"
EXPERIMENT_START = utc("2026-11-03T08:00:00")
EXPERIMENT_EXPECTED_END = utc("2026-11-10T00:00:00")
EXPERIMENT_PCT = 50.0
EXPERIMENT_ACTOR = "s.tanaka"

#: Batch scoring runs every night in this UTC window.
BATCH_WINDOW_H = (1.0, 3.0)


def normalize_scenarios(scenarios: str | Iterable[str]) -> tuple[str, ...]:
    """Expand ``all``, drop duplicates and check the names.

    Parameters
    ----------
    scenarios
        Scenario names, ``"all"`` (= canary, rollback, config_mismatch,
        experiment, covariate_shift) or one name as a string.

    Returns
    -------
    tuple of str
        The scenarios in canonical order.

    Raises
    ------
    InputError
        For an unknown name or an empty list. ``clean`` plants nothing, so
        combined with other scenarios it only documents the intent.
    """
    if isinstance(scenarios, str):
        scenarios = (scenarios,)
    names: set[str] = set()
    for name in scenarios:
        name = str(name).strip().lower()
        if name == "all":
            names.update(ALL)
        elif name in SCENARIOS:
            names.add(name)
        else:
            raise InputError(
                f"unknown scenario {name!r}: choose from all, {', '.join(SCENARIOS)}"
            )
    if not names:
        raise InputError(f"no scenario given: choose from all, {', '.join(SCENARIOS)}")
    return tuple(s for s in SCENARIOS if s in names)
