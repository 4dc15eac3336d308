"""Ground truth: the exact replay effects and the list of planted problems."""

from __future__ import annotations

import datetime as dt

import numpy as np

from ..errors import InputError
from . import scenarios as S
from .population import Population
from .results import Problem, ReplayEffects
from .routing import Routing, routing_probabilities

PERIODS = ("baseline", "comparison")


def replay_effects(
    metric: str,
    replayed: np.ndarray,
    observed: np.ndarray,
    probs: np.ndarray,
    region: np.ndarray,
    period: np.ndarray,
    entity: np.ndarray,
) -> ReplayEffects:
    """Two-factor replay decomposition of a metric's shift between the weeks.

    Parameters
    ----------
    metric
        Name of the metric (e.g. ``"rate:prediction=approved"``).
    replayed
        ``(n, n_versions)``: the metric of each logged input under every version.
    observed
        ``(n,)``: the metric as logged (under the version that answered).
    probs
        ``(n, n_versions)``: true routing probabilities of each request.
    region, period, entity
        Codes per request (period 0 baseline, 1 comparison).

    Notes
    -----
    ``Pi_b(v | region)`` is the mean of the true routing probabilities over
    period b's requests in the region, and
    ``M(a, b) = mean_{i in a} sum_v Pi_b(v | region_i) f(x_i, v)``.
    """
    n_regions = len(S.REGIONS)
    pi = np.zeros((2, n_regions, probs.shape[1]))
    for p in (0, 1):
        for r in range(n_regions):
            sel = (period == p) & (region == r)
            if not sel.any():
                raise InputError(
                    f"no {PERIODS[p]} request in region {S.REGIONS[r]}: raise --rows "
                    "(at least a few thousand) so every region has traffic in both weeks"
                )
            pi[p, r] = probs[sel].mean(axis=0)
    m = np.zeros((2, 2))
    fitted = np.zeros((2, replayed.shape[0]))
    for b in (0, 1):
        fitted[b] = (replayed * pi[b, region]).sum(axis=1)
    for a in (0, 1):
        for b in (0, 1):
            m[a, b] = fitted[b, period == a].mean()
    obs = np.array([observed[period == p].mean() for p in (0, 1)])
    n = np.array([(period == p).sum() for p in (0, 1)])

    # sampling noise = (obs_B - M(B,B)) - (obs_A - M(A,A)); cluster-robust SE by entity
    own = fitted[period, np.arange(period.shape[0])]
    d = observed - own
    d = d - np.array([d[period == p].mean() for p in (0, 1)])[period]
    w = np.where(period == 1, 1.0 / n[1], -1.0 / n[0])
    per_entity = np.bincount(entity, weights=w * d)
    se = float(np.sqrt(np.sum(per_entity**2)))

    m_aa, m_ab, m_ba, m_bb = (float(x) for x in (m[0, 0], m[0, 1], m[1, 0], m[1, 1]))
    data = 0.5 * ((m_ba - m_aa) + (m_bb - m_ab))
    version = 0.5 * ((m_ab - m_aa) + (m_bb - m_ba))
    total = float(obs[1] - obs[0])
    routing = {
        PERIODS[p]: {
            S.REGIONS[r]: {S.VERSION_NAMES[v]: float(pi[p, r, v]) for v in range(probs.shape[1]) if pi[p, r, v] > 0}
            for r in range(n_regions)
        }
        for p in (0, 1)
    }
    return ReplayEffects(
        metric=metric,
        baseline=float(obs[0]),
        comparison=float(obs[1]),
        m_aa=m_aa,
        m_ab=m_ab,
        m_ba=m_ba,
        m_bb=m_bb,
        data_drift=data,
        version_drift=version,
        residual=0.0,
        sampling_noise=total - data - version,
        sampling_noise_se=se,
        n_baseline=int(n[0]),
        n_comparison=int(n[1]),
        routing=routing,
    )


def served_versions(component: int, region: int, start: dt.datetime, end: dt.datetime,
                    scenarios: tuple[str, ...]) -> tuple[str, ...]:
    """Versions with positive true routing probability in a scope and window.

    The window is probed every minute (plans change at whole minutes).
    """
    t = np.arange(S.seconds(start), S.seconds(end), 60.0)
    probs = routing_probabilities(t, np.full(t.shape, region), np.full(t.shape, component), scenarios)
    used = probs.max(axis=0) > 0
    return tuple(S.VERSION_NAMES[v] for v in range(len(S.VERSIONS)) if used[v])


def planted_problems(scenarios: tuple[str, ...]) -> list[Problem]:
    """Every problem the scenarios plant by design (retry divergence comes from the logs)."""
    out: list[Problem] = []
    end = S.DATA_END
    if "canary" in scenarios:
        eu = S.CANARY_REGION
        out.append(Problem(
            "stuck_rollout", "online", S.REGIONS[eu], None,
            served_versions(S.ONLINE, eu, S.CANARY_EXPECTED_END, end, scenarios), None,
            S.CANARY_EXPECTED_END, end, "canary",
            f"the 10% canary of v1.6 in eu (rollout_start {S.CANARY_START:%Y-%m-%d %H:%M}, actor "
            f"{S.CANARY_ACTOR}) was never completed; still split after its expected_end "
            f"{S.CANARY_EXPECTED_END:%Y-%m-%d %H:%M}",
        ))
    if "rollback" in scenarios:
        us, rb = S.REGIONS[S.ROLLBACK_REGION], S.ROLLBACK_AT
        out += [
            Problem("incomplete_rollback", "cache", us, None, ("v2.0",), None, rb, S.CACHE_FLUSH_AT, "rollback",
                    "after the rollback to v1.5 the us cache kept answering with v2.0's answers (fading, "
                    f"mean life {S.STALE_CACHE_MEAN_LIFE_H:g} h) until the cache_flush"),
            Problem("stale_cache", "cache", us, None, ("v2.0",), None, rb, S.CACHE_FLUSH_AT, "rollback",
                    "cache hits computed by the rolled-back v2.0 served after the rollback"),
            Problem("preprocessing_mismatch", "online", us, None, ("v1.5",), None, rb,
                    S.FEATURE_PIPELINE_FIXED_AT, "rollback",
                    "the us feature pipeline stayed on fp-4 (v2.0's features) after the rollback, so v1.5 "
                    "(expects fp-3) scored fp-4 features"),
            Problem("preprocessing_mismatch", "cache", us, None, ("v1.5",), None, rb,
                    S.FEATURE_PIPELINE_FIXED_AT, "rollback",
                    "new cache entries computed by v1.5 after the rollback used fp-4 features"),
            Problem("incomplete_rollback", "batch", us, None, ("v2.0",), None, rb, S.BATCH_FIXED_AT, "rollback",
                    "the nightly us batch job kept running v2.0 for two more nights after the rollback"),
            Problem("batch_online_divergence", "batch", us, None, ("v1.5", "v2.0"), None, rb, S.BATCH_FIXED_AT,
                    "rollback", "us batch scored with v2.0 while us online served v1.5"),
        ]
    if "config_mismatch" in scenarios:
        eu, at = S.REGIONS[S.CONFIG_REGION], S.CONFIG_CHANGE_AT
        canary = " (the canary instance eu-5 reports and loads v1.6 correctly)" if "canary" in scenarios else ""
        out += [
            Problem("artifact_mismatch", "online", eu, None, ("v1.4",), "v1.5", at, end, "config_mismatch",
                    "after the config change every eu serving instance reporting v1.5 loads v1.4's artifact"
                    + canary),
            Problem("unexpected_multi_version", "online", None, None, ("v1.4", "v1.5"), "v1.5", at, end,
                    "config_mismatch",
                    "service-wide, online traffic is answered by v1.4 (eu) besides the intended v1.5; "
                    "no deployment event declares v1.4"),
        ]
    if "experiment" in scenarios:
        ap = S.EXPERIMENT_REGION
        out.append(Problem(
            "abandoned_experiment", "online", S.REGIONS[ap], None,
            served_versions(S.ONLINE, ap, S.EXPERIMENT_EXPECTED_END, end, scenarios), None,
            S.EXPERIMENT_EXPECTED_END, end, "experiment",
            f"experiment {S.EXPERIMENT_NAME} (v1.5 control / v1.6 treatment, 50/50, actor "
            f"{S.EXPERIMENT_ACTOR}) still splits apac traffic after its expected_end "
            f"{S.EXPERIMENT_EXPECTED_END:%Y-%m-%d %H:%M}; no experiment_end",
        ))
    return out


def _cause(region: int, pair: tuple[int, int], scenarios: tuple[str, ...]) -> str:
    """The scenario whose plant lets two versions answer the same inputs."""
    versions = set(pair)
    if S.V16 in versions and region == S.EXPERIMENT_REGION and "experiment" in scenarios:
        return "experiment"
    if S.V16 in versions and region == S.CANARY_REGION and "canary" in scenarios:
        return "canary"
    if S.V20 in versions and "rollback" in scenarios:
        return "rollback"
    return "config_mismatch"


def divergence_problems(pop: Population, routing: Routing, approved: np.ndarray,
                        scenarios: tuple[str, ...]) -> list[Problem]:
    """Exact retries answered differently by different versions, per region and version pair."""
    retry = np.flatnonzero(pop.retry_of >= 0)
    orig = pop.retry_of[retry]
    v_r, v_o = routing.resolved[retry], routing.resolved[orig]
    pred_r = approved[retry, v_r]
    pred_o = approved[orig, v_o]
    hit = (v_r != v_o) & (pred_r != pred_o)
    out: list[Problem] = []
    if not hit.any():
        return out
    lo, hi = np.minimum(v_r, v_o), np.maximum(v_r, v_o)
    keys = sorted({(int(pop.region[i]), int(a), int(b)) for i, a, b in zip(retry[hit], lo[hit], hi[hit])})
    for region, a, b in keys:
        sel = hit & (pop.region[retry] == region) & (lo == a) & (hi == b)
        pairs = ((pop.region[retry] == region) & (lo == a) & (hi == b)).sum()
        t0 = float(pop.t[orig[sel]].min())
        t1 = float(pop.t[retry[sel]].max())
        start = S.DATA_START + dt.timedelta(milliseconds=round(t0 * 1000))
        last = S.DATA_START + dt.timedelta(milliseconds=round(t1 * 1000) + 1)
        scope = (pop.component == S.ONLINE) & (pop.region == region) & (pop.t >= t0) & (pop.t <= t1)
        out.append(Problem(
            "prediction_divergence", "online", S.REGIONS[region], None,
            (S.VERSION_NAMES[a], S.VERSION_NAMES[b]), None, start, last,
            _cause(region, (a, b), scenarios),
            f"{int(sel.sum())} of {int(pairs)} exact retries (same entity and inputs) answered by "
            f"{S.VERSION_NAMES[a]} and {S.VERSION_NAMES[b]} got different predictions",
            evidence={"pairs": int(pairs), "diverging": int(sel.sum()),
                      "disagreement_rate": float((approved[scope, a] != approved[scope, b]).mean())},
        ))
    return out
