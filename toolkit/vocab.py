"""The literal types and value sets shared across the package, each written once.

Modules that had their own copies keep their old names as aliases of these, so
existing imports (``toolkit.report.params.Method``, ``toolkit.audit.Bucket``) work.
"""

from __future__ import annotations

from typing import Literal, get_args

# The effect estimators a report or attribution can use.
Method = Literal["regression", "matched", "standardization"]
METHODS: tuple[str, ...] = get_args(Method)

# A time bucket width: what report data aggregates to.
TimeBucket = Literal["hour", "day"]
TIME_BUCKETS: tuple[str, ...] = get_args(TimeBucket)

# The audit's bucket choice: a width, or "auto" to pick one from the window.
AuditBucket = Literal["auto", "hour", "day"]
AUDIT_BUCKETS: tuple[str, ...] = get_args(AuditBucket)

# The deployment events that change which version is intended (the audit's
# intended-state replay), and all the events a deployments row may carry.
STATE_EVENTS: tuple[str, ...] = (
    "deploy",
    "rollout_start",
    "rollout_step",
    "rollout_complete",
    "rollback",
    "experiment_start",
    "experiment_end",
)
DEPLOYMENT_EVENTS: tuple[str, ...] = (*STATE_EVENTS, "config_change", "cache_flush")
