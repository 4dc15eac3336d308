"""Version-consistency assertions for a team's own pytest suite.

Each check raises :class:`AssertionError` with a message that names what
served and what to fix, and returns what it looked at when it passes, so a
test reads::

    from toolkit import checks

    def test_production_serves_one_version():
        checks.assert_single_version("prod.duckdb", window="2026-11-09..2026-11-16", region="eu")

    def test_no_version_drift():
        checks.assert_no_findings("prod.duckdb", at_least="warning")

Every check accepts a :class:`~toolkit.store.Store` or a store path (opened
read-only) and a window as ``window="FROM..TO"`` or ``start``/``end``
(default: all predictions).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import cast

import polars as pl

from .audit import FINDING_KINDS, SEVERITIES, AuditResult, AuditThresholds, audit
from .errors import InputError, check_choice
from .store import Store, opened
from .timeutil import Window, parse_time, parse_window


def _window(window, start, end) -> tuple[Window, str]:
    """The window to check and how to name it in messages."""
    if window is not None:
        if start is not None or end is not None:
            raise InputError("give either window='FROM..TO' or start/end, not both")
        win = parse_window(window)
        return win, str(win)
    lo = parse_time(start, what="start") if start is not None else dt.datetime(1, 1, 1)
    hi = parse_time(end, what="end") if end is not None else dt.datetime(9999, 12, 31)
    win = Window(lo, hi)
    return win, (str(win) if start is not None or end is not None else "all predictions")


def _scope_sql(component: str | None, region: str | None, instance_id: str | None) -> tuple[str, list]:
    sql, params = "", []
    for column, value in (("component", component), ("region", region), ("instance_id", instance_id)):
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    return sql, params


def _scope_name(component: str | None, region: str | None, instance_id: str | None) -> str:
    parts = [f"component={component}" if component else "all components"]
    if region:
        parts.append(f"region={region}")
    if instance_id:
        parts.append(f"instance={instance_id}")
    return ", ".join(parts)


def assert_single_version(
    store: Store | str | os.PathLike,
    *,
    window: str | Window | None = None,
    start: str | dt.datetime | None = None,
    end: str | dt.datetime | None = None,
    component: str | None = "online",
    region: str | None = None,
    instance_id: str | None = None,
    version: str | None = None,
) -> str:
    """Assert that exactly one resolved version answered the scope in the window.

    Parameters
    ----------
    component, region, instance_id
        The scope (None = any). Shadow rows only count when asked for.
    version
        When given, the one version must be this one.

    Returns
    -------
    str
        The version that served.
    """
    with opened(store) as st:
        win, label = _window(window, start, end)
        scope, params = _scope_sql(component, region, instance_id)
        if component is None:
            scope += " AND component <> 'shadow'"
        frame = st.sql(
            "SELECT resolved_version, count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts "
            "FROM predictions_resolved WHERE ts >= ? AND ts < ?" + scope
            + " GROUP BY resolved_version ORDER BY n DESC",
            [win.start, win.end, *params],
        )
    where = _scope_name(component, region, instance_id)
    if frame.height == 0:
        raise AssertionError(f"no predictions for {where} in {label}: nothing to check")
    if frame.height > 1:
        listing = ", ".join(f"{r['resolved_version']} ({r['n']} requests)" for r in frame.iter_rows(named=True))
        raise AssertionError(
            f"{frame.height} versions served {where} in {label}: {listing}; "
            "run `vdrift audit` to see which rollout, rollback or cache left them"
        )
    served = frame["resolved_version"][0]
    if version is not None and served != version:
        raise AssertionError(f"{where} in {label} was served by {served}, expected {version}")
    return served


def assert_reported_matches_loaded(
    store: Store | str | os.PathLike,
    *,
    window: str | Window | None = None,
    start: str | dt.datetime | None = None,
    end: str | dt.datetime | None = None,
    component: str | None = None,
    region: str | None = None,
    instance_id: str | None = None,
    allow_unverified: bool = False,
) -> int:
    """Assert that every reported version is the version whose artifact was loaded.

    Parameters
    ----------
    allow_unverified
        Accept rows without an artifact digest (they cannot be checked).

    Returns
    -------
    int
        The number of requests checked.
    """
    with opened(store) as st:
        win, label = _window(window, start, end)
        scope, params = _scope_sql(component, region, instance_id)
        frame = st.sql(
            "SELECT version_status, model_version, resolved_version, region, count(*) AS n "
            "FROM predictions_resolved WHERE ts >= ? AND ts < ?" + scope
            + " GROUP BY ALL ORDER BY n DESC",
            [win.start, win.end, *params],
        )
    bad_status = ["mismatch", "unregistered"] + ([] if allow_unverified else ["unverified"])
    bad = frame.filter(pl.col("version_status").is_in(bad_status))
    if bad.height:
        listing = "; ".join(
            f"{r['n']} requests reported {r['model_version']} but "
            + (
                "logged no artifact digest"
                if r["version_status"] == "unverified"
                else f"loaded {r['resolved_version']}"
            )
            + (f" (region {r['region']})" if r["region"] else "")
            for r in bad.head(5).iter_rows(named=True)
        )
        raise AssertionError(
            f"reported versions do not match the loaded artifacts for "
            f"{_scope_name(component, region, instance_id)} in {label}: {listing}"
        )
    return int(frame["n"].sum()) if frame.height else 0


def assert_rollout_completed(
    store: Store | str | os.PathLike,
    version: str,
    *,
    component: str = "serving",
    scope: str | None = None,
    by: str | dt.datetime | None = None,
) -> dt.datetime:
    """Assert that the rollout of ``version`` was completed (and, optionally, in time).

    The deployment history must hold a ``rollout_complete`` (or a ``deploy``)
    of ``version`` for the component and scope after its last
    ``rollout_start``, no later than ``by`` when given.

    Returns
    -------
    datetime
        When the rollout was completed.
    """
    with opened(store) as st:
        params: list = [component, version]
        scope_sql = ""
        if scope is not None:
            scope_sql = " AND scope = ?"
            params.append(scope)
        events = st.sql(
            "SELECT ts, scope, event, expected_end FROM deployments "
            "WHERE component = ? AND version = ?" + scope_sql + " ORDER BY ts",
            params,
        )
    what = f"{version} on {component}" + (f" scope {scope}" if scope else "")
    starts = events.filter(pl.col("event") == "rollout_start")
    if events.height == 0:
        raise AssertionError(f"the deployment history has no event for {what}")
    begun = cast(dt.datetime, starts["ts"].max() if starts.height else events["ts"].min())
    done = events.filter(pl.col("event").is_in(["rollout_complete", "deploy"]) & (pl.col("ts") >= begun))
    if done.height == 0:
        deadline = cast("dt.datetime | None", starts["expected_end"].max() if starts.height else None)
        raise AssertionError(
            f"the rollout of {what} started {begun:%Y-%m-%d %H:%M} has no rollout_complete"
            + (f" (it was due {deadline:%Y-%m-%d %H:%M})" if deadline is not None else "")
            + "; complete it or roll it back"
        )
    completed = cast(dt.datetime, done["ts"].min())
    if by is not None:
        limit = parse_time(by, what="by")
        if completed > limit:
            raise AssertionError(
                f"the rollout of {what} completed at {completed:%Y-%m-%d %H:%M}, after {limit:%Y-%m-%d %H:%M}"
            )
    return completed


def assert_no_findings(
    store: Store | str | os.PathLike,
    *,
    at_least: str = "warning",
    kinds: Sequence[str] | None = None,
    window: str | Window | None = None,
    start: str | dt.datetime | None = None,
    end: str | dt.datetime | None = None,
    thresholds: AuditThresholds | None = None,
) -> AuditResult:
    """Run the audit and assert it has no finding at or above ``at_least``.

    Parameters
    ----------
    at_least
        ``info``, ``warning`` or ``critical``.
    kinds
        Only these finding kinds count (default: all).

    Returns
    -------
    AuditResult
        The audit, for further checks.
    """
    check_choice(at_least, SEVERITIES, "severity")
    if kinds is not None:
        unknown = sorted(set(kinds) - set(FINDING_KINDS))
        if unknown:
            raise InputError(f"unknown finding kinds {unknown}: use {', '.join(FINDING_KINDS)}")
    result = audit(store, window=window, start=start, end=end, thresholds=thresholds)
    hits = result.at_least(at_least)  # type: ignore[arg-type]
    if kinds is not None:
        hits = hits.filter(pl.col("kind").is_in(list(kinds)))
    if hits.height:
        lines = [
            f"  {r['severity']} {r['kind']}: {r['explanation']}" for r in hits.head(10).iter_rows(named=True)
        ]
        raise AssertionError(
            f"{hits.height} audit finding(s) at or above {at_least}:\n" + "\n".join(lines)
        )
    return result


def assert_consistent(
    store: Store | str | os.PathLike,
    *,
    min_score: float = 1.0,
    window: str | Window | None = None,
    start: str | dt.datetime | None = None,
    end: str | dt.datetime | None = None,
) -> float:
    """Assert that every bucket's consistency score is at least ``min_score``.

    Returns
    -------
    float
        The overall share of governed requests served as intended.
    """
    if not 0.0 <= min_score <= 1.0:
        raise InputError(f"min_score is a share in [0, 1], got {min_score}")
    result = audit(store, window=window, start=start, end=end)
    low = result.consistency.filter(pl.col("score") < min_score)
    if low.height:
        worst = low.sort("score").row(0, named=True)
        raise AssertionError(
            f"{low.height} {result.bucket} bucket(s) below consistency {min_score:.3f}; worst "
            f"{worst['bucket_start']:%Y-%m-%d %H:%M}: {worst['n_as_intended']} of {worst['n']} "
            f"requests as intended ({worst['score']:.3f})"
        )
    score = result.overall_score
    if score is None:
        raise AssertionError("no deployment history governs these predictions: consistency cannot be checked")
    return score


__all__ = [
    "assert_single_version",
    "assert_reported_matches_loaded",
    "assert_rollout_completed",
    "assert_no_findings",
    "assert_consistent",
]
