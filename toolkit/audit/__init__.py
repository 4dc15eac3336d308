"""Version audit: what really served traffic, what was intended, and where they differ.

Public API::

    from toolkit.audit import audit, AuditThresholds
    result = audit("vdrift.duckdb", window="2026-11-09..2026-11-16")
    print(result.summary())
    result.findings        # polars frame, one row per finding
    result.max_severity    # "critical" | "warning" | "info" | None

Layers: :mod:`.intended` replays the deployment history, :mod:`.census`
aggregates the predictions into cells attached to the intended state,
:mod:`.detectors` turn cells into findings, :mod:`.consistency` scores the
buckets and :mod:`.results` holds the frozen result objects.
"""

from __future__ import annotations

import types

from .api import audit
from .results import (
    FINDING_KINDS,
    SEVERITIES,
    AuditResult,
    AuditThresholds,
    Bucket,
    FindingKind,
    Severity,
    severity_rank,
)

__all__ = [
    "audit",
    "AuditResult",
    "AuditThresholds",
    "FINDING_KINDS",
    "SEVERITIES",
    "Bucket",
    "FindingKind",
    "Severity",
    "severity_rank",
]


class _CallableModule(types.ModuleType):
    """Lets ``toolkit.audit(...)`` be called like :func:`audit` (as the CLI's twin)."""

    def __call__(self, *args, **kwargs) -> AuditResult:
        return audit(*args, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
