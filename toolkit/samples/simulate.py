"""Run the simulator in memory: logs, history, registry and ground truth."""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import polars as pl

from ..errors import InputError
from . import scenarios as S
from .history import artifacts, deployments
from .models import MODELS, fraud_probability, replay
from .population import CHANNELS, MERCHANTS, Population, draw_population
from .results import GroundTruth
from .routing import Routing, route
from .truth import divergence_problems, planted_problems, replay_effects

#: Share of online requests (not answered by v2.0) also scored by v2.0 in shadow.
SHADOW_SHARE = 0.06
MIN_ROWS = 1000
METRICS = ("rate:prediction=approved", "mean:score")
COVARIATES: tuple[dict[str, str], ...] = (
    {"name": "amount", "type": "DOUBLE"},
    {"name": "merchant_category", "type": "VARCHAR"},
    {"name": "account_age_days", "type": "DOUBLE"},
    {"name": "channel", "type": "VARCHAR"},
)
DECISIONS = ("approved", "declined")
ARMS = ("control", "treatment")
_EPOCH_MS = int(S.DATA_START.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


@dataclass(frozen=True)
class Simulation:
    """An in-memory sample: the three input tables and the ground truth.

    ``predictions`` follows the data contract (low-cardinality text columns
    are polars Enums, which compare equal to plain strings); ``ground_truth``
    is what ``generate`` writes to ground_truth.json.
    """

    predictions: pl.DataFrame
    deployments: pl.DataFrame
    artifacts: pl.DataFrame
    ground_truth: GroundTruth

    def __post_init__(self) -> None:
        non_shadow = self.predictions.filter(pl.col("component") != "shadow").height
        if non_shadow != self.ground_truth.rows:
            raise ValueError("predictions and ground truth disagree on the number of requests")

    def summary(self) -> str:
        return self.ground_truth.summary()


def _check_int(value: object, name: str, minimum: int) -> int:
    try:
        out = operator.index(value)  # rejects floats and bools-as-text
    except TypeError:
        raise InputError(f"{name} must be a whole number, got {value!r}") from None
    if out < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {out}")
    return out


def _enum(codes: np.ndarray, categories: Iterable[str], null: np.ndarray | None = None) -> pl.Series:
    cats = list(categories)
    series = pl.Series(np.asarray(codes, dtype=np.int64)).replace_strict(
        list(range(len(cats))), cats, return_dtype=pl.Enum(cats), default=None
    )
    if null is not None:
        series = pl.select(pl.when(pl.Series(null)).then(None).otherwise(series)).to_series()
    return series


def _prefixed(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """Text ids such as ``r000000042`` (vectorised)."""
    padded = pl.Series(numbers).cast(pl.String).str.zfill(width)
    return pl.select(pl.lit(prefix) + padded).to_series()


def _predictions(pop: Population, routing: Routing, scores: np.ndarray, approved: np.ndarray,
                 fraud: np.ndarray, shadow: np.ndarray) -> pl.DataFrame:
    n = pop.n
    shadow_src = np.flatnonzero(shadow)
    src = np.concatenate([np.arange(n), shadow_src])
    is_shadow = np.concatenate([np.zeros(n, bool), np.ones(shadow_src.size, bool)])
    order = np.lexsort((is_shadow, pop.t[src]))
    src, is_shadow = src[order], is_shadow[order]

    version = np.where(is_shadow, S.SHADOW, routing.resolved[src])
    reported = np.where(is_shadow, S.SHADOW, routing.reported[src])
    fv = np.where(is_shadow, S.FEATURE_VERSIONS.index(S.VERSIONS[S.SHADOW].feature_version),
                  routing.feature_version[src])
    component = np.where(is_shadow, S.SHADOW_ROW, pop.component[src])
    names = routing.instance_names
    shadow_instance = np.array([names.index(f"{r}-shadow") for r in S.REGIONS])
    instance = np.where(is_shadow, shadow_instance[pop.region[src]], routing.instance[src])
    in_exp = routing.in_experiment[src] & ~is_shadow
    arm = (routing.resolved[src] == S.V16).astype(np.int64)
    ms = _EPOCH_MS + np.round(pop.t[src] * 1000.0).astype(np.int64)
    return pl.DataFrame(
        {
            "request_id": _prefixed("r", src, 9),
            "ts": pl.Series(ms).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
            "model_version": _enum(reported, S.VERSION_NAMES),
            "prediction": _enum(np.where(approved[src, version], 0, 1), DECISIONS),
            "score": scores[src, version],
            "artifact_hash": _enum(version, [v.artifact_hash for v in S.VERSIONS]),
            "feature_version": _enum(fv, S.FEATURE_VERSIONS),
            "component": _enum(component, S.COMPONENTS),
            "cache_hit": component == S.CACHE,
            "region": _enum(pop.region[src], S.REGIONS),
            "instance_id": _enum(instance, names),
            "entity_id": _prefixed("c", pop.entity[src], 7),
            "experiment": _enum(np.zeros(src.size, np.int64), [S.EXPERIMENT_NAME], null=~in_exp),
            "arm": _enum(arm, ARMS, null=~in_exp),
            "outcome": _enum(np.where(fraud[src], 1, 0), DECISIONS, null=~pop.label_seen[src]),
            "amount": pop.amount[src],
            "merchant_category": _enum(pop.merchant[src], MERCHANTS),
            "account_age_days": pop.age_days[src],
            "channel": _enum(pop.channel[src], CHANNELS),
        }
    )


def simulate(
    scenarios: "str | Iterable[str]" = ("all",),
    *,
    rows: int = 100_000,
    seed: int = 0,
) -> Simulation:
    """Simulate the fraud-approval service over the baseline and comparison weeks.

    Parameters
    ----------
    scenarios
        Scenario names (canary, rollback, config_mismatch, experiment,
        covariate_shift, clean) or ``"all"`` (the first five together).
    rows
        Number of requests (online, cache and batch rows, retries included);
        shadow rows come on top (about 5%).
    seed
        Seed of the random generator: the same seed, rows and scenarios give
        the same sample, bit for bit.

    Returns
    -------
    Simulation
        Predictions, deployments and artifacts as polars frames, and the
        :class:`~toolkit.samples.results.GroundTruth`.

    Examples
    --------
    >>> sim = simulate(["canary"], rows=5_000, seed=1)
    >>> sim.ground_truth.problems[0].kind
    'stuck_rollout'
    """
    names = S.normalize_scenarios(scenarios)
    rows = _check_int(rows, "rows", MIN_ROWS)
    seed = _check_int(seed, "seed", 0)
    shift = "covariate_shift" in names
    rng = np.random.default_rng(seed)

    pop = draw_population(rng, rows, covariate_shift=shift)
    scores, approved = replay(pop)
    fraud = rng.random(pop.n) < fraud_probability(pop, covariate_shift=shift)
    retry = pop.retry_of >= 0
    fraud[retry] = fraud[pop.retry_of[retry]]  # a retry is the same transaction
    routing = route(pop, names, rng)
    shadow = (pop.component == S.ONLINE) & (routing.resolved != S.SHADOW) & (rng.random(pop.n) < SHADOW_SHARE)

    predictions = _predictions(pop, routing, scores, approved, fraud, shadow)
    idx = np.arange(pop.n)
    served_approved = approved[idx, routing.resolved].astype(np.float64)
    served_score = scores[idx, routing.resolved]
    attribution = {
        "rate:prediction=approved": replay_effects(
            "rate:prediction=approved", approved.astype(np.float64), served_approved,
            routing.probs, pop.region, pop.period, pop.entity),
        "mean:score": replay_effects(
            "mean:score", scores, served_score, routing.probs, pop.region, pop.period, pop.entity),
    }
    problems = planted_problems(names) + divergence_problems(pop, routing, approved, names)
    versions = tuple(
        {
            "version": v.name,
            "artifact_hash": v.artifact_hash,
            "feature_version": v.feature_version,
            "decision_threshold": MODELS[i].threshold,
            "approval_rate_on_all_inputs": float(approved[:, i].mean()),
        }
        for i, v in enumerate(S.VERSIONS)
    )
    truth = GroundTruth(
        scenarios=names,
        seed=seed,
        rows=rows,
        rows_written=predictions.height,
        periods={"baseline": S.BASELINE, "comparison": S.COMPARISON},
        versions=versions,
        covariates=COVARIATES,
        problems=tuple(problems),
        attribution=attribution,
    )
    return Simulation(predictions, deployments(names), artifacts(), truth)
