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

# The DuckDB type names that are numbers. A type is numeric when its name starts
# with one of these (DECIMAL(18,3) included): what ingest stores as DOUBLE and
# what the attribution bins as a numeric covariate.
NUMERIC_TYPES: tuple[str, ...] = (
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
    "FLOAT", "DOUBLE", "REAL", "DECIMAL",
)


def is_numeric_type(typ: str) -> bool:
    """Whether the DuckDB type name ``typ`` (any case) is a number (see :data:`NUMERIC_TYPES`)."""
    return typ.upper().startswith(NUMERIC_TYPES)
