"""Which version really answers each request, and what the logs then say.

The true routing probabilities depend only on (region, component, time), so
``Pi_t(v | X)`` of docs/methods.md is known exactly for every request.
Each request's resolved version (the artifact actually loaded) is drawn from
them; experiment arms are sticky per customer (the draw uses the entity's
own uniform number), which leaves the probabilities unchanged.

The logged fields follow from the resolved version and the plants: the
reported label (wrong in the config_mismatch region), the feature version
(wrong while the feature pipeline lags after the rollback), the instance, the
experiment and arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import scenarios as S
from .population import Population


@dataclass(frozen=True)
class Routing:
    """Per-request routing truth and logged version fields (arrays of length n)."""

    probs: np.ndarray  # (n, n_versions) true routing probabilities (shadow rows: none)
    resolved: np.ndarray  # index of the version that answered
    reported: np.ndarray  # index of the version the server reported
    feature_version: np.ndarray  # index into FEATURE_VERSIONS
    instance: np.ndarray  # index into instance_names
    instance_names: tuple[str, ...]
    in_experiment: np.ndarray  # bool


def instance_names() -> tuple[str, ...]:
    """All instance ids: serving instances, the canary, cache, batch and shadow."""
    names: list[str] = []
    for r in range(len(S.REGIONS)):
        names.extend(S.SERVING_INSTANCES[r])
    names.append(S.CANARY_INSTANCE)
    for region in S.REGIONS:
        names.extend((f"{region}-cache", f"{region}-batch", f"{region}-shadow"))
    return tuple(names)


def _window(t: np.ndarray, start, end=None) -> np.ndarray:
    m = t >= S.seconds(start)
    if end is not None:
        m &= t < S.seconds(end)
    return m


#: The scenarios whose plant is a serving problem with a cost (the counterfactual "as intended" of
#: :func:`routing_probabilities` with ``fixed``).
PLANTS: tuple[str, ...] = ("canary", "rollback", "config_mismatch", "experiment")


def routing_probabilities(
    t: np.ndarray, region: np.ndarray, component: np.ndarray, scenarios: tuple[str, ...],
    fixed: frozenset[str] | set[str] = frozenset(),
) -> np.ndarray:
    """True probability of each resolved version for (time, region, component).

    With ``fixed``, the plants of those scenarios are removed, every other
    thing unchanged: what the deployment history intended (vdrift's rule for
    an overdue split, docs/causes.md): the stuck canary completes at its
    expected end, the abandoned experiment ends at its expected end with the
    control serving, the rollback reaches the cache and the batch job at
    once, and the eu instances load the artifact they report.

    Parameters
    ----------
    t
        Seconds since the start of the data.
    region, component
        Codes (see :mod:`toolkit.samples.scenarios`); component 0 online,
        1 cache, 2 batch.
    scenarios
        Normalised scenario names.

    Returns
    -------
    numpy.ndarray
        ``(n, n_versions)``; every row sums to 1.
    """
    n = t.shape[0]
    probs = np.zeros((n, len(S.VERSIONS)))
    online, cache, batch = component == S.ONLINE, component == S.CACHE, component == S.BATCH
    base = np.full(n, S.BASE)
    if "config_mismatch" in scenarios and "config_mismatch" not in fixed:
        # eu serving instances load v1.4's artifact after the config change
        base = np.where(online & (region == S.CONFIG_REGION) & _window(t, S.CONFIG_CHANGE_AT), S.V14, base)
    probs[np.arange(n), base] = 1.0
    if "canary" in scenarios:
        m = online & (region == S.CANARY_REGION) & _window(t, S.CANARY_START)
        share = S.CANARY_PCT / 100.0
        probs[m] *= 1.0 - share
        probs[m, S.V16] += share
        if "canary" in fixed:
            done = online & (region == S.CANARY_REGION) & _window(t, S.CANARY_EXPECTED_END)
            probs[done] = 0.0
            probs[done, S.V16] = 1.0
    if "experiment" in scenarios:
        end = S.EXPERIMENT_EXPECTED_END if "experiment" in fixed else None
        m = online & (region == S.EXPERIMENT_REGION) & _window(t, S.EXPERIMENT_START, end)
        share = S.EXPERIMENT_PCT / 100.0
        probs[m] *= 1.0 - share
        probs[m, S.V16] += share
    if "rollback" in scenarios:
        us = region == S.ROLLBACK_REGION
        deployed = us & _window(t, S.ROLLBACK_DEPLOY, S.ROLLBACK_AT)
        batch_end = S.ROLLBACK_AT if "rollback" in fixed else S.BATCH_FIXED_AT
        for m in (deployed & (online | cache), us & batch & _window(t, S.ROLLBACK_DEPLOY, batch_end)):
            probs[m] = 0.0
            probs[m, S.V20] = 1.0
        stale = us & cache & _window(t, S.ROLLBACK_AT, S.CACHE_FLUSH_AT)
        if "rollback" in fixed:
            stale &= False
        age_h = (t[stale] - S.seconds(S.ROLLBACK_AT)) / 3600.0
        p_old = np.exp(-age_h / S.STALE_CACHE_MEAN_LIFE_H)
        probs[stale] = 0.0
        probs[stale, S.V20] = p_old
        probs[stale, S.V15] = 1.0 - p_old
    return probs


def route(pop: Population, scenarios: tuple[str, ...], rng: np.random.Generator) -> Routing:
    """Draw the resolved version of every request and derive the logged fields."""
    probs = routing_probabilities(pop.t, pop.region, pop.component, scenarios)
    in_experiment = np.zeros(pop.n, bool)
    if "experiment" in scenarios:
        in_experiment = (
            (pop.component == S.ONLINE) & (pop.region == S.EXPERIMENT_REGION) & _window(pop.t, S.EXPERIMENT_START)
        )
    u = rng.random(pop.n)
    u = np.where(in_experiment, pop.entity_u, u)  # sticky arms: the customer's own draw
    cum = np.cumsum(probs, axis=1)
    resolved = np.minimum((u[:, None] >= cum).sum(axis=1), len(S.VERSIONS) - 1)
    # never pick a zero-probability version through rounding at the top end
    resolved = np.where(probs[np.arange(pop.n), resolved] > 0, resolved, probs.argmax(axis=1))

    reported = resolved.copy()
    if "config_mismatch" in scenarios:
        wrong = (pop.component == S.ONLINE) & (pop.region == S.CONFIG_REGION) & (resolved == S.V14)
        reported[wrong & _window(pop.t, S.CONFIG_CHANGE_AT)] = S.BASE

    expected_fv = np.array([S.FEATURE_VERSIONS.index(v.feature_version) for v in S.VERSIONS])
    fp3, fp4 = S.FEATURE_VERSIONS.index("fp-3"), S.FEATURE_VERSIONS.index("fp-4")
    feature_version = np.full(pop.n, fp3)
    if "rollback" in scenarios:
        # the us pipeline produced v2.0's features from the deploy until it was fixed
        lagging = (pop.region == S.ROLLBACK_REGION) & _window(pop.t, S.ROLLBACK_DEPLOY, S.FEATURE_PIPELINE_FIXED_AT)
        feature_version[lagging] = fp4
    # outside the lag, rows carry the features their version expects
    feature_version = np.where(feature_version == fp4, fp4, expected_fv[resolved])

    names = instance_names()
    index = {name: i for i, name in enumerate(names)}
    serving_first = np.array([index[S.SERVING_INSTANCES[r][0]] for r in range(len(S.REGIONS))])
    serving_count = np.array([len(S.SERVING_INSTANCES[r]) for r in range(len(S.REGIONS))])
    pick = np.floor(rng.random(pop.n) * serving_count[pop.region]).astype(np.int64)
    instance = serving_first[pop.region] + pick
    if "canary" in scenarios:
        canary = (pop.component == S.ONLINE) & (pop.region == S.CANARY_REGION) & (resolved == S.V16)
        instance = np.where(canary, index[S.CANARY_INSTANCE], instance)
    cache_idx = np.array([index[f"{r}-cache"] for r in S.REGIONS])
    batch_idx = np.array([index[f"{r}-batch"] for r in S.REGIONS])
    instance = np.where(pop.component == S.CACHE, cache_idx[pop.region], instance)
    instance = np.where(pop.component == S.BATCH, batch_idx[pop.region], instance)
    return Routing(
        probs=probs,
        resolved=resolved,
        reported=reported,
        feature_version=feature_version,
        instance=instance,
        instance_names=names,
        in_experiment=in_experiment,
    )
