"""The replay of a case: records subsampled and routed, the served rows, and the exact replay truth."""

from __future__ import annotations

import dataclasses
import os
import zlib

import numpy as np
import polars as pl

from ...errors import InputError
from .. import scenarios as S
from ..results import GroundTruth, ReplayEffects
from ..truth import ReplayAccumulator
from .cases import PERIODS, SCENARIOS, utc, load_case
from .registry import version_hashes, artifacts_frame, deployments_frame
from .routing import Plan, epoch_ms, route, Routing, plan_of


def _subsample(table: pl.DataFrame, fraction: float, seed: int, stream: int) -> pl.DataFrame:
    if not (0.0 < fraction <= 1.0):
        raise InputError(f"fraction must be in (0, 1], got {fraction!r}")
    if fraction == 1.0:
        return table
    n = table.height
    k = max(1, int(round(fraction * n)))
    keep = np.sort(np.random.default_rng([seed, stream, 1]).choice(n, k, replace=False))
    return table[keep]


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(seed)


@dataclasses.dataclass(frozen=True)
class _Prepared:
    case: dict
    table: pl.DataFrame
    plan: Plan
    region: np.ndarray
    period: np.ndarray
    windows: tuple
    routing: Routing
    preds: np.ndarray
    scores: np.ndarray
    outcome: np.ndarray
    replayed: dict


def _prepare(name: str, seed: int, fraction: float, root) -> _Prepared:
    seed = _check_seed(seed)
    case, table = load_case(name, root=root)
    stream = zlib.crc32(name.encode())
    table = _subsample(table, float(fraction), seed, stream)
    plan = plan_of(case)
    if len(plan.regions) != len(S.REGIONS) or len(plan.versions) > len(S.VERSIONS):
        raise InputError(f"case {name}: the replay accumulator takes {len(S.REGIONS)} regions and at most "
                         f"{len(S.VERSIONS)} versions")
    region_idx = {r: i for i, r in enumerate(plan.regions)}
    region = table["region"].replace_strict(region_idx, return_dtype=pl.Int64).to_numpy()
    ms = table["ts"].dt.epoch("ms").to_numpy()
    (b0, b1), (c0, c1) = windows = tuple(
        (utc(case["windows"][p]["start"]), utc(case["windows"][p]["end"])) for p in PERIODS)
    period = np.where(ms >= epoch_ms(c0), 1, 0)
    if ((ms < epoch_ms(b0)) | (ms >= epoch_ms(c1)) | ((ms >= epoch_ms(b1)) & (ms < epoch_ms(c0)))).any():
        raise InputError(f"case {name}: rows outside the two windows")
    routing = route(plan, region, ms, table["request_id"].to_list(), seed, stream)
    pos = case["positive_label"]
    preds = np.stack([table[f"pred__{v}"].to_numpy() for v in plan.versions], axis=1)
    scores = np.stack([table[f"score__{v}"].to_numpy().astype(np.float64) for v in plan.versions], axis=1)
    outcome = table["outcome"].to_numpy()
    replayed = {
        f"rate:prediction={pos}": (preds == pos).astype(np.float64),
        "mean:score": scores,
        "accuracy": (preds == outcome[:, None]).astype(np.float64),
    }
    return _Prepared(case, table, plan, region, period, windows, routing, preds, scores, outcome, replayed)


def expected_sampling_noise(name: str, *, seed: int = 0, fraction: float = 1.0,
                            root: str | os.PathLike | None = None) -> dict[str, float]:
    """The mean of the sampling noise over routing draws, per metric, for the case's records.

    ``sampling_noise`` = observed total - replay total. Over routing draws
    the observed mean of a period is ``mean_i sum_v p_i(v) f(x_i, v)`` with
    each request's own routing probabilities, while the replay uses the
    period's mean routing ``Pi_b(v | region)``. They differ when the routing
    changes within a window *and* the inputs trend within it (real data
    placed in real time order does): this is that difference, B minus A,
    which the truth books as sampling noise. ``seed`` matters only with
    ``fraction < 1`` (the subsample).
    """
    prep = _prepare(name, seed, fraction, root)
    probs, region, period = prep.routing.probs, prep.region, prep.period
    out = {}
    for metric, values in prep.replayed.items():
        own = (probs * values).sum(axis=1)
        gap = []
        for p in (0, 1):
            sel = period == p
            pi = np.zeros((len(prep.plan.regions), probs.shape[1]))
            for r in range(pi.shape[0]):
                cell = sel & (region == r)
                pi[r] = probs[cell].mean(axis=0)
            fitted = (values * pi[region]).sum(axis=1)
            gap.append(float((own[sel] - fitted[sel]).mean()))
        out[metric] = gap[1] - gap[0]
    return out


def replay_case(
    name: str,
    *,
    seed: int = 0,
    fraction: float = 1.0,
    root: str | os.PathLike | None = None,
) -> tuple[dict[str, pl.DataFrame], GroundTruth]:
    """Route a real-data case's records to versions, and its exact replay truth.

    Parameters
    ----------
    name
        A committed case (:data:`CASES`: ``flights``, ``nlswork``).
    seed
        Redraws the routing (the canary draws and the experiment's hash salt)
        and, with ``fraction < 1``, the subsample.
    fraction
        Share of the records kept (a uniform random subsample without
        replacement); 1 keeps them all.
    root
        Folder of the cases (default: the repository's data/samples/real, or
        ``VDRIFT_REAL_DATA``).

    Returns
    -------
    frames, truth
        ``frames`` holds ``predictions`` (the contract's columns: only the
        serving version's prediction and score per row, ``artifact_hash`` of
        the resolved version, the case's covariates), ``deployments`` and
        ``artifacts``; ``truth`` is a :class:`~toolkit.samples.results.GroundTruth`
        for ``rate:prediction=<positive>``, ``mean:score`` and ``accuracy``
        (no planted problems are listed: the audit's expected findings are
        described in case.json's routing note).
    """
    prep = _prepare(name, seed, fraction, root)
    case, table, plan, routing = prep.case, prep.table, prep.plan, prep.routing
    region, period, replayed = prep.region, prep.period, prep.replayed
    (b0, b1), (c0, c1) = prep.windows
    n, k = table.height, len(plan.versions)
    idx = np.arange(n)
    pos = case["positive_label"]
    preds, scores, outcome = prep.preds, prep.scores, prep.outcome
    entity = np.unique(table["entity_id"].to_numpy().astype(str), return_inverse=True)[1].astype(np.int64)
    n_entities = int(entity.max()) + 1
    pad = len(S.VERSIONS) - k
    probs = np.pad(routing.probs, ((0, 0), (0, pad)))
    attribution = {}
    for metric, values in replayed.items():
        acc = ReplayAccumulator(metric, n_entities)
        acc.add_routing(probs, region, period)
        acc.add_effects(np.pad(values, ((0, 0), (0, pad))), values[idx, routing.resolved], region, period, entity)
        attribution[metric] = _rename(acc.result(), plan)

    version_names = np.array(plan.versions, dtype=object)
    served = version_names[routing.resolved]
    hashes = version_hashes(case)
    region_names = np.array(plan.regions, dtype=object)[region]
    instance = np.where(routing.canary, region_names + "-canary",
                        region_names + "-" + (1 + (idx % 3)).astype(str).astype(object))
    covariates = [c["name"] for c in case["covariates"]]
    predictions = pl.DataFrame({
        "request_id": table["request_id"],
        "ts": table["ts"],
        "model_version": pl.Series(served, dtype=pl.String),
        "prediction": pl.Series(preds[idx, routing.resolved], dtype=pl.String),
        "score": scores[idx, routing.resolved],
        "artifact_hash": pl.Series([hashes[v] for v in served], dtype=pl.String),
        "feature_version": pl.Series([case["routing"].get("feature_version")] * n, dtype=pl.String),
        "component": pl.Series(["online"] * n, dtype=pl.String),
        "cache_hit": np.zeros(n, bool),
        "region": table["region"],
        "instance_id": pl.Series(instance, dtype=pl.String),
        "entity_id": table["entity_id"],
        "experiment": pl.Series(routing.experiment, dtype=pl.String),
        "arm": pl.Series(routing.arm, dtype=pl.String),
        "outcome": table["outcome"],
    }).hstack(table.select(covariates))

    versions = tuple(
        {
            "version": v["name"],
            "artifact_hash": v["artifact_hash"],
            "model_type": v["model_type"],
            "training_slice": v["training_slice"],
            "decision_threshold": v["decision_threshold"],
            "positive_rate_on_all_inputs": float((preds[:, j] == pos).mean()),
            "accuracy_on_all_inputs": float((preds[:, j] == outcome).mean()),
            "rows_served": int((routing.resolved == j).sum()),
        }
        for j, v in enumerate(case["versions"])
    )
    truth = GroundTruth(
        scenarios=SCENARIOS,
        seed=seed,
        rows=n,
        rows_written=n,
        periods={"baseline": (b0, b1), "comparison": (c0, c1)},
        versions=versions,
        covariates=tuple({"name": c["name"], "type": c["type"]} for c in case["covariates"]),
        problems=(),
        attribution=attribution,
        generator=f"toolkit.samples.real:{name} (real records of {case['source']['package']} "
                  f"{case['source']['package_version']}, routed synthetically; fraction {fraction:g})",
    )
    frames = {"predictions": predictions, "deployments": deployments_frame(case), "artifacts": artifacts_frame(case)}
    return frames, truth


def _rename(eff: ReplayEffects, plan: Plan) -> ReplayEffects:
    """The accumulator names regions and versions after the simulator's; use the case's."""
    regions = dict(zip(S.REGIONS, plan.regions, strict=True))
    versions = dict(zip(S.VERSION_NAMES, plan.versions, strict=False))  # a plan may use fewer versions
    routing = {p: {regions[r]: {versions[v]: x for v, x in vs.items()} for r, vs in rs.items()}
               for p, rs in eff.routing.items()}
    return dataclasses.replace(eff, routing=routing)
