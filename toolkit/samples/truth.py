"""Ground truth: the exact replay effects and the list of planted problems."""

from __future__ import annotations

import datetime as dt

import numpy as np

from ..errors import InputError
from . import scenarios as S
from .population import Population
from .results import Problem, ReplayEffects
from .routing import PLANTS, Routing, routing_probabilities

PERIODS = ("baseline", "comparison")


class ReplayAccumulator:
    """Exact replay decomposition of one metric's shift, accumulated day by day.

    Two passes over the same requests: :meth:`add_routing` (all days) gives
    ``Pi_b(v | region)``, the mean of the true routing probabilities over
    period b's requests in the region; :meth:`add_effects` (all days) then
    accumulates ``M(a, b) = mean_{i in a} sum_v Pi_b(v | region_i) f(x_i, v)``,
    the observed means and the per-customer sums behind the cluster-robust
    standard error of the sampling noise. Summation happens in the same order
    whether the days are kept in memory or drawn again, so both give the same
    numbers.

    Parameters
    ----------
    metric
        Name of the metric (e.g. ``"rate:prediction=approved"``).
    n_entities
        Size of the customer pool (for the per-customer sums).
    """

    def __init__(self, metric: str, n_entities: int) -> None:
        n_regions, n_versions = len(S.REGIONS), len(S.VERSIONS)
        self.metric = metric
        self._n_entities = n_entities
        self._pi_sum = np.zeros((2, n_regions, n_versions))
        self._pi_n = np.zeros((2, n_regions))
        self._pi: np.ndarray | None = None
        self._m_sum = np.zeros((2, 2))
        self._obs_sum = np.zeros(2)
        self._d_sum = np.zeros(2)
        self._seen = np.zeros(2)
        self._ent_wd = np.zeros(n_entities)
        self._ent_n = np.zeros((2, n_entities))

    def add_routing(self, probs: np.ndarray, region: np.ndarray, period: np.ndarray) -> None:
        """Pass 1: true routing probabilities ``(n, n_versions)`` of a batch of requests."""
        if self._pi is not None:
            raise RuntimeError("add_routing after add_effects: the routing pass must come first")
        key = period.astype(np.int64) * len(S.REGIONS) + region
        cells = 2 * len(S.REGIONS)
        for v in range(probs.shape[1]):
            self._pi_sum[:, :, v] += np.bincount(key, weights=probs[:, v], minlength=cells).reshape(2, -1)
        self._pi_n += np.bincount(key, minlength=cells).reshape(2, -1)

    def _routing(self) -> np.ndarray:
        if self._pi is None:
            empty = np.argwhere(self._pi_n == 0)
            if empty.size:
                p, r = empty[0]
                raise InputError(
                    f"no {PERIODS[p]} request in region {S.REGIONS[r]}: raise --rows "
                    "(at least a few thousand) so every region has traffic in both weeks"
                )
            self._pi = self._pi_sum / self._pi_n[:, :, None]
        return self._pi

    def add_effects(self, replayed: np.ndarray, observed: np.ndarray, region: np.ndarray,
                    period: np.ndarray, entity: np.ndarray) -> None:
        """Pass 2: the metric of each input under every version, and as logged."""
        pi = self._routing()
        n = self._pi_n.sum(axis=1)
        fitted = [(replayed * pi[b, region]).sum(axis=1) for b in (0, 1)]
        own = np.where(period == 1, fitted[1], fitted[0])
        d = observed - own
        w = np.where(period == 1, 1.0 / n[1], -1.0 / n[0])
        for p in (0, 1):
            sel = period == p
            for b in (0, 1):
                self._m_sum[p, b] += fitted[b][sel].sum()
            self._obs_sum[p] += observed[sel].sum()
            self._d_sum[p] += d[sel].sum()
            self._seen[p] += sel.sum()
            self._ent_n[p] += np.bincount(entity[sel], minlength=self._n_entities)
        self._ent_wd += np.bincount(entity, weights=w * d, minlength=self._n_entities)

    def result(self) -> ReplayEffects:
        """The replay effects once both passes have seen every request."""
        pi = self._routing()
        n = self._pi_n.sum(axis=1)
        if not np.array_equal(self._seen, n):
            raise RuntimeError("add_effects did not see the same requests as add_routing")
        m = self._m_sum / n[:, None]
        obs = self._obs_sum / n
        dbar = self._d_sum / n
        # per customer: sum_i w_i (d_i - dbar_period(i)); w = +1/n_B in B, -1/n_A in A
        per_entity = self._ent_wd + dbar[0] * self._ent_n[0] / n[0] - dbar[1] * self._ent_n[1] / n[1]
        se = float(np.sqrt(np.sum(per_entity**2)))
        m_aa, m_ab, m_ba, m_bb = (float(x) for x in (m[0, 0], m[0, 1], m[1, 0], m[1, 1]))
        data = 0.5 * ((m_ba - m_aa) + (m_bb - m_ab))
        version = 0.5 * ((m_ab - m_aa) + (m_bb - m_ba))
        total = float(obs[1] - obs[0])
        routing = {
            PERIODS[p]: {
                S.REGIONS[r]: {S.VERSION_NAMES[v]: float(pi[p, r, v]) for v in range(pi.shape[2]) if pi[p, r, v] > 0}
                for r in range(pi.shape[1])
            }
            for p in (0, 1)
        }
        # deliberate independent oracle: the exact replay split from the true routing probabilities, written
        # apart from toolkit.attribution (its estimators are tested against it); share no code with them.
        return ReplayEffects(
            metric=self.metric,
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


def _overdue_split(kind: str, region: int, expected_end: dt.datetime, scenario: str, scenarios: tuple[str, ...],
                   text: str) -> Problem:
    """An online split of ``region`` still in place from its ``expected_end`` to the end of the data."""
    end = S.DATA_END
    return Problem(kind, "online", S.REGIONS[region], None,
                   served_versions(S.ONLINE, region, expected_end, end, scenarios), None,
                   expected_end, end, scenario, text)


def planted_problems(scenarios: tuple[str, ...]) -> list[Problem]:
    """Every problem the scenarios plant by design (retry divergence comes from the logs)."""
    out: list[Problem] = []
    end = S.DATA_END
    if "canary" in scenarios:
        out.append(_overdue_split(
            "stuck_rollout", S.CANARY_REGION, S.CANARY_EXPECTED_END, "canary", scenarios,
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
        config_eu, at = S.REGIONS[S.CONFIG_REGION], S.CONFIG_CHANGE_AT
        canary = " (the canary instance eu-5 reports and loads v1.6 correctly)" if "canary" in scenarios else ""
        out += [
            Problem("artifact_mismatch", "online", config_eu, None, ("v1.4",), "v1.5", at, end, "config_mismatch",
                    "after the config change every eu serving instance reporting v1.5 loads v1.4's artifact"
                    + canary),
            Problem("unexpected_multi_version", "online", None, None, ("v1.4", "v1.5"), "v1.5", at, end,
                    "config_mismatch",
                    "service-wide, online traffic is answered by v1.4 (eu) besides the intended v1.5; "
                    "no deployment event declares v1.4"),
        ]
    if "experiment" in scenarios:
        out.append(_overdue_split(
            "abandoned_experiment", S.EXPERIMENT_REGION, S.EXPERIMENT_EXPECTED_END, "experiment", scenarios,
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


class CostAccumulator:
    """Exact replay cost of each planted serving problem, per window.

    ``cost_p = (1/N) sum_{i affected} [f(x_i, v_i) - sum_w p_i^-p(w) f(x_i, w)]``
    over a window's N requests: the metric as served minus the metric with
    plant ``p`` removed and every other thing unchanged. The affected
    requests are those whose routing probabilities the plant changes
    (:func:`routing_probabilities` with ``fixed={p}``); each is replayed
    with the version that really answered it (``v_i``) and with the routing
    it would have had without the plant. Every other request keeps its
    answer, so the truth is the cost of *this* traffic's off-intent rows,
    the quantity vdrift's conditional intervals are about. ``all`` removes
    every plant at once (the metric served as intended).
    """

    def __init__(self, metrics: tuple[str, ...], scenarios: tuple[str, ...]) -> None:
        self.metrics = metrics
        self.scenarios = scenarios
        self.plants = tuple(p for p in PLANTS if p in scenarios)
        self._sum = {m: {p: np.zeros(2) for p in self.plants + ("all",)} for m in metrics}
        self._n = np.zeros(2)

    def add(self, pop: Population, probs: np.ndarray, resolved: np.ndarray,
            replayed: dict[str, np.ndarray]) -> None:
        """One day: its requests' routing probabilities, answering versions and every version's metric value."""
        counted = probs.sum(axis=1) > 0
        period = pop.period
        idx = np.arange(pop.n)
        for p in (0, 1):
            self._n[p] += (counted & (period == p)).sum()
        for plant in self.plants + ("all",):
            fixed = set(self.plants) if plant == "all" else {plant}
            without = routing_probabilities(pop.t, pop.region, pop.component, self.scenarios, fixed)
            affected = np.abs(probs - without).max(axis=1) > 0
            for m in self.metrics:
                values = replayed[m]
                cost = np.where(affected, values[idx, resolved] - (without * values).sum(axis=1), 0.0)
                for p in (0, 1):
                    self._sum[m][plant][p] += cost[counted & (period == p)].sum()

    def result(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{metric: {plant or 'all': {'baseline': cost, 'comparison': cost}}}``."""
        return {m: {plant: {PERIODS[p]: float(v[p] / self._n[p]) if self._n[p] else 0.0 for p in (0, 1)}
                    for plant, v in per.items()}
                for m, per in self._sum.items()}


class DivergenceAccumulator:
    """Exact retries answered differently by different versions, accumulated day by day.

    Retries stay within their day, so each day's pairs are complete. Per
    region and version pair it counts the retry pairs, those with different
    predictions and their time range, and the replay disagreement rate of
    the two versions over the region's online inputs (the whole fortnight).
    """

    def __init__(self) -> None:
        shape = (len(S.REGIONS), len(S.VERSIONS), len(S.VERSIONS))
        self.pairs = np.zeros(shape, np.int64)
        self.diverging = np.zeros(shape, np.int64)
        self.first = np.full(shape, np.inf)
        self.last = np.full(shape, -np.inf)
        self.disagree = np.zeros(shape, np.int64)
        self.online = np.zeros(len(S.REGIONS), np.int64)

    def add(self, pop: Population, routing: Routing, approved: np.ndarray) -> None:
        """Add one day: online replay disagreements per version pair, and retries answered by two versions."""
        n_versions = len(S.VERSIONS)
        online = pop.component == S.ONLINE
        for r in range(len(S.REGIONS)):
            sel = online & (pop.region == r)
            self.online[r] += int(sel.sum())
            a = approved[sel]
            for i in range(n_versions):
                for j in range(i + 1, n_versions):
                    self.disagree[r, i, j] += int((a[:, i] != a[:, j]).sum())
        retry = np.flatnonzero(pop.retry_of >= 0)
        orig = pop.retry_of[retry]
        v_r, v_o = routing.resolved[retry], routing.resolved[orig]
        crossing = v_r != v_o
        hit = crossing & (approved[retry, v_r] != approved[orig, v_o])
        lo, hi = np.minimum(v_r, v_o), np.maximum(v_r, v_o)
        region = pop.region[retry]
        np.add.at(self.pairs, (region[crossing], lo[crossing], hi[crossing]), 1)
        np.add.at(self.diverging, (region[hit], lo[hit], hi[hit]), 1)
        np.minimum.at(self.first, (region[hit], lo[hit], hi[hit]), pop.t[orig[hit]])
        np.maximum.at(self.last, (region[hit], lo[hit], hi[hit]), pop.t[retry[hit]])

    def problems(self, scenarios: tuple[str, ...]) -> list[Problem]:
        """The prediction-divergence problems the counted pairs make."""
        out: list[Problem] = []
        for region, a, b in np.argwhere(self.diverging > 0):
            start = S.DATA_START + dt.timedelta(milliseconds=round(self.first[region, a, b] * 1000))
            last = S.DATA_START + dt.timedelta(milliseconds=round(self.last[region, a, b] * 1000) + 1)
            n_div, n_pairs = int(self.diverging[region, a, b]), int(self.pairs[region, a, b])
            out.append(Problem(
                "prediction_divergence", "online", S.REGIONS[region], None,
                (S.VERSION_NAMES[a], S.VERSION_NAMES[b]), None, start, last,
                _cause(int(region), (int(a), int(b)), scenarios),
                f"{n_div} of {n_pairs} exact retries (same entity and inputs) answered by "
                f"{S.VERSION_NAMES[a]} and {S.VERSION_NAMES[b]} got different predictions",
                evidence={"pairs": n_pairs, "diverging": n_div,
                          "disagreement_rate": float(self.disagree[region, a, b] / self.online[region])},
            ))
        return out
