"""Real-data replay cases: real records, routed to real model versions synthetically.

Each case under ``data/samples/real/<case>/`` is a committed *replay table*
(``replay.parquet``) built by ``data/samples/real/build.py`` from a public
data set that a pip package bundles: one row per real record, placed in the
baseline or comparison window in its real time order, with the covariates,
the real outcome and every model version's predicted label and score (the
versions are scikit-learn models trained on other time slices). ``case.json``
describes the source, target, versions, windows and the routing plan.

:func:`replay_case` routes the records to versions as the plan's deployment
events say (per region scope and time: a stuck canary, a 50/50 experiment by
a hash of the request_id, a deploy and rollback), logs only the serving
version's output, and computes the exact replay ground truth the simulator
computes (:class:`~toolkit.samples.truth.ReplayAccumulator`): because every
version's output is known for every record, ``M(a, b)`` is exact and data
and version drift are its two-factor Shapley values. The covariate shift
between the windows is real (winter vs summer flights; the same women 14
years later), and so is the version drift's size: only the routing is made up.

This module needs numpy and polars only (no scikit-learn).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any
from collections.abc import Mapping

import numpy as np
import polars as pl

from ..errors import InputError
from . import scenarios as S
from .history import DEPLOYMENT_SCHEMA
from .load import load_simulation
from .results import GroundTruth, ReplayEffects
from .simulate import Simulation
from .truth import ReplayAccumulator
from .writers import _write

#: Where the committed cases live (override with ``VDRIFT_REAL_DATA``).
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "data" / "samples" / "real"
CASES: tuple[str, ...] = ("flights", "nlswork")
#: What the ground truth of every case covers (the simulator's scenario names).
SCENARIOS: tuple[str, ...] = ("canary", "rollback", "experiment", "covariate_shift")
PERIODS = ("baseline", "comparison")
_MODEL_COMPONENTS = ("serving", "cache", "batch")


def _root(root: str | os.PathLike | None) -> Path:
    if root is not None:
        return Path(root)
    return Path(os.environ.get("VDRIFT_REAL_DATA", DEFAULT_ROOT))


def case_names(root: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The cases committed under ``root`` (those with a case.json)."""
    base = _root(root)
    return tuple(sorted(p.parent.name for p in base.glob("*/case.json")))


def _utc(text: str) -> dt.datetime:
    """Naive UTC from ISO text with a Z suffix (the simulator's representation)."""
    return dt.datetime.fromisoformat(text.removesuffix("Z"))


@lru_cache(maxsize=8)
def _load(root: Path, name: str) -> tuple[dict, pl.DataFrame]:
    folder = root / name
    if not (folder / "case.json").is_file():
        known = ", ".join(case_names(root)) or "none"
        raise InputError(f"unknown real-data case {name!r} (looked in {root}); cases: {known}")
    case = json.loads((folder / "case.json").read_text(encoding="utf-8"))
    table = pl.read_parquet(folder / "replay.parquet")
    return case, table


def load_case(name: str, *, root: str | os.PathLike | None = None) -> tuple[dict, pl.DataFrame]:
    """The case description (case.json) and its replay table, as committed."""
    case, table = _load(_root(root).resolve(), name)
    return json.loads(json.dumps(case)), table


# ----------------------------------------------------------------------------- the plan
@dataclasses.dataclass(frozen=True)
class Plan:
    """The routing plan of a case: regions, versions and the serving deployment events."""

    regions: tuple[str, ...]
    versions: tuple[str, ...]
    events: tuple[Mapping[str, Any], ...]

    def segments(self, region: str) -> tuple[np.ndarray, list[tuple[int | None, tuple[int | None, float] | None,
                                                                   tuple[int | None, float, str] | None]]]:
        """Piecewise-constant serving state of one region.

        Returns the change times (ms since 1970, UTC) and after each the state
        ``(base, rollout, experiment)``: the base version, the rollout
        ``(version, share)`` and the experiment ``(treatment, share, name)``.
        """
        times, states = [], []
        base, rollout, experiment = None, None, None
        for ev in self.events:
            if ev["component"] != "serving" or ev["scope"] not in ("all", region):
                continue
            kind = ev["event"]
            v = self.versions.index(ev["version"]) if ev.get("version") in self.versions else None
            if kind in ("deploy", "rollback", "rollout_complete"):
                base, rollout = v, None
                if kind == "rollback":
                    experiment = None
            elif kind in ("rollout_start", "rollout_step"):
                rollout = (v, float(ev["traffic_pct"]) / 100.0)
            elif kind == "experiment_start":
                experiment = (v, float(ev["traffic_pct"]) / 100.0, ev["experiment"])
            elif kind == "experiment_end":
                experiment = None
            else:
                continue
            times.append(_ms(_utc(ev["ts"])))
            states.append((base, rollout, experiment))
        return np.asarray(times, np.int64), states


def _ms(t: dt.datetime) -> int:
    return int(round(t.replace(tzinfo=dt.UTC).timestamp() * 1000))


def plan_of(case: Mapping[str, Any]) -> Plan:
    """The routing plan of a case file: regions, versions and routing events in time order."""
    regions = tuple(case["region"]["values"])
    versions = tuple(v["name"] for v in case["versions"])
    events = tuple(sorted(case["routing"]["events"], key=lambda e: _utc(e["ts"])))  # stable: file order on ties
    return Plan(regions, versions, events)


def _uniform_hash(keys: list[str]) -> np.ndarray:
    """A uniform number in [0, 1) per key from its sha256 (the experiment's arm assignment)."""
    out = np.empty(len(keys))
    for i, k in enumerate(keys):
        out[i] = int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "big") / 2.0**64
    return out


@dataclasses.dataclass(frozen=True)
class _Routing:
    probs: np.ndarray  # (n, n_versions) true routing probabilities
    resolved: np.ndarray  # version index that answered
    experiment: list  # experiment name or None
    arm: list  # control / treatment or None
    canary: np.ndarray  # answered by a rollout's version while a rollout was active


def _route(plan: Plan, region: np.ndarray, ms: np.ndarray, request_id: list[str], seed: int,
           stream: int) -> _Routing:
    n, k = region.size, len(plan.versions)
    probs = np.zeros((n, k))
    resolved = np.full(n, -1, np.int64)
    experiment: list = [None] * n
    arm: list = [None] * n
    canary = np.zeros(n, bool)
    u_roll = np.random.default_rng([seed, stream, 2]).random(n)
    for r, name in enumerate(plan.regions):
        rows = np.flatnonzero(region == r)
        times, states = plan.segments(name)
        seg = np.searchsorted(times, ms[rows], side="right") - 1
        if rows.size and seg.min() < 0:
            raise InputError(f"region {name}: requests before the first serving deployment")
        for s in np.unique(seg):
            idx = rows[seg == s]
            base, rollout, exp = states[s]
            if base is None:
                raise InputError(f"region {name}: no version deployed at {times[s]}")
            p_exp = exp[1] if exp else 0.0
            p_roll = rollout[1] if rollout else 0.0
            probs[idx, base] += (1 - p_exp) * (1 - p_roll)
            if rollout:
                probs[idx, rollout[0]] += (1 - p_exp) * p_roll
            if exp:
                probs[idx, exp[0]] += p_exp
            pick = np.full(idx.size, base)
            if rollout:
                hit = u_roll[idx] < p_roll
                pick = np.where(hit, rollout[0], pick)
                canary[idx[hit]] = True
            if exp:
                u = _uniform_hash([f"{exp[2]}:{seed}:{request_id[i]}" for i in idx])
                treat = u < p_exp
                pick = np.where(treat, exp[0], pick)
                canary[idx[treat]] = False
                for j, i in enumerate(idx):
                    experiment[i] = exp[2]
                    arm[i] = "treatment" if treat[j] else "control"
            resolved[idx] = pick
    return _Routing(probs, resolved, experiment, arm, canary)


# ----------------------------------------------------------------------------- the case
def _hashes(case: Mapping[str, Any]) -> dict[str, str]:
    return {v["name"]: v["artifact_hash"] for v in case["versions"]}


def deployments_frame(case: Mapping[str, Any]) -> pl.DataFrame:
    """The deployment history of the case's routing plan (the contract's columns)."""
    hashes = _hashes(case)
    rows = []
    for ev in plan_of(case).events:
        model = ev["component"] in _MODEL_COMPONENTS and ev.get("version") in hashes
        rows.append({
            "ts": _utc(ev["ts"]),
            "component": ev["component"],
            "scope": ev["scope"],
            "event": ev["event"],
            "version": ev.get("version"),
            "artifact_hash": hashes[ev["version"]] if model else None,
            "traffic_pct": ev.get("traffic_pct"),
            "expected_end": _utc(ev["expected_end"]) if ev.get("expected_end") else None,
            "actor": ev.get("actor"),
            "experiment": ev.get("experiment"),
            "note": ev.get("note"),
        })
    frame = pl.DataFrame(rows, schema={**DEPLOYMENT_SCHEMA, "ts": pl.Datetime("ms"),
                                       "expected_end": pl.Datetime("ms")})
    return frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"),
                              pl.col("expected_end").dt.replace_time_zone("UTC"))


def artifacts_frame(case: Mapping[str, Any]) -> pl.DataFrame:
    """The artifact registry: each version's sha256 and the feature version it expects."""
    created = case["routing"].get("artifacts_created_at", {})
    fv = case["routing"].get("feature_version")
    names = [v["name"] for v in case["versions"]]
    return pl.DataFrame(
        {
            "version": names,
            "artifact_hash": [v["artifact_hash"] for v in case["versions"]],
            "feature_version": [fv] * len(names),
            "created_at": [_utc(created[n]) if n in created else None for n in names],
        },
        schema={"version": pl.String, "artifact_hash": pl.String, "feature_version": pl.String,
                "created_at": pl.Datetime("ms")},
    ).with_columns(pl.col("created_at").dt.replace_time_zone("UTC"))


def metrics_of(case: Mapping[str, Any]) -> tuple[str, ...]:
    """The metrics the ground truth covers: positive rate, mean score, accuracy."""
    return (f"rate:prediction={case['positive_label']}", "mean:score", "accuracy")


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
    routing: _Routing
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
        (_utc(case["windows"][p]["start"]), _utc(case["windows"][p]["end"])) for p in PERIODS)
    period = np.where(ms >= _ms(c0), 1, 0)
    if ((ms < _ms(b0)) | (ms >= _ms(c1)) | ((ms >= _ms(b1)) & (ms < _ms(c0)))).any():
        raise InputError(f"case {name}: rows outside the two windows")
    routing = _route(plan, region, ms, table["request_id"].to_list(), seed, stream)
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
    hashes = _hashes(case)
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


def as_simulation(frames: Mapping[str, pl.DataFrame], truth: GroundTruth) -> Simulation:
    """The case as a :class:`~toolkit.samples.simulate.Simulation` (for code that takes one)."""
    return Simulation(frames["predictions"], frames["deployments"], frames["artifacts"], truth)


def write_case(
    out_dir: str | os.PathLike,
    name: str,
    *,
    seed: int = 0,
    fraction: float = 1.0,
    root: str | os.PathLike | None = None,
) -> GroundTruth:
    """Write a routed case like the simulator's samples.

    Files: ``predictions.parquet``, ``deployments.jsonl``, ``artifacts.csv``
    and ``ground_truth.json`` (the returned truth, with ``files`` set).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a directory: give a directory to write the case into")
    frames, truth = replay_case(name, seed=seed, fraction=fraction, root=root)
    out.mkdir(parents=True, exist_ok=True)
    _write(frames["predictions"], out / "predictions.parquet", "parquet")
    _write(frames["deployments"], out / "deployments.jsonl", "jsonl")
    _write(frames["artifacts"], out / "artifacts.csv", "csv")
    files = {"predictions": "predictions.parquet", "deployments": "deployments.jsonl",
             "artifacts": "artifacts.csv", "ground_truth": "ground_truth.json"}
    truth = dataclasses.replace(truth, files=files)
    (out / "ground_truth.json").write_text(truth.to_json(), encoding="utf-8")
    return truth


def load_case_store(
    name: str,
    path: str | os.PathLike = ":memory:",
    *,
    seed: int = 0,
    fraction: float = 1.0,
    root: str | os.PathLike | None = None,
):
    """A store holding the routed case's predictions, registry and deployments, and its truth.

    Returns
    -------
    store, truth
        The store is open (a context manager); the caller closes it.
    """
    frames, truth = replay_case(name, seed=seed, fraction=fraction, root=root)
    return load_simulation(as_simulation(frames, truth), path), truth  # loads the deployment history too
