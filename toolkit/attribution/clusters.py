"""Sticky experiment arms: replicate groups hashed from the entity where a version answers an entity.

An experiment that assigns its arms by a hash of the user (``entity_id``)
serves all of a user's requests with one version. The rows a version served
are then a cluster sample of users, and when a user's requests look alike a
bootstrap of request-id groups understates the variance. Routing per request
(a canary's draw, an arm hashed from the request id) is a sample of requests,
and there groups of whole users would overstate it. So the design is read
from the data, on the model sample:

* the **clustered rows** are the experiment rows that name an entity
  (:data:`CLUSTERED_SQL`): ``experiment`` and ``entity_id`` both logged;
* per (window, segment), an entity with ``k >= 2`` sampled clustered rows
  would see more than one version with probability ``1 - sum_v p_v^k``
  under routing per request (``p`` the versions' shares of the segment's
  clustered rows). The arms are **sticky** when at least
  :data:`MIN_EXPECTED` such entities are expected to see several versions
  and at most :data:`STICKY_RATIO` of that number did.

When the arms are sticky, every clustered row's replicate group is the low
bits of ``md5(entity_id)``'s key instead of its request key's
(:func:`group_key_sql`): a group then holds whole entities, and the
bootstrap reweights them as the routing drew them. Other rows keep their
request-id groups. The key is the request key's function
(:func:`toolkit.engine.keys.request_key_sql`), so DuckDB and Spark put an
entity in the same group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.keys import REQUEST_KEY, Dialect, request_key_sql
from ..sqlutil import quote_ident

#: The rows whose version may be assigned per entity: experiment rows that name their entity.
CLUSTERED_SQL = f"({quote_ident('experiment')} IS NOT NULL AND {quote_ident('entity_id')} IS NOT NULL)"
#: Entities expected to see several versions under routing per request, at least, before the test decides.
MIN_EXPECTED = 10.0
#: The arms are sticky when at most this share of the expected mixed entities saw several versions.
STICKY_RATIO = 0.2


def _entity_key(dialect: Dialect) -> str:
    """SQL of the entity key: the request key's function of ``entity_id``."""
    return request_key_sql(quote_ident("entity_id"), dialect)


def entity_key_sql(dialect: Dialect) -> str:
    """SQL of a row's entity key on clustered rows, else -1 (the model sample's column)."""
    return f"CASE WHEN {CLUSTERED_SQL} THEN CAST({_entity_key(dialect)} AS BIGINT) ELSE CAST(-1 AS BIGINT) END"


def group_key_sql(sticky: bool, dialect: Dialect) -> str:
    """SQL of the key whose low bits make a row's replicate group: the entity's on clustered rows when sticky."""
    own = quote_ident(REQUEST_KEY)
    if not sticky:
        return own
    return f"CASE WHEN {CLUSTERED_SQL} THEN {_entity_key(dialect)} ELSE {own} END"


@dataclass(frozen=True)
class Arms:
    """What the model sample says of how experiment arms are assigned.

    ``entities``: entities with two or more sampled clustered rows in one
    (window, segment); ``mixed``: of them, those that saw more than one
    version; ``expected``: how many would have under routing per request.
    """

    entities: int = 0
    mixed: int = 0
    expected: float = 0.0
    #: per (window, routing cell): (design effect of a version's row count, of a sum of the rows' answers)
    effects: tuple[tuple[int, str, float, float], ...] = ()

    @property
    def sticky(self) -> bool:
        """Whether the arms are assigned per entity (far fewer mixed entities than routing per request gives)."""
        return self.expected >= MIN_EXPECTED and self.mixed <= STICKY_RATIO * self.expected

    def as_dict(self) -> dict:
        """JSON-ready: the counts, the decision and the grouping it implies."""
        out: dict = {"groups_by": "entity_id" if self.sticky else "request_id", "sticky_arms": self.sticky,
                     "repeat_entities": self.entities, "mixed_entities": self.mixed,
                     "expected_mixed": round(self.expected, 3)}
        if self.sticky:
            out["design_effects"] = [{"window": ["baseline", "comparison"][t], "cell": c, "count": round(dc, 4),
                                      "answers": round(da, 4)} for t, c, dc, da in self.effects]
        return out

    def effect(self, which: int, cells: tuple[str, ...]) -> np.ndarray:
        """``[t, r]`` design effect of routing cells ``cells`` (1 where none was measured, or not sticky).

        ``which``: 0 for a version's row count, 1 for a sum of the rows' answers.
        """
        out = np.ones((2, len(cells)))
        if not self.sticky:
            return out
        idx = {c: i for i, c in enumerate(cells)}
        for t, c, dc, da in self.effects:
            if c in idx:
                out[t, idx[c]] = (dc, da)[which]
        return out


def arms(t: np.ndarray, r: np.ndarray, v: np.ndarray, entity: np.ndarray, weight: np.ndarray,
         y: np.ndarray | None = None, region: np.ndarray | None = None) -> Arms:
    """Test the sampled clustered rows (``entity >= 0``) for arms assigned per entity.

    ``t``, ``r``, ``v``: window, segment and version index of each sampled
    row; ``weight``: the rows each stands for (the versions' shares are
    weighted, since the sample rate differs by version). With ``y`` (the
    metric) and ``region`` (each row's routing cell label), sticky arms also
    get their design effects (:func:`design_effects`).
    """
    on = entity >= 0
    if not on.any():
        return Arms()
    found = _test(t[on], r[on], v[on], entity[on].astype(np.int64), weight[on])
    if not found.sticky or y is None or region is None:
        return found
    effects = design_effects(t, region, v, entity, weight, y)
    return Arms(found.entities, found.mixed, found.expected, effects)


def design_effects(t: np.ndarray, region: np.ndarray, v: np.ndarray, entity: np.ndarray, weight: np.ndarray,
                   y: np.ndarray) -> tuple[tuple[int, str, float, float], ...]:
    """Per (window, routing cell): how much entity clusters inflate two variances over independent rows.

    With ``n`` rows of which the clustered entities hold ``k_e`` each,
    ``S = sum_e k_e (k_e - 1) / n``:

    * a version's **row count** moves by whole entities, so its variance is
      ``1 + S`` times the multinomial one of rows;
    * a **sum of the rows' answers** (what the causes price on off-intent
      rows) has variance ``1 + rho S`` times that of independent rows, with
      ``rho`` the share of the metric's variance between entities (one-way
      analysis of variance on the sampled clustered rows, each version's
      mean taken out first: an entity sees one version, and the versions'
      difference is not a likeness of its requests; in [0, 1]).

    The sample keeps a row with probability ``s = 1 / weight``; a pair of an
    entity's rows is kept with ``s^2``, so ``sum k_s (k_s - 1) / s^2``
    estimates ``sum k (k - 1)`` and the weights estimate ``n``.
    """
    out = []
    for a in (0, 1):
        for cell in sorted(set(region[t == a].tolist())):
            rows = (t == a) & (region == cell)
            n = float(weight[rows].sum())
            on = rows & (entity >= 0)
            if not on.any() or n <= 0:
                continue
            _, inv, k = np.unique(entity[on], return_inverse=True, return_counts=True)
            s = 1.0 / weight[on]
            s_e = np.zeros(len(k))
            np.maximum.at(s_e, inv, s)
            S = float((k * (k - 1) / s_e ** 2).sum()) / n
            yc = y[on].astype(float)
            for ver in np.unique(v[on]):
                yc[v[on] == ver] -= yc[v[on] == ver].mean()
            out.append((a, str(cell), 1.0 + S, 1.0 + _between_share(yc, inv, k) * S))
    return tuple(out)


def _between_share(y: np.ndarray, inv: np.ndarray, k: np.ndarray) -> float:
    """The share of ``y``'s variance between entities (1 - pooled within-entity variance / total), in [0, 1]."""
    repeat = k[inv] >= 2
    total = float(y.var()) if len(y) > 1 else 0.0
    if total <= 0 or not repeat.any():
        return 0.0
    means = np.bincount(inv, weights=y) / k
    within = float(((y - means[inv]) ** 2)[repeat].sum()) / float((k[k >= 2] - 1).sum())
    return float(np.clip(1.0 - within / total, 0.0, 1.0))


def _test(t: np.ndarray, r: np.ndarray, v: np.ndarray, e: np.ndarray, w: np.ndarray) -> Arms:
    """The mixed-entity test of :func:`arms` on the clustered rows alone."""
    cell = t.astype(np.int64) * (int(r.max()) + 1) + r
    n_v = int(v.max()) + 1
    share = np.zeros((int(cell.max()) + 1, n_v))
    np.add.at(share, (cell, v), w)
    tot = share.sum(axis=1, keepdims=True)
    share = np.divide(share, tot, out=np.zeros_like(share), where=tot > 0)
    key = (cell << 32) | e
    keys, inverse, k = np.unique(key, return_inverse=True, return_counts=True)
    seen = np.zeros((len(keys), n_v), dtype=bool)
    seen[inverse, v] = True
    repeat = k >= 2
    if not repeat.any():
        return Arms()
    key_cell = (keys >> 32)[repeat]
    p = share[key_cell]                                       # [entities, versions]
    expected = float((1.0 - (p ** k[repeat, None]).sum(axis=1)).sum())
    mixed = int((seen[repeat].sum(axis=1) > 1).sum())
    return Arms(int(repeat.sum()), mixed, expected)
