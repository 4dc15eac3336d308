"""Pieces shared by the detectors: the context they run in and finding rows."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable

import duckdb

from ...engine.run import Runner
from ..results import AuditThresholds


@dataclass(frozen=True)
class Context:
    """What every detector needs.

    The connection (with the audit's temporary tables), the window and the thresholds.
    """

    con: duckdb.DuckDBPyConnection
    window_start: dt.datetime
    window_end: dt.datetime
    bucket: str
    thresholds: AuditThresholds
    #: where queries over the rows (not the cells) run
    run: Runner

    def rows(self, sql: str, params: list | None = None) -> list[dict[str, Any]]:
        """Run an aggregate query on the audit's tables in the store and return its (few) rows as dicts."""
        return self.con.execute(sql, params or []).pl().to_dicts()

    def scan(self, sql: str, params: list) -> list[dict[str, Any]]:
        """Run a row-level aggregate (``sql`` in :attr:`run`'s dialect) and return its rows as dicts."""
        return self.run.frame(sql, params).to_dicts()


def fmt_time(value: dt.datetime | None) -> str:
    """A finding's time to the minute, or ``open`` for none."""
    return "open" if value is None else value.strftime("%Y-%m-%d %H:%M")


def fmt_duration(delta: dt.timedelta) -> str:
    """A duration in hours below two days, else in days."""
    hours = delta.total_seconds() / 3600.0
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24.0:.1f} days"


def scope_text(component: str | None, region: str | None, instance_id: str | None) -> str:
    """The scope of a finding in words (component, region, instance)."""
    parts = [component or "all components"]
    parts.append(f"region {region}" if region else "all regions")
    if instance_id:
        parts.append(f"instance {instance_id}")
    return ", ".join(parts)


def single(values: Iterable[Any]) -> Any:
    """The only distinct non-null value, else None (narrowest scope naming)."""
    distinct = {v for v in values if v is not None}
    return next(iter(distinct)) if len(distinct) == 1 else None


def clean_list(values: Iterable[Any] | None, limit: int | None = None) -> list[str]:
    """Distinct non-null values as text, in first-seen order, at most ``limit`` of them."""
    out: list[str] = []
    for value in values or []:
        if value is None:
            continue
        text = str(value)
        if text not in out:
            out.append(text)
    return out if limit is None else out[:limit]


def finding(
    *,
    kind: str,
    severity: str,
    component: str | None,
    region: str | None,
    instance_id: str | None,
    versions: Iterable[str],
    start: dt.datetime | None,
    end: dt.datetime | None,
    n_requests: int,
    share: float | None,
    examples: Iterable[str] | None,
    explanation: str,
    evidence: dict[str, Any],
    n_examples: int,
) -> dict[str, Any]:
    """One finding row in the layout of :data:`toolkit.audit.results.FINDING_SCHEMA`."""
    return {
        "kind": kind,
        "severity": severity,
        "component": component,
        "region": region,
        "instance_id": instance_id,
        "versions": clean_list(versions),
        "start": start,
        "end": end,
        "n_requests": int(n_requests),
        "share": None if share is None else float(share),
        "examples": clean_list(examples, n_examples),
        "explanation": " ".join(explanation.split()),
        "evidence": json.dumps(evidence, default=_json_default, sort_keys=True),
    }


def examples_of(rows: Iterable[dict[str, Any]]) -> list[Any]:
    """The ``examples`` lists of ``rows`` (SQL rows of one finding) in one list, in row order."""
    return [e for r in rows for e in (r["examples"] or [])]


def row_finding(
    row: dict[str, Any],
    *,
    kind: str,
    severity: str,
    component: str | None,
    instance_id: str | None,
    versions: Iterable[str],
    scope_total: int | None,
    explanation: str,
    evidence: dict[str, Any],
    n_examples: int,
    start: dt.datetime | None = None,
) -> dict[str, Any]:
    """The :func:`finding` of one grouped SQL row.

    The row carries ``region``, ``first_ts``, ``last_ts``, ``n`` (its
    requests) and ``examples``; the share is of ``scope_total``, the requests
    of the row's scope (``None`` when that is zero or unknown). The finding
    starts at ``start`` when given, else at the row's ``first_ts``.
    """
    return finding(
        kind=kind,
        severity=severity,
        component=component,
        region=row["region"],
        instance_id=instance_id,
        versions=versions,
        start=row["first_ts"] if start is None else start,
        end=row["last_ts"],
        n_requests=row["n"],
        share=row["n"] / scope_total if scope_total else None,
        examples=row["examples"],
        explanation=explanation,
        evidence=evidence,
        n_examples=n_examples,
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return str(value)
