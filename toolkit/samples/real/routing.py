"""The routing plan of a case and the routing of its records to versions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any
from collections.abc import Mapping

import numpy as np

from ...errors import InputError
from .cases import utc


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
            times.append(epoch_ms(utc(ev["ts"])))
            states.append((base, rollout, experiment))
        return np.asarray(times, np.int64), states


def epoch_ms(t: dt.datetime) -> int:
    """Naive UTC -> milliseconds since 1970."""
    return int(round(t.replace(tzinfo=dt.UTC).timestamp() * 1000))


def plan_of(case: Mapping[str, Any]) -> Plan:
    """The routing plan of a case file: regions, versions and routing events in time order."""
    regions = tuple(case["region"]["values"])
    versions = tuple(v["name"] for v in case["versions"])
    events = tuple(sorted(case["routing"]["events"], key=lambda e: utc(e["ts"])))  # stable: file order on ties
    return Plan(regions, versions, events)


def _uniform_hash(keys: list[str]) -> np.ndarray:
    """A uniform number in [0, 1) per key from its sha256 (the experiment's arm assignment)."""
    out = np.empty(len(keys))
    for i, k in enumerate(keys):
        out[i] = int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "big") / 2.0**64
    return out


@dataclasses.dataclass(frozen=True)
class Routing:
    """Where the records went: true routing probabilities and the version that answered each."""

    probs: np.ndarray  # (n, n_versions) true routing probabilities
    resolved: np.ndarray  # version index that answered
    experiment: list  # experiment name or None
    arm: list  # control / treatment or None
    canary: np.ndarray  # answered by a rollout's version while a rollout was active


def route(plan: Plan, region: np.ndarray, ms: np.ndarray, request_id: list[str], seed: int,
           stream: int) -> Routing:
    """Route each record as the plan says (canary draws by ``seed``; experiment arms by a hash of request_id)."""
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
    return Routing(probs, resolved, experiment, arm, canary)
