"""Who sends requests, when, and with which inputs.

The population is drawn in a few vectorised numpy passes (no Python loop per
row): request times with a regional daily cycle, a nightly batch window,
recurring customers (entities) per region with their own account age and
preferred channel, per-request amount and merchant category, and exact
retries (same entity, same inputs, a few seconds later).

Regions have different input distributions, so anything routed by region is
confounded with the inputs, as in real services.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenarios import BATCH_WINDOW_H, COMPARISON, DATA_END, DATA_START, REGIONS, seconds

MERCHANTS: tuple[str, ...] = ("grocery", "electronics", "travel", "gaming", "fashion")
CHANNELS: tuple[str, ...] = ("web", "app", "pos")

#: Share of requests per region, baseline week and (with covariate_shift) comparison week.
REGION_SHARE = np.array([0.45, 0.35, 0.20])
REGION_SHARE_SHIFTED = np.array([0.41, 0.33, 0.26])
#: UTC offset of each region's local day (peak traffic at 14:00 local time).
REGION_UTC_OFFSET_H = np.array([1.0, -5.0, 8.0])
#: log-amount location and scale per region (amounts in EUR-equivalent).
AMOUNT_MU = np.array([3.55, 3.95, 3.75])
AMOUNT_SIGMA = np.array([0.85, 1.0, 1.1])
#: log-amount offset per merchant category.
AMOUNT_MERCHANT_OFFSET = np.array([-0.35, 0.45, 0.65, -0.15, 0.1])
AMOUNT_SHIFT = 0.10
#: merchant category probabilities per region (rows) and the comparison-week shift.
MERCHANT_P = np.array(
    [
        [0.36, 0.15, 0.14, 0.09, 0.26],
        [0.30, 0.22, 0.18, 0.12, 0.18],
        [0.24, 0.20, 0.10, 0.31, 0.15],
    ]
)
MERCHANT_SHIFT_TO = np.array([0.18, 0.30, 0.12, 0.28, 0.12])
MERCHANT_SHIFT_WEIGHT = 0.20
#: channel probabilities per region.
CHANNEL_P = np.array([[0.35, 0.45, 0.20], [0.47, 0.33, 0.20], [0.20, 0.70, 0.10]])
CHANNEL_STICKINESS = 0.8
#: account age (days) ~ Gamma(shape, scale) per region.
AGE_SHAPE = np.array([2.0, 2.2, 1.4])
AGE_SCALE = np.array([420.0, 520.0, 300.0])
#: With covariate_shift, this share of comparison-week requests comes from
#: accounts opened during a sign-up campaign (age 5-60 days, mostly app).
NEW_ACCOUNT_SHARE = 0.06
NEW_ACCOUNT_CHANNEL_P = np.array([0.25, 0.70, 0.05])

BATCH_SHARE = 0.08
CACHE_SHARE = 0.15
RETRY_SHARE = 0.05
REQUESTS_PER_ENTITY = 6.0
LABEL_DELAY_MEAN_DAYS = 4.0

_DAY = 86400.0
_N_DAYS = int(round((DATA_END - DATA_START).total_seconds() / _DAY))
_COMPARISON_START = seconds(COMPARISON[0])


@dataclass(frozen=True)
class Population:
    """The logged inputs of every request (before routing and scoring).

    All arrays have one entry per request, sorted by time. Codes index
    :data:`~toolkit.samples.scenarios.REGIONS`, :data:`MERCHANTS`,
    :data:`CHANNELS` and the component list (0 online, 1 cache, 2 batch).
    """

    t: np.ndarray  # seconds since DATA_START, float64
    period: np.ndarray  # 0 baseline, 1 comparison
    region: np.ndarray
    component: np.ndarray
    entity: np.ndarray  # global entity index
    entity_u: np.ndarray  # the entity's uniform draw (sticky experiment arm)
    amount: np.ndarray
    merchant: np.ndarray
    channel: np.ndarray
    age_days: np.ndarray
    retry_of: np.ndarray  # index of the original request, -1 if not a retry
    label_seen: np.ndarray  # bool: the label arrived before LABELS_AS_OF

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.t.shape[0])


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of ``probs`` (rows sum to 1), vectorised."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(int(probs.shape[0]))[:, None]
    return np.minimum((u >= cum).sum(axis=1), probs.shape[1] - 1)


def _time_of_day(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """Seconds into the UTC day, from each region's daily traffic cycle."""
    local_h = np.arange(24) + 0.5
    weights = 0.25 + np.exp(-((local_h - 14.0) ** 2) / (2 * 4.0**2))
    cum = np.cumsum(weights / weights.sum())
    local_hour = np.searchsorted(cum, rng.random(region.shape[0]), side="right")
    local_hour = np.minimum(local_hour, 23)
    utc_hour = (local_hour - REGION_UTC_OFFSET_H[region]) % 24
    return (utc_hour + rng.random(region.shape[0])) * 3600.0


@dataclass(frozen=True)
class Entities:
    """The customer pool shared by all days: one entry per customer."""

    region: np.ndarray
    is_new: np.ndarray  # opened during the comparison-week campaign (covariate_shift)
    age_days: np.ndarray
    channel: np.ndarray  # preferred channel
    u: np.ndarray  # the customer's own uniform draw (sticky experiment arm)
    groups: tuple[tuple[int, np.ndarray], ...]  # per (region, is_new): first index and cumulative weights

    @property
    def n(self) -> int:
        """Number of rows."""
        return int(self.region.shape[0])

    def pick(self, rng: np.random.Generator, region: np.ndarray, use_new: np.ndarray) -> np.ndarray:
        """A customer for each request of the given region (heavy users more often)."""
        out = np.empty(region.shape[0], np.int64)
        u = rng.random(int(region.shape[0]))
        n_regions = len(REGIONS)
        for g, (first, cum) in enumerate(self.groups):  # a loop over (region, new) groups, not rows
            sel = (region == g % n_regions) & (use_new == (g >= n_regions))
            if cum.size and sel.any():
                out[sel] = first + np.minimum(np.searchsorted(cum, u[sel], side="right"), cum.size - 1)
        return out


def draw_entities(rng: np.random.Generator, rows: int, *, covariate_shift: bool) -> Entities:
    """The customer pool: about one customer per six requests in each region."""
    n_regions = len(REGIONS)
    pool = np.maximum(20, np.ceil(rows * REGION_SHARE / REQUESTS_PER_ENTITY)).astype(np.int64)
    if covariate_shift:
        new_pool = np.maximum(10, np.ceil(pool * 0.3)).astype(np.int64)
    else:
        new_pool = np.zeros(n_regions, np.int64)
    sizes = np.concatenate([pool, new_pool])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    group = np.repeat(np.arange(2 * n_regions), sizes)
    region = group % n_regions
    is_new = group >= n_regions
    n = int(offsets[-1])
    weight = rng.gamma(0.7, 1.0, n)
    age = np.where(is_new, rng.uniform(5.0, 60.0, n), rng.gamma(AGE_SHAPE[region], AGE_SCALE[region]))
    channel = _categorical(rng, np.where(is_new[:, None], NEW_ACCOUNT_CHANNEL_P, CHANNEL_P[region]))
    u = rng.random(n)
    groups = []
    for g in range(2 * n_regions):
        w = weight[offsets[g] : offsets[g + 1]]
        groups.append((int(offsets[g]), np.cumsum(w) / w.sum() if w.size else w))
    return Entities(region.astype(np.int8), is_new, np.round(age, 1), channel.astype(np.int8), u, tuple(groups))


def day_sizes(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Requests per UTC day (a multinomial split of ``rows`` over the 14 days)."""
    return rng.multinomial(rows, np.full(_N_DAYS, 1.0 / _N_DAYS))


def draw_day(
    rng: np.random.Generator, day: int, rows: int, entities: Entities, *, covariate_shift: bool
) -> Population:
    """Draw one UTC day's ``rows`` requests (retries included), sorted by time.

    Parameters
    ----------
    rng
        The day's own generator (so days can be drawn independently and again).
    day
        Day index, 0 = 2026-11-02.
    rows
        Requests that day, retries included (shadow rows come on top).
    entities
        The customer pool shared by all days.
    covariate_shift
        Shift the comparison week's inputs (scenario ``covariate_shift``).
    """
    n_retry = int(round(RETRY_SHARE * rows))
    n = rows - n_retry
    day_start = day * _DAY
    comparison = day_start >= _COMPARISON_START
    shift = covariate_shift and comparison

    # where, which component, when
    shares = REGION_SHARE_SHIFTED if shift else REGION_SHARE
    region = _categorical(rng, np.broadcast_to(shares, (n, shares.size)))
    u_comp = rng.random(n)
    cache_below = BATCH_SHARE + (1 - BATCH_SHARE) * CACHE_SHARE
    component = np.where(u_comp < BATCH_SHARE, 2, np.where(u_comp < cache_below, 1, 0))
    tod = _time_of_day(rng, region)
    batch_tod = (BATCH_WINDOW_H[0] + (BATCH_WINDOW_H[1] - BATCH_WINDOW_H[0]) * rng.random(n)) * 3600.0
    t = day_start + np.where(component == 2, batch_tod, tod)

    # who, with which inputs
    use_new = (rng.random(n) < NEW_ACCOUNT_SHARE) if shift else np.zeros(n, bool)
    entity = entities.pick(rng, region, use_new)
    sticks = rng.random(n) < CHANNEL_STICKINESS  # drawn before the categories: the order of the random stream
    channel = np.where(sticks, entities.channel[entity], _categorical(rng, CHANNEL_P[region]))
    merchant_p = MERCHANT_P[region]
    if shift:
        merchant_p = (1 - MERCHANT_SHIFT_WEIGHT) * merchant_p + MERCHANT_SHIFT_WEIGHT * MERCHANT_SHIFT_TO
    merchant = _categorical(rng, merchant_p)
    mu = AMOUNT_MU[region] + AMOUNT_MERCHANT_OFFSET[merchant] + (AMOUNT_SHIFT if shift else 0.0)
    amount = np.maximum(np.round(np.exp(mu + AMOUNT_SIGMA[region] * rng.standard_normal(n)), 2), 0.5)
    label_delay = rng.exponential(LABEL_DELAY_MEAN_DAYS * _DAY, n)

    # exact retries of online requests: same entity and inputs, seconds later, the same day
    eligible = np.flatnonzero((component == 0) & (t < day_start + _DAY - 600.0))
    orig = np.sort(rng.choice(eligible, size=min(n_retry, eligible.size), replace=False))
    retry_t = t[orig] + 2.0 + rng.exponential(25.0, orig.size)
    retry_t = np.minimum(retry_t, day_start + _DAY - 0.001)

    all_t = np.floor(np.concatenate([t, retry_t]) * 1000.0) / 1000.0  # logged at millisecond precision
    order = np.argsort(all_t, kind="stable")
    src = np.concatenate([np.arange(n), orig])[order]  # index into the day's originals
    is_retry = np.concatenate([np.zeros(n, bool), np.ones(orig.size, bool)])[order]
    pos_of_original = np.empty(n, np.int64)
    pos_of_original[src[~is_retry]] = np.flatnonzero(~is_retry)
    t_sorted = all_t[order]
    return Population(
        t=t_sorted,
        period=np.full(src.size, int(comparison), np.int8),
        region=region[src].astype(np.int8),
        component=np.where(is_retry, 0, component[src]).astype(np.int8),
        entity=entity[src],
        entity_u=entities.u[entity[src]],
        amount=amount[src],
        merchant=merchant[src].astype(np.int8),
        channel=channel[src].astype(np.int8),
        age_days=entities.age_days[entity[src]],
        retry_of=np.where(is_retry, pos_of_original[src], -1),
        label_seen=(t[src] + label_delay[src]) <= seconds(DATA_END),
    )
