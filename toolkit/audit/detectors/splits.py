"""Declared splits: stuck rollouts, abandoned experiments, designed diversity.

A *split* is a rollout or an experiment opened by ``rollout_start`` /
``experiment_start`` and closed by the next full event (``rollout_complete``,
``rollback``, ``experiment_end``, ``deploy``). Its deadline is the declared
``expected_end`` or, without one, the start plus ``max_rollout_age`` /
``max_experiment_age``. The intended-state pieces are cut at the deadline,
so the requests served after it are counted exactly.

* ``stuck_rollout`` / ``abandoned_experiment``: after the deadline the
  split's target still serves next to at least one other version (each with
  at least ``min_share`` of the scope's traffic and ``min_count`` requests);
  the finding lists every version serving there, as resolved from the
  artifact digests (a base version loaded under a wrong label shows as the
  version it really is).
* ``designed_multi_version``: every split under which at least two versions
  served (``min_count`` requests each) in the window, at info severity when it
  passes the four tests (declared, observable, time-bound, owned), at warning
  when one fails.
"""

from __future__ import annotations

from typing import Any

from ..census import CELLS
from ..intended import SEG
from .common import Context, examples_of, finding, fmt_time, scope_text, single

_SPLITS_SQL = f"""
SELECT split_seq,
       any_value(kind) AS kind,
       any_value(component) AS dep_component,
       any_value(event_scope) FILTER (WHERE event_seq = split_seq) AS scope,
       min(split_start) AS split_start,
       any_value(target_version) FILTER (WHERE event_seq = split_seq) AS target_version,
       list_distinct(list(base_version)) AS base_versions,
       any_value(expected_end) FILTER (WHERE event_seq = split_seq) AS expected_end,
       any_value(actor) FILTER (WHERE event_seq = split_seq) AS actor,
       any_value(experiment) AS experiment,
       max(deadline) AS deadline,
       bool_or(seg_end IS NULL) AS still_open,
       max(seg_end) AS closed_at
FROM {SEG}
WHERE split_seq IS NOT NULL
GROUP BY split_seq
"""

_EVIDENCE_SQL = f"""
SELECT s.split_seq, c.overdue, c.resolved_version, c.in_intent, c.component,
       sum(c.n)::BIGINT AS n,
       sum(CASE WHEN c.version_status = 'unverified' THEN c.n ELSE 0 END)::BIGINT AS n_unverified,
       min(c.first_ts) AS first_ts, max(c.last_ts) AS last_ts,
       list_distinct(list(c.region)) AS regions,
       list_distinct(list(c.instance_id)) AS instances,
       flatten(list(c.examples ORDER BY c.first_ts, c.examples))[1:?] AS examples
FROM {CELLS} AS c
JOIN {SEG} AS s ON s.component = c.gov AND s.eff_scope = c.eff_scope AND s.pos = c.pos
WHERE s.split_seq IS NOT NULL
GROUP BY ALL
ORDER BY first_ts, s.split_seq, c.overdue, c.resolved_version, c.in_intent, c.component
"""


def detect_splits(ctx: Context) -> list[dict[str, Any]]:
    """Findings about declared splits (stuck, abandoned, designed)."""
    th = ctx.thresholds
    splits = ctx.rows(_SPLITS_SQL)
    evidence = ctx.rows(_EVIDENCE_SQL, [th.n_examples])
    out: list[dict[str, Any]] = []
    for sp in splits:
        rows = [r for r in evidence if r["split_seq"] == sp["split_seq"]]
        if not rows:
            continue  # the split served nothing in the window
        out.extend(_overdue(ctx, sp, rows))
        served: dict[str, int] = {}
        for r in rows:
            served[r["resolved_version"]] = served.get(r["resolved_version"], 0) + r["n"]
        if sum(1 for n in served.values() if n >= ctx.thresholds.min_count) >= 2:
            out.append(_designed(ctx, sp, rows))
    return out


def _versions_in_order(sp: dict[str, Any]) -> list[str]:
    return [v for v in [*(sp["base_versions"] or []), sp["target_version"]] if v is not None]


def _late_by_version(late: list[dict[str, Any]]) -> dict[str, int]:
    by_version: dict[str, int] = {}
    for r in late:
        by_version[r["resolved_version"]] = by_version.get(r["resolved_version"], 0) + r["n"]
    return by_version


def _split_region(sp: dict[str, Any], rows: list[dict[str, Any]]) -> str | None:
    """The split's declared scope, or the one region its rows came from (if one)."""
    return sp["scope"] if sp["scope"] != "all" else single(x for r in rows for x in r["regions"])


def _serving(by_version: dict[str, int], total: int, min_count: int, min_share: float) -> dict[str, int]:
    """The versions that still carry a real part of the late traffic."""
    return {v: n for v, n in by_version.items() if n >= min_count and n / total >= min_share}


def _overdue_span(ctx: Context, sp: dict[str, Any], late: list[dict[str, Any]]) -> tuple[Any, Any]:
    """From the deadline (or the first late row, if the deadline falls outside) to the last late row."""
    first_seen = min(r["first_ts"] for r in late)
    start = sp["deadline"] if ctx.window_start <= sp["deadline"] <= first_seen else first_seen
    return start, max(r["last_ts"] for r in late)


def _split_finding(
    ctx: Context, sp: dict[str, Any], *, span: tuple[Any, Any], n_target: int, target_rows: list[dict[str, Any]],
    **fields: Any,
) -> dict[str, Any]:
    """The :func:`finding` of split ``sp`` over ``span`` (start, end) from ``fields`` (its other arguments).

    The share is the target version's (``n_target`` of ``n_requests``), the
    examples are the target rows', and the evidence gains the split's
    deployment component, scope and start.
    """
    n = fields["n_requests"]
    evidence = {"deployment_component": sp["dep_component"], "scope": sp["scope"], "split_start": sp["split_start"]}
    return finding(
        **{**fields, "evidence": {**evidence, **fields["evidence"]}},
        start=span[0],
        end=span[1],
        share=n_target / n if n else None,
        examples=examples_of(target_rows),
        n_examples=ctx.thresholds.n_examples,
    )


def _overdue_what(kind: str, sp: dict[str, Any]) -> str:
    if kind != "abandoned_experiment":
        return "rollout"
    return f"experiment {sp['experiment']!r}" if sp["experiment"] else "experiment"


def _overdue_explanation(sp: dict[str, Any], kind: str, target: str, component: str | None, region: str | None,
                         shares: dict[str, float]) -> str:
    what = _overdue_what(kind, sp)
    deadline_src = "its expected_end" if sp["expected_end"] is not None else "the default maximum age"
    close = "ever since" if sp["still_open"] else f"until {fmt_time(sp['closed_at'])}"
    return (
        f"The {what} of {target} ({scope_text(component, region, None)}) was due by "
        f"{fmt_time(sp['deadline'])} ({deadline_src}) but the split "
        + ", ".join(f"{v} {s:.0%}" for v, s in shares.items())
        + f" kept serving {close}; complete it or roll it back."
    )


def _overdue(ctx: Context, sp: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    th = ctx.thresholds
    late = [r for r in rows if r["overdue"]]
    total = sum(r["n"] for r in late)
    if total < th.min_count:
        return []
    by_version = _late_by_version(late)
    serving = _serving(by_version, total, th.min_count, th.min_share)
    if sp["target_version"] not in serving or len(serving) < 2:
        return []  # the split is not in place any more (completed or reverted in practice)
    kind = "abandoned_experiment" if sp["kind"] == "experiment" else "stuck_rollout"
    target = sp["target_version"]
    target_rows = [r for r in late if r["resolved_version"] == target]
    components = {r["component"] for r in late}
    component = single(components)
    region = _split_region(sp, late)
    instance = single(x for r in target_rows for x in r["instances"])
    n_target = by_version.get(target, 0)
    shares = {v: round(n / total, 4) for v, n in sorted(serving.items())}
    explanation = _overdue_explanation(sp, kind, target, component, region, shares)
    return [
        _split_finding(
            ctx,
            sp,
            kind=kind,
            severity="warning",
            component=component,
            region=region,
            instance_id=instance,
            versions=sorted(serving),
            span=_overdue_span(ctx, sp, late),
            n_requests=total,
            n_target=n_target,
            target_rows=target_rows,
            explanation=explanation,
            evidence={
                "expected_end": sp["expected_end"],
                "deadline": sp["deadline"],
                "actor": sp["actor"],
                "experiment": sp["experiment"],
                "still_open": sp["still_open"],
                "requests_after_deadline": total,
                "requests_by_version_after_deadline": by_version,
                "shares_after_deadline": shares,
            },
        )
    ]


def _designed_tests(ctx: Context, sp: dict[str, Any], total: int, unverified: int,
                    closed_at: Any) -> dict[str, bool]:
    """The four properties a designed split must have."""
    horizon = closed_at if closed_at is not None else ctx.window_end
    return {
        "declared": True,
        "observable": total > 0 and unverified / total <= ctx.thresholds.max_unverified_share,
        "time_bound": sp["expected_end"] is not None and horizon <= sp["expected_end"],
        "owned": bool(sp["actor"]),
    }


def _designed_reasons(sp: dict[str, Any], total: int, unverified: int) -> dict[str, str]:
    return {
        "observable": f"{unverified / max(total, 1):.0%} of its requests carry no artifact digest",
        "time_bound": (
            "no expected_end was declared"
            if sp["expected_end"] is None
            else f"its deadline {fmt_time(sp['expected_end'])} passed while the split was still open"
        ),
        "owned": "no actor owns it",
    }


def _designed_text(sp: dict[str, Any], component: str | None, region: str | None, failed: list[str],
                   reasons: dict[str, str]) -> str:
    if sp["kind"] == "experiment":
        what = "experiment" + (f" {sp['experiment']!r}" if sp["experiment"] else "")
    else:
        what = "rollout"
    owner = sp["actor"] or "nobody"
    text = (
        f"Several versions served by design: {what} of {sp['target_version']} "
        f"({scope_text(component, region, None)}) declared {fmt_time(sp['split_start'])}, owner {owner}, "
        f"deadline {fmt_time(sp['expected_end']) if sp['expected_end'] else 'none'}"
    )
    if failed:
        text += "; fails " + "; ".join(f"{name.replace('_', '-')}: {reasons[name]}" for name in failed) + "."
    else:
        text += "; declared, observable, time-bound and owned."
    return text


def _designed(ctx: Context, sp: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    total = sum(r["n"] for r in rows)
    unverified = sum(r["n_unverified"] for r in rows)
    target_rows = [r for r in rows if r["resolved_version"] == sp["target_version"]]
    n_target = sum(r["n"] for r in target_rows)
    closed_at = None if sp["still_open"] else sp["closed_at"]
    tests = _designed_tests(ctx, sp, total, unverified, closed_at)
    failed = [name for name, ok in tests.items() if not ok]
    reasons = _designed_reasons(sp, total, unverified)
    component = single(r["component"] for r in rows)
    region = _split_region(sp, rows)
    text = _designed_text(sp, component, region, failed, reasons)
    return _split_finding(
        ctx,
        sp,
        kind="designed_multi_version",
        severity="warning" if failed else "info",
        component=component,
        region=region,
        instance_id=None,
        versions=_versions_in_order(sp),
        span=(min(r["first_ts"] for r in rows),
              closed_at if closed_at is not None else max(r["last_ts"] for r in rows)),
        n_requests=total,
        n_target=n_target,
        target_rows=target_rows,
        explanation=text,
        evidence={
            "kind": sp["kind"],
            "owner": sp["actor"],
            "deadline": sp["expected_end"],
            "closed_at": closed_at,
            "tests": tests,
            "failed_tests": failed,
            "unverified_requests": unverified,
        },
    )
