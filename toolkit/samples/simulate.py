"""Run the simulator in memory: logs, history, registry and ground truth."""

from __future__ import annotations

import datetime as dt
import operator
from dataclasses import dataclass
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import polars as pl

from ..errors import InputError
from . import scenarios as S
from .history import artifacts, deployments
from .models import MODELS, fraud_probability, replay
from .population import CHANNELS, MERCHANTS, Entities, Population, day_sizes, draw_day, draw_entities
from .results import GroundTruth
from .routing import Routing, route
from .truth import CostAccumulator, DivergenceAccumulator, ReplayAccumulator, planted_problems

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
_EPOCH_MS = int(S.DATA_START.replace(tzinfo=dt.UTC).timestamp() * 1000)


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
        """The ground truth's summary."""
        return self.ground_truth.summary()


def _check_int(value: Any, name: str, minimum: int) -> int:
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


@dataclass(frozen=True)
class Day:
    """Everything drawn for one UTC day."""

    index: int
    pop: Population
    scores: np.ndarray
    approved: np.ndarray
    fraud: np.ndarray
    routing: Routing
    shadow: np.ndarray


def _draw(seed: int, day: int, rows: int, entities: Entities, names: tuple[str, ...]) -> Day:
    """Draw one day from its own random stream (so any day can be drawn again)."""
    shift = "covariate_shift" in names
    rng = np.random.default_rng([seed, 2, day])
    pop = draw_day(rng, day, rows, entities, covariate_shift=shift)
    scores, approved = replay(pop)
    fraud = rng.random(pop.n) < fraud_probability(pop, covariate_shift=shift)
    retry = pop.retry_of >= 0
    fraud[retry] = fraud[pop.retry_of[retry]]  # a retry is the same transaction
    routing = route(pop, names, rng)
    shadow = (pop.component == S.ONLINE) & (routing.resolved != S.SHADOW) & (rng.random(pop.n) < SHADOW_SHARE)
    return Day(day, pop, scores, approved, fraud, routing, shadow)


def _predictions(day: Day, id_offset: int) -> pl.DataFrame:
    pop, routing, scores = day.pop, day.routing, day.scores
    approved, fraud, shadow = day.approved, day.fraud, day.shadow
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
            "request_id": _prefixed("r", src + id_offset, 9),
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


class Run:
    """One simulation, drawn day by day.

    Pass 1 (:meth:`routing_pass`) feeds every day's true routing
    probabilities to the replay accumulators; pass 2 (:meth:`days`) yields
    each day with its predictions frame while accumulating the effects and
    the retry divergence. With ``keep=True`` the days of pass 1 are kept in
    memory for pass 2; otherwise each day is drawn again from its own random
    stream, so memory stays at one day (for 100M-row samples).
    """

    def __init__(self, scenarios: str | Iterable[str], rows: int, seed: int, *, keep: bool) -> None:
        self.scenarios = S.normalize_scenarios(scenarios)
        self.rows = _check_int(rows, "rows", MIN_ROWS)
        self.seed = _check_int(seed, "seed", 0)
        shift = "covariate_shift" in self.scenarios
        self.sizes = day_sizes(np.random.default_rng([self.seed, 0]), self.rows)
        self.entities = draw_entities(np.random.default_rng([self.seed, 1]), self.rows, covariate_shift=shift)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.acc = {m: ReplayAccumulator(m, self.entities.n) for m in METRICS}
        self.divergence = DivergenceAccumulator()
        self.costs = CostAccumulator(METRICS, self.scenarios)
        self.approval_counts = np.zeros(len(S.VERSIONS))
        self.rows_written = 0
        self._keep = keep
        self._kept: list[Day] = []
        self._passed = False

    def _day(self, d: int) -> Day:
        return _draw(self.seed, d, int(self.sizes[d]), self.entities, self.scenarios)

    def routing_pass(self) -> None:
        """First pass over the days: the routing probabilities the replay truth needs."""
        for d in range(self.sizes.size):
            day = self._day(d)
            for acc in self.acc.values():
                acc.add_routing(day.routing.probs, day.pop.region, day.pop.period)
            if self._keep:
                self._kept.append(day)
        self._passed = True

    def days(self) -> Iterator[tuple[Day, pl.DataFrame]]:
        """Second pass: each day and its prediction rows, adding the day to the replay truth."""
        if not self._passed:
            self.routing_pass()
        for d in range(self.sizes.size):
            day = self._kept[d] if self._keep else self._day(d)
            pop, idx = day.pop, np.arange(day.pop.n)
            served = day.routing.resolved
            self.acc[METRICS[0]].add_effects(day.approved.astype(np.float64),
                                             day.approved[idx, served].astype(np.float64),
                                             pop.region, pop.period, pop.entity)
            self.acc[METRICS[1]].add_effects(day.scores, day.scores[idx, served], pop.region, pop.period, pop.entity)
            self.divergence.add(pop, day.routing, day.approved)
            self.costs.add(pop, day.routing.probs, day.routing.resolved, {METRICS[0]: day.approved.astype(np.float64),
                                                    METRICS[1]: day.scores})
            self.approval_counts += day.approved.sum(axis=0)
            frame = _predictions(day, int(self.offsets[d]))
            self.rows_written += frame.height
            yield day, frame
        self._kept = []

    def ground_truth(self) -> GroundTruth:
        """The ground truth, once :meth:`days` has been consumed."""
        problems = planted_problems(self.scenarios) + self.divergence.problems(self.scenarios)
        versions = tuple(
            {
                "version": v.name,
                "artifact_hash": v.artifact_hash,
                "feature_version": v.feature_version,
                "decision_threshold": MODELS[i].threshold,
                "approval_rate_on_all_inputs": float(self.approval_counts[i] / self.rows),
            }
            for i, v in enumerate(S.VERSIONS)
        )
        return GroundTruth(
            scenarios=self.scenarios,
            seed=self.seed,
            rows=self.rows,
            rows_written=self.rows_written,
            periods={"baseline": S.BASELINE, "comparison": S.COMPARISON},
            versions=versions,
            covariates=COVARIATES,
            problems=tuple(problems),
            attribution={m: acc.result() for m, acc in self.acc.items()},
            problem_costs=self.costs.result(),
        )


def simulate(
    scenarios: str | Iterable[str] = ("all",),
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
        shadow rows come on top (about 4%).
    seed
        Seed of the random generator: the same seed, rows and scenarios give
        the same sample, bit for bit.

    Returns
    -------
    Simulation
        Predictions, deployments and artifacts as polars frames, and the
        :class:`~toolkit.samples.results.GroundTruth`. Everything is held in
        memory (about 350 bytes per row); :func:`~toolkit.samples.generate`
        writes larger samples one day at a time.

    Examples
    --------
    >>> sim = simulate(["canary"], rows=5_000, seed=1)
    >>> sim.ground_truth.problems[0].kind
    'stuck_rollout'
    """
    run = Run(scenarios, rows, seed, keep=True)
    frames = [frame for _, frame in run.days()]
    predictions = pl.concat(frames, how="vertical")
    return Simulation(predictions, deployments(run.scenarios), artifacts(), run.ground_truth())
