"""What off-intent serving cost, split exactly by finding.

For window t with its rows' shares, version behaviour ``mu_t(r, v)`` (the
attribution's estimate of version v on the window's inputs in routing cell
r) and the off-intent rows of :mod:`.intent`::

    cost_t = sum_{u, v off} (n_uv / N_t) [mu_t(r_u, v) - sum_w s_uw mu_t(r_u, w)]

is the metric as served minus the metric had the off-intent rows been
served as intended (``s_uw``: the unit's intended shares). The cost is a sum
over off-intent (unit, version) rows, so the value of fixing a set S of
findings is the sum over the rows some finding of S covers: a covering
game, whose Shapley value gives each row's cost in equal parts to the
findings that cover it. The parts add up to the cost exactly; rows no
finding covers are a part of their own.

The same rows split the attribution's version drift, which is linear in the
routing: ``VD = sum_{r,v} K(r, v) (Pi_B - Pi_A)(v | r)`` with
``K(r, v) = sum_{a,c} omega_ac w_a(r) mu_c(a, r, v)`` (the Shapley weights of
the routing factor), and ``Pi_t = Pi_t^intended + O_t`` where ``O_t`` is the
off-intent deviation: each finding's part is ``sum K (O_B^f - O_A^f)``, and
what remains is the intended routing change (deployments that went as
planned).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..attribution.api import Behaviour
from ..attribution.routed import DATA_WEIGHTS
from ..attribution.rows import MISSING
from .intent import UNIT_KEYS, Units

#: Finding kinds without a routing footprint: they describe symptoms (divergent answers), designed
#: serving, or inputs (the wrong feature version), not rows a version served off-intent.
NO_ROUTING_COST = ("prediction_divergence", "designed_multi_version", "preprocessing_mismatch")
#: Kinds whose footprint is their whole scope: the split is decided per scope, the instance named is only
#: where the new version ran.
SCOPE_WIDE = ("stuck_rollout", "abandoned_experiment")
BUCKET = dt.timedelta(hours=1)


@dataclass(frozen=True)
class OffRows:
    """Off-intent (unit, version) rows of one window with their cost (point and per replicate)."""

    frame: pl.DataFrame          # unit keys, version, n, intended (list of versions), cell
    point: np.ndarray            # (k,) cost of each row in metric units of the window
    draws: np.ndarray            # (B, k)
    dev: np.ndarray              # (k, V) routing deviation n_uv (e_v - s_u) / N_{t, r}
    estimable: np.ndarray        # (k,) False where a version has no behaviour estimate
    rows: int                    # N_t
    idio: np.ndarray             # (k,) variance of the rows' own counterfactual answers (not in the draws)


def _mu(beh: Behaviour, t: int) -> tuple[np.ndarray, np.ndarray]:
    point = beh.mu[t, t]
    draws = np.stack([d[t, t] for d in beh.draws]) if beh.draws else np.zeros((0,) + point.shape)
    return point, draws


def off_rows(units: Units, beh: Behaviour, t: int) -> OffRows:
    """The off-intent rows of window ``t`` (0 baseline, 1 comparison) and their cost."""
    served = units.served.filter(pl.col("governed"))
    N = max(units.rows, 1)
    cells = {c: i for i, c in enumerate(beh.regions)}
    vers = {v: i for i, v in enumerate(beh.versions)}
    R, V = len(beh.regions), len(beh.versions)
    intended = {}
    for key, grp in units.intended.group_by(["gov", "eff_scope", "pos", "overdue"], maintain_order=True):
        intended[tuple(key)] = dict(zip(grp["version"].to_list(), grp["share"].to_list(), strict=True))
    region_rows = np.zeros(R)
    for region, n in units.served.group_by("region").agg(pl.col("n").sum()).iter_rows():
        c = cells.get(MISSING if region is None else region)
        if c is not None:
            region_rows[c] += n
    mu, mu_draws = _mu(beh, t)
    var = beh.var[t] if beh.var.size else np.zeros((R, V))
    # what the rows really answered: the mean per (hour, component, region, instance, version)
    obs = {}
    for r in units.observed.iter_rows(named=True):
        key = (r["bucket_start"], r["component"], r["region"], r["instance_id"], r["version"])
        obs[key] = r["sy"] / r["n_y"] if r["n_y"] else None
    recs, point, draws, devs, ok, idio = [], [], [], [], [], []
    for row in served.iter_rows(named=True):
        shares = intended.get((row["gov"], row["eff_scope"], row["pos"], row["overdue"]))
        if not shares or row["version"] in shares:
            continue
        c = cells.get(MISSING if row["region"] is None else row["region"])
        v = vers.get(row["version"])
        idx = [vers.get(w) for w in shares]
        fine = c is not None and v is not None and all(i is not None for i in idx)
        dev = np.zeros(V)
        if fine:
            s = np.zeros(V)
            for w, sh in shares.items():
                s[vers[w]] += sh
            dev = (np.eye(V)[v] - s) * row["n"] / max(region_rows[c], 1)
            ybar = obs.get((row["bucket_start"], row["component"], row["region"], row["instance_id"], row["version"]))
            served_mean = ybar if ybar is not None else float(mu[c, v])
            point.append(row["n"] / N * (served_mean - float(mu[c] @ s)))
            draws.append(row["n"] / N * (served_mean - mu_draws[:, c] @ s) if len(mu_draws) else np.zeros(0))
            idio.append(row["n"] * float((s ** 2) @ var[c]) / N ** 2)
        else:
            point.append(np.nan)
            draws.append(np.full(len(mu_draws), np.nan))
            idio.append(0.0)
        ok.append(fine)
        devs.append(dev)
        recs.append({**{k: row[k] for k in UNIT_KEYS}, "version": row["version"], "n": row["n"],
                     "intended": sorted(shares), "cell": c if c is not None else -1})
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "bucket_start": pl.Datetime("us"), "component": pl.String, "region": pl.String,
        "instance_id": pl.String, "gov": pl.String, "eff_scope": pl.String, "pos": pl.Int64,
        "overdue": pl.Boolean, "version": pl.String, "n": pl.Int64, "intended": pl.List(pl.String),
        "cell": pl.Int64}
    frame = pl.DataFrame(recs, schema=schema)
    B = len(mu_draws)
    return OffRows(frame, np.asarray(point, float), np.asarray(draws, float).reshape(len(recs), B).T,
                   np.asarray(devs, float).reshape(len(recs), V), np.asarray(ok, bool), N,
                   np.asarray(idio, float))


def coverage(off: OffRows, findings: pl.DataFrame) -> np.ndarray:
    """``cover[f, k]``: finding f's footprint holds off-intent row k (scope, versions, time)."""
    k = off.frame.height
    cover = np.zeros((findings.height, k), dtype=bool)
    if not k:
        return cover
    fr = off.frame
    comp, region, inst = fr["component"].to_list(), fr["region"].to_list(), fr["instance_id"].to_list()
    ver, start = fr["version"].to_list(), fr["bucket_start"].to_list()
    for i, f in enumerate(findings.iter_rows(named=True)):
        if not has_routing_cost(f):
            continue
        versions = set(f["versions"] or [])
        instance = None if f["kind"] in SCOPE_WIDE else f["instance_id"]
        for j in range(k):
            cover[i, j] = (
                comp[j] == f["component"]
                and (f["region"] is None or region[j] == f["region"])
                and (instance is None or inst[j] == instance)
                and ver[j] in versions
                and start[j] < f["end"] and start[j] + BUCKET > f["start"]
            )
    return cover


def has_routing_cost(finding: dict) -> bool:
    """Whether a finding names rows a version served off-intent (not a symptom, a design or the features)."""
    return finding["kind"] not in NO_ROUTING_COST and finding["component"] != "feature_pipeline"


def shapley_shares(cover: np.ndarray) -> np.ndarray:
    """Each row's share per finding in the covering game: equal parts among the findings covering it."""
    counts = cover.sum(axis=0)
    return np.divide(cover, counts, out=np.zeros(cover.shape), where=counts > 0)


def version_weights(beh: Behaviour) -> tuple[np.ndarray, np.ndarray]:
    """``K[r, v]`` (point) and per replicate: the derivative of the version drift in ``Pi_B``."""
    def k_of(mu: np.ndarray) -> np.ndarray:
        out = np.zeros(mu.shape[2:])
        for (a, c), om in DATA_WEIGHTS.items():
            out += om * beh.w[a][:, None] * mu[c, a]
        return out
    point = k_of(beh.mu)
    draws = np.stack([k_of(d) for d in beh.draws]) if beh.draws else np.zeros((0,) + point.shape)
    return point, draws


def routing_shares(beh: Behaviour, counts: np.ndarray) -> np.ndarray:
    """Pi[t, r, v] from served row counts per (t, r, v)."""
    tot = counts.sum(axis=2, keepdims=True)
    return np.divide(counts, tot, out=np.zeros(counts.shape), where=tot > 0)


__all__ = ["OffRows", "off_rows", "coverage", "shapley_shares", "version_weights", "NO_ROUTING_COST"]
