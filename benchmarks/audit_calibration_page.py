"""The results page of the audit calibration (``benchmarks/audit_calibration.py``): its frames and tables.

:func:`power_frame` and :func:`false_alarm_frame` reduce the runs' outcomes
(:class:`~benchmarks.audit_calibration.RunOutcome`) to rates with
Clopper-Pearson intervals; :func:`markdown` writes the page from them.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import polars as pl
from scipy import stats

from toolkit.audit import severity_rank
from toolkit.samples import PROBLEM_KINDS

if TYPE_CHECKING:  # pragma: no cover
    from benchmarks.audit_calibration import RunOutcome

#: Which detector (module of ``toolkit/audit/detectors``) reports each problem kind.
DETECTOR_OF: dict[str, str] = {
    "stuck_rollout": "splits",
    "abandoned_experiment": "splits",
    "incomplete_rollback": "offintent",
    "stale_cache": "offintent",
    "unexpected_multi_version": "offintent",
    "artifact_mismatch": "artifacts",
    "preprocessing_mismatch": "artifacts",
    "batch_online_divergence": "batch",
    "prediction_divergence": "divergence",
}

_ABOVE_INFO = severity_rank("info")


def power_frame(outcomes: list[RunOutcome]) -> pl.DataFrame:
    """Detection rate per scenario x detector x problem kind x size, with a 95% Clopper-Pearson interval."""
    rows = [
        {"scenario": o.scenario, "rows": o.rows, "seed": o.seed, "kind": p["kind"],
         "detector": DETECTOR_OF[p["kind"]], "component": p["component"], "found": p["found"],
         "alerted": p["found"] and severity_rank(p["severity"]) > _ABOVE_INFO}
        for o in outcomes for p in o.problems
    ]
    if not rows:
        return pl.DataFrame(schema={"scenario": pl.Utf8, "detector": pl.Utf8, "kind": pl.Utf8,
                                    "component": pl.Utf8, "rows": pl.Int64, "planted": pl.UInt32,
                                    "found": pl.UInt32, "alerted": pl.UInt32, "power": pl.Float64, "ci_low": pl.Float64,
                                    "ci_high": pl.Float64})
    frame = (
        pl.DataFrame(rows)
        .group_by("scenario", "detector", "kind", "component", "rows", maintain_order=True)
        .agg(pl.len().alias("planted"), pl.col("found").sum().cast(pl.UInt32).alias("found"),
             pl.col("alerted").sum().cast(pl.UInt32).alias("alerted"))
        .with_columns((pl.col("found") / pl.col("planted")).alias("power"))
    )
    lows, highs = zip(*(_clopper_pearson(k, n) for k, n in zip(frame["found"], frame["planted"], strict=True)),
                      strict=True)
    return frame.with_columns(pl.Series("ci_low", lows), pl.Series("ci_high", highs))


def false_alarm_frame(outcomes: list[RunOutcome]) -> pl.DataFrame:
    """False-alarm rate per scenario x size: flagged units / units and runs with any false alarm."""
    frame = pl.DataFrame([
        {"scenario": o.scenario, "rows": o.rows, "bucket": o.bucket, "units": o.n_units,
         "flagged": o.n_flagged_units, "alarmed": bool(o.false_alarms), "n_false_alarms": len(o.false_alarms),
         "n_companions": len(o.companions)}
        for o in outcomes
    ])
    return (
        frame.group_by("scenario", "rows", "bucket", maintain_order=True)
        .agg(
            pl.len().alias("runs"),
            pl.col("units").sum(),
            pl.col("flagged").sum(),
            pl.col("alarmed").sum().alias("runs_with_false_alarm"),
            pl.col("n_false_alarms").sum().alias("false_alarm_findings"),
            pl.col("n_companions").sum().alias("companion_findings"),
        )
        .with_columns((pl.col("flagged") / pl.col("units")).alias("false_alarm_rate"))
    )


def _clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    a = (1 - level) / 2
    low = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return low, high


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown(outcomes: list[RunOutcome], command: str, elapsed: float) -> str:
    """The results page."""
    power = power_frame(outcomes)
    alarms = false_alarm_frame(outcomes)
    planted_kinds = sorted(set(power["kind"]) if power.height else set())
    lines = [
        "# Audit calibration: false alarms and power",
        "",
        f"Page written {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; runs by `{command}` "
        f"({len(outcomes)} audits, {elapsed / 60:.1f} min of wall time on a shared 2-core machine). "
        "`--json FILE` saves the runs, `--from-json FILE` rebuilds this page from them; a `## Reading` "
        "section at the end of the page is kept when the page is rewritten.",
        "",
        "Each run simulates one scenario set with one seed (`toolkit.samples.generate`, Parquet), ingests it",
        "into an in-memory store with `Store.ingest` and runs `toolkit.audit.audit` with the default",
        "thresholds and bucket. A planted problem counts as found when a finding matches it by the rule of",
        "`tests/audit/test_audit_samples.py` (kind, component, region, instance, versions; start and end within one",
        "bucket). A *unit* is one audit bucket x component x region seen in the census; a unit is flagged when",
        "a false alarm covers it: a finding above info (warning or critical) that matches no planted problem",
        "and concerns none. A finding above info that matches no planted problem by the test's rule but",
        "concerns one (same region, a version in common, overlapping time; another kind or component) is",
        "counted apart as a *companion*: the same planted problem seen by another detector. A finding on a",
        "component without predictions of its own (feature_pipeline) covers every component of its region.",
        "",
        "## False alarms",
        "",
        "One run per seed (`runs`). Rate = flagged units / units (95% Clopper-Pearson upper bound next to it);",
        "then the runs with any false alarm, the false-alarm findings and the companion findings. On clean",
        "and clean+covariate_shift nothing is planted, so every finding above info is a false alarm. Rows with",
        "bucket `hour` audit the same clean samples with hourly buckets (336 buckets instead of 14: more, smaller",
        "cells, the harder test of the thresholds).",
        "",
        "| scenario | rows | bucket | runs | units | flagged units | false-alarm rate % | 95% upper bound % "
        "| runs with a false alarm | false-alarm findings | companion findings |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += _false_alarm_rows(alarms)
    sizes = sorted({o.rows for o in outcomes})
    lines += [
        "",
        "## Power per detector and planted problem",
        "",
        "Share of planted problems found (found / planted; 95% Clopper-Pearson interval in brackets); when",
        "some were found only at info severity, `alert` gives how many were reported at warning or above.",
        "",
        "| scenario | detector | problem kind | component | "
        + " | ".join(f"{s:,} rows" for s in sizes) + " |",
        "|---|---|---|---|" + "---|" * len(sizes),
    ]
    if power.height:
        lines += _power_rows(power, sizes)
        lines += _pooled_power_rows(power, sizes)
    never = sorted(set(PROBLEM_KINDS) - set(planted_kinds))
    if never:
        lines += ["", f"Kinds never planted in these runs (power not measured): {', '.join(never)}."]
    lines += _misses_and_alarms(outcomes)
    lines += _companion_rows(outcomes)
    lines.append("")
    return "\n".join(lines)


def _false_alarm_rows(alarms: pl.DataFrame) -> list[str]:
    """The false-alarm table's rows, one per scenario, bucket and size."""
    lines = []
    for r in alarms.sort("scenario", "bucket", "rows").iter_rows(named=True):
        upper = _clopper_pearson(r["flagged"], r["units"])[1]
        lines.append(
            f"| {r['scenario']} | {r['rows']:,} | {r['bucket']} | {r['runs']} | {r['units']:,} | {r['flagged']} | "
            f"{_pct(r['false_alarm_rate'])} | {100 * upper:.3f} | {r['runs_with_false_alarm']} | "
            f"{r['false_alarm_findings']} | {r['companion_findings']} |"
        )
    return lines


def _power_cell(power: pl.DataFrame, key: dict, s: int) -> str:
    sel = power.filter(
        (pl.col("scenario") == key["scenario"]) & (pl.col("kind") == key["kind"])
        & (pl.col("component") == key["component"]) & (pl.col("rows") == s)
    )
    if sel.height == 0:
        return "-"
    r = sel.row(0, named=True)
    alert = "" if r["alerted"] == r["found"] else f", alert {r['alerted']}/{r['planted']}"
    return (f"{_pct(r['power'])}% ({r['found']}/{r['planted']}{alert}) "
            f"[{_pct(r['ci_low'])}, {_pct(r['ci_high'])}]")


def _power_rows(power: pl.DataFrame, sizes: list[int]) -> list[str]:
    """The power table's rows, one per scenario, detector, kind and component."""
    lines = []
    keys = power.select("scenario", "detector", "kind", "component").unique(maintain_order=True)
    for key in keys.sort("scenario", "detector", "kind", "component").iter_rows(named=True):
        cells = [_power_cell(power, key, s) for s in sizes]
        lines.append(f"| {key['scenario']} | {key['detector']} | {key['kind']} | {key['component']} | "
                     + " | ".join(cells) + " |")
    return lines


def _pooled_cell(pooled: pl.DataFrame, det: str, s: int) -> str:
    sel = pooled.filter((pl.col("detector") == det) & (pl.col("rows") == s))
    if sel.height == 0:
        return "-"
    k, n, a = sel["found"][0], sel["planted"][0], sel["alerted"][0]
    return f"{_pct(k / n)}% ({k}/{n})" + ("" if a == k else f", alert {_pct(a / n)}%")


def _pooled_power_rows(power: pl.DataFrame, sizes: list[int]) -> list[str]:
    """Power per detector, all scenarios pooled: the table with its heading."""
    lines = ["", "Per detector, all scenarios pooled:", "",
             "| detector | " + " | ".join(f"{s:,} rows" for s in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    pooled = power.group_by("detector", "rows").agg(pl.col("found").sum(), pl.col("planted").sum(),
                                                     pl.col("alerted").sum())
    for det in sorted(set(pooled["detector"])):
        lines.append(f"| {det} | " + " | ".join(_pooled_cell(pooled, det, s) for s in sizes) + " |")
    return lines


def _misses_and_alarms(outcomes: list[RunOutcome]) -> list[str]:
    """Every missed planted problem and every false alarm, listed."""
    lines: list[str] = []
    misses = [(o, p) for o in outcomes for p in o.problems if not p["found"]]
    alarms_list = [(o, f) for o in outcomes for f in o.false_alarms]
    lines += ["", "## Every miss and every false alarm", ""]
    if not misses and not alarms_list:
        lines.append("No miss and no false alarm: every planted problem was found and every finding above info "
                     "matched or accompanied a planted one.")
    if misses:
        lines += ["Missed planted problems:", "", "| scenario | rows | seed | kind | component | region | versions |",
                  "|---|---|---|---|---|---|---|"]
        for o, p in misses:
            lines.append(f"| {o.scenario} | {o.rows:,} | {o.seed} | {p['kind']} | {p['component']} | "
                         f"{p['region']} | {p['versions']} |")
        lines.append("")
    if alarms_list:
        lines += ["False alarms (findings above info matching no planted problem):", "",
                  "| scenario | rows | seed | bucket | kind | severity | component | region | versions "
                  "| start | end | n | explanation |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for o, f in alarms_list:
            expl = (f["explanation"] or "").replace("|", "/").replace("\n", " ")
            lines.append(
                f"| {o.scenario} | {o.rows:,} | {o.seed} | {o.bucket} | {f['kind']} | {f['severity']} | "
                f"{f['component']} | "
                f"{f['region']} | {','.join(f['versions'])} | {f['start']} | {f['end']} | {f['n_requests']} | "
                f"{expl[:200]} |"
            )
    return lines


def _companion_rows(outcomes: list[RunOutcome]) -> list[str]:
    """Companion findings, grouped: the table with its heading (nothing when there are none)."""
    lines: list[str] = []
    companions = [(o, f) for o in outcomes for f in o.companions]
    if companions:
        grouped = (
            pl.DataFrame([{"scenario": o.scenario, "rows": o.rows, "kind": f["kind"], "severity": f["severity"],
                           "component": f["component"], "region": f["region"],
                           "versions": ",".join(f["versions"]), "example": (f["explanation"] or "")[:160]}
                          for o, f in companions])
            .group_by("scenario", "kind", "severity", "component", "region", "versions", maintain_order=True)
            .agg(pl.len().alias("findings"), pl.col("rows").unique().sort().alias("sizes"),
                 pl.col("example").first())
            .sort("scenario", "kind")
        )
        lines += ["", "Companion findings (above info, concern a planted problem without matching it), grouped:", "",
                  "| scenario | kind | severity | component | region | versions | findings | sizes | example |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in grouped.iter_rows(named=True):
            ex = r["example"].replace("|", "/").replace("\n", " ")
            lines.append(f"| {r['scenario']} | {r['kind']} | {r['severity']} | {r['component']} | {r['region']} | "
                         f"{r['versions']} | {r['findings']} | {', '.join(f'{x:,}' for x in r['sizes'])} | {ex} |")
    return lines
