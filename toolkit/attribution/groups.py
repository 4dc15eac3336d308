"""Covariates the data cannot tell apart are reported as one group in the data drift by covariate.

The split of the data drift by covariate is each covariate's slopes times
the shift of its terms. When two covariates move together (temperature and
dew point across seasons, age and experience across years) the additive
model can put the same effect on either; their parts then come out large and
of opposite signs, with intervals that reflect only the sampling noise, not
that choice. Their sum is what the data identify. A covariate's
*contribution* is its terms times the slopes of one pooled least-squares fit
on the hash sample; covariates whose contributions correlate beyond
:data:`COLLINEAR` (in absolute value, rows weighted as they stand for) are
merged, transitively, and reported under the joined name ``"a + b"``.
"""

from __future__ import annotations

import numpy as np

from .models import pooled_fit, row_weights
from .sums import ModelSample

#: Covariates whose contributions correlate at least this much (absolute value) are one group.
COLLINEAR = 0.8


def contributions(groups: dict[str, list[int]], sample: ModelSample) -> np.ndarray:
    """Per sampled row and covariate, its terms times the slopes of the pooled fit (:func:`models.pooled_fit`)."""
    beta = pooled_fit(sample)
    return np.column_stack([sample.z[:, idx] @ beta[[1 + j for j in idx]] for idx in groups.values()])


def collinear_groups(groups: dict[str, list[int]], sample: ModelSample,
                     limit: float = COLLINEAR) -> tuple[dict[str, list[int]], dict[str, float]]:
    """``groups`` with the covariates the data cannot tell apart merged, and each merge's strongest correlation.

    Returns the new name -> term positions (in the order of each group's
    first covariate) and, per merged name, the largest absolute correlation
    that joined it.
    """
    names = list(groups)
    if len(names) < 2 or len(sample.y) < 3 or sample.z.shape[1] == 0:
        return dict(groups), {}
    w = row_weights(sample)
    S = contributions(groups, sample)
    S = S - (w @ S) / w.sum()
    cov = (S * w[:, None]).T @ S
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    ok = sd > 1e-12 * max(1.0, float(sd.max()))
    corr = np.zeros_like(cov)
    corr[np.ix_(ok, ok)] = cov[np.ix_(ok, ok)] / np.outer(sd[ok], sd[ok])
    root = list(range(len(names)))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if ok[i] and ok[j] and abs(corr[i, j]) >= limit:
                root[find(j)] = find(i)
    members: dict[int, list[int]] = {}
    for i in range(len(names)):
        members.setdefault(find(i), []).append(i)
    out: dict[str, list[int]] = {}
    strength: dict[str, float] = {}
    for ids in members.values():
        name = " + ".join(names[i] for i in ids)
        out[name] = sorted(j for i in ids for j in groups[names[i]])
        if len(ids) > 1:
            strength[name] = float(max(abs(corr[a, b]) for a in ids for b in ids if a < b))
    return out, strength
