"""Statistical calibration of the version audit: false alarms on clean data, power on planted problems.

For every scenario and sample size, draw many seeded samples with the
simulator (``toolkit.samples.generate``, Parquet), ingest them into an
in-memory store as a user would (``Store.ingest``), run
``toolkit.audit.audit`` and compare its findings with the planted problems of
``ground_truth.json`` using the matching rule of ``tests/audit/test_audit_samples.py``
(same kind, component, region, instance, versions; start and end within one
audit bucket of the truth). Writes ``benchmarks/results/audit_calibration.md``
(or ``--out``).

Two figures per cell of the table:

* power: the share of planted problems of each kind (hence of each detector)
  that the audit found;
* false alarms: a *unit* is one audit bucket x component x region seen in the
  census; a unit is flagged when a finding above ``info`` (warning or
  critical) that matches no planted problem covers it. The false-alarm rate
  is flagged units / units; the table also counts the runs with any such
  finding. On ``clean`` and ``clean+covariate_shift`` nothing is planted, so
  every finding above info is a false alarm.

Usage::

    .venv/bin/python benchmarks/audit_calibration.py                    # 50 seeds, 5k/20k/100k rows
    .venv/bin/python benchmarks/audit_calibration.py --seeds 5 --rows 10000 --out /tmp/ac.md  # quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterable

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.audit.test_audit_samples import BUCKET, _matches, _time  # noqa: E402
from toolkit import Store  # noqa: E402
from toolkit.audit import AuditThresholds, audit, severity_rank  # noqa: E402
from toolkit.audit.results import Bucket  # noqa: E402
from toolkit.errors import InputError  # noqa: E402
from toolkit.samples import SCENARIOS, generate  # noqa: E402

from benchmarks.audit_calibration_page import _ABOVE_INFO, markdown  # noqa: E402

#: Scenario sets run by default: each scenario alone, plus clean data with a covariate shift.
DEFAULT_SETS: tuple[tuple[str, ...], ...] = tuple((s,) for s in SCENARIOS) + (("clean", "covariate_shift"),)
DEFAULT_ROWS: tuple[int, ...] = (5_000, 20_000, 100_000)
#: Scenarios that plant no problem: every finding above info on them is a false alarm.
NOTHING_PLANTED = frozenset({"clean", "covariate_shift"})


@dataclass(frozen=True)
class RunOutcome:
    """What one audit of one simulated sample found, judged against its ground truth.

    Attributes
    ----------
    scenarios, rows, seed
        The simulated sample.
    bucket
        The audit bucket (``hour`` or ``day``).
    problems
        One dict per planted problem: ``kind``, ``component``, ``region``,
        ``versions``, ``found`` (whether a finding matches it) and
        ``severity`` (the highest severity of the matching findings, or None).
    false_alarms
        Findings above info that match no planted problem and concern none
        (kind, severity, component, region, versions, start, end, n_requests,
        explanation).
    companions
        Findings above info that match no planted problem by the test's rule
        but concern one (see :func:`_related`): the same problem seen by
        another detector, e.g. designed diversity escalated because the
        planted rollout overran its deadline.
    n_units
        Bucket x component x region units in the census.
    n_flagged_units
        Units covered by at least one false alarm.
    n_above_info
        All findings above info, matched or not.
    """

    scenarios: tuple[str, ...]
    rows: int
    seed: int
    bucket: str
    problems: tuple[dict[str, Any], ...]
    false_alarms: tuple[dict[str, Any], ...]
    companions: tuple[dict[str, Any], ...]
    n_units: int
    n_flagged_units: int
    n_above_info: int
    seconds: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.n_flagged_units <= self.n_units:
            raise ValueError("flagged units must lie between 0 and the number of units")
        if self.n_units == 0:
            raise ValueError("an audit with predictions has at least one unit")
        if self.false_alarms and self.n_flagged_units == 0:
            raise ValueError("a false alarm flags at least one unit")
        if len(self.false_alarms) + len(self.companions) > self.n_above_info:
            raise ValueError("false alarms are a subset of the findings above info")

    @property
    def scenario(self) -> str:
        """The scenario set as one label (``clean+covariate_shift``)."""
        return "+".join(self.scenarios)

    @property
    def n_found(self) -> int:
        """How many planted problems the audit found."""
        return sum(p["found"] for p in self.problems)


def _related(problem: dict, finding: dict, tolerance: dt.timedelta) -> bool:
    """Whether ``finding`` concerns ``problem`` without matching it.

    Same region (a null region is every region), a version in common and
    overlapping time ranges (within one bucket); kind and component may differ.
    """
    if None not in (problem["region"], finding["region"]) and problem["region"] != finding["region"]:
        return False
    if not set(problem["versions"]) & set(finding["versions"]):
        return False
    p_start, p_end = _time(problem["start"]), _time(problem["end"])
    f_start = finding["start"] or dt.datetime.min
    f_end = finding["end"] or dt.datetime.max
    return f_start <= p_end + tolerance and p_start <= f_end + tolerance


def _load(directory: Path) -> Store:
    store = Store(":memory:")
    store.ingest("artifacts", [directory / "artifacts.csv"])
    store.ingest("deployments", [directory / "deployments.jsonl"])
    store.ingest("predictions", sorted(p for p in directory.iterdir() if p.name.startswith("predictions.")))
    return store


def _units(census: pl.DataFrame, step: dt.timedelta) -> pl.DataFrame:
    """Distinct bucket x component x region units, with the bucket's end."""
    return (
        census.select("bucket_start", "component", "region")
        .unique()
        .with_columns((pl.col("bucket_start") + step).alias("bucket_end"))
    )


def _flagged(units: pl.DataFrame, findings: list[dict], window: tuple[dt.datetime, dt.datetime]) -> int:
    """Units covered by any of ``findings``.

    A null region or time means all of them; a null component, or one absent
    from the census (``feature_pipeline``), means every component.
    """
    if not findings or units.height == 0:
        return 0
    hit = pl.repeat(False, units.height, eager=True)
    components = set(units["component"])
    for f in findings:
        start = f["start"] or window[0]
        end = f["end"] or window[1]
        cond = (pl.col("bucket_start") < max(end, start + dt.timedelta(microseconds=1))) & (
            pl.col("bucket_end") > start
        )
        # a finding on a component that logs no predictions of its own (feature_pipeline)
        # concerns the prediction rows of every component in its region
        if f["component"] in components:
            cond = cond & (pl.col("component") == f["component"])
        if f["region"] is not None:
            cond = cond & (pl.col("region") == f["region"])
        hit = hit | units.select(cond.fill_null(False)).to_series()
    return int(hit.sum())


def run_one(
    scenarios: Iterable[str],
    rows: int,
    seed: int,
    *,
    bucket: Bucket = "auto",
    thresholds: AuditThresholds | None = None,
    workdir: Path | None = None,
) -> RunOutcome:
    """Simulate one sample, audit it and judge the findings against the planted truth.

    Parameters
    ----------
    scenarios
        Scenario names for ``toolkit.samples.generate``.
    rows, seed
        Sample size (requests) and seed.
    bucket
        Audit bucket: ``auto``, ``hour`` or ``day``.
    thresholds
        Audit thresholds (defaults when ``None``).
    workdir
        Directory for the generated files (a temporary one when ``None``).

    Returns
    -------
    RunOutcome
    """
    scenarios = tuple(scenarios)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="auditcal-", dir=workdir) as tmp:
        directory = Path(tmp)
        generate(directory, list(scenarios), rows=rows, seed=seed, fmt="parquet")
        truth = json.loads((directory / "ground_truth.json").read_text())
        with _load(directory) as store:
            result = audit(store, bucket=bucket, thresholds=thresholds)
    tolerance = BUCKET[result.bucket]
    combined = len(truth["scenarios"]) > 1
    findings = result.findings.to_dicts()
    problems = []
    for p in truth["problems"]:
        hits = [f for f in findings if _matches(p, f, tolerance, combined=combined)]
        problems.append({
            "kind": p["kind"],
            "component": p["component"],
            "region": p["region"],
            "versions": ",".join(p["versions"]),
            "found": bool(hits),
            "severity": max((f["severity"] for f in hits), key=severity_rank, default=None),
        })
    above = [f for f in findings if severity_rank(f["severity"]) > _ABOVE_INFO]
    unmatched = [
        f for f in above if not any(_matches(p, f, tolerance, combined=combined) for p in truth["problems"])
    ]
    companions = [f for f in unmatched if any(_related(p, f, tolerance) for p in truth["problems"])]
    false_alarms = [f for f in unmatched if f not in companions]
    units = _units(result.census, BUCKET[result.bucket])
    flagged = _flagged(units, false_alarms, (result.window_start, result.window_end))
    keep = ("kind", "severity", "component", "region", "instance_id", "versions", "start", "end",
            "n_requests", "explanation")
    return RunOutcome(
        scenarios=scenarios,
        rows=rows,
        seed=seed,
        bucket=result.bucket,
        problems=tuple(problems),
        false_alarms=tuple({k: f[k] for k in keep} for f in false_alarms),
        companions=tuple({k: f[k] for k in keep} for f in companions),
        n_units=units.height,
        n_flagged_units=flagged,
        n_above_info=len(above),
        seconds=time.perf_counter() - t0,
    )


def run(
    sets: Iterable[tuple[str, ...]],
    sizes: Iterable[int],
    seeds: int,
    *,
    seed0: int = 0,
    bucket: Bucket = "auto",
    progress: bool = True,
) -> list[RunOutcome]:
    """:func:`run_one` for every scenario set x size x seed (``seed0 .. seed0 + seeds - 1``)."""
    if seeds < 1:
        raise InputError(f"seeds must be at least 1, got {seeds}")
    out: list[RunOutcome] = []
    for rows in sizes:
        for scenarios in sets:
            t0 = time.perf_counter()
            for seed in range(seed0, seed0 + seeds):
                out.append(run_one(scenarios, rows, seed, bucket=bucket))
            if progress:
                print(f"{'+'.join(scenarios)} @ {rows} rows: {seeds} seeds in "
                      f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return out


def _parse_sets(text: str) -> tuple[tuple[str, ...], ...]:
    sets = []
    for part in text.split(","):
        names = tuple(n.strip() for n in part.split("+") if n.strip())
        for n in names:
            if n not in SCENARIOS:
                raise InputError(f"unknown scenario {n!r}: choose from {', '.join(SCENARIOS)} (join with '+')")
        if names:
            sets.append(names)
    if not sets:
        raise InputError("no scenario given: e.g. --scenarios clean,canary,clean+covariate_shift")
    return tuple(sets)


def _to_json(outcomes: list[RunOutcome], command: str, elapsed: float) -> str:
    return json.dumps({
        "command": command,
        "elapsed_s": elapsed,
        "runs": [
            {"scenario": o.scenario, "rows": o.rows, "seed": o.seed, "bucket": o.bucket,
             "problems": list(o.problems), "false_alarms": list(o.false_alarms),
             "companions": list(o.companions), "units": o.n_units,
             "flagged_units": o.n_flagged_units, "above_info": o.n_above_info, "seconds": o.seconds}
            for o in outcomes
        ],
    }, default=str, indent=1)


def _from_json(text: str) -> tuple[list[RunOutcome], str, float]:
    """Outcomes, command and elapsed seconds saved by ``--json`` (times stay text)."""
    data = json.loads(text)
    outcomes = [
        RunOutcome(
            scenarios=tuple(r["scenario"].split("+")), rows=r["rows"], seed=r["seed"], bucket=r["bucket"],
            problems=tuple(r["problems"]), false_alarms=tuple(r["false_alarms"]),
            companions=tuple(r["companions"]), n_units=r["units"], n_flagged_units=r["flagged_units"],
            n_above_info=r["above_info"], seconds=r["seconds"],
        )
        for r in data["runs"]
    ]
    return outcomes, data["command"], data["elapsed_s"]


def _kept_reading(path: Path) -> str:
    """The hand-written ``## Reading`` section at the end of an earlier page, kept across runs."""
    if not path.exists():
        return ""
    text = path.read_text()
    at = text.find("\n## Reading")
    return "" if at < 0 else text[at:].rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``--help`` lists the options)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=50, help="seeded replications per scenario and size (default 50)")
    p.add_argument("--rows", default=",".join(str(r) for r in DEFAULT_ROWS),
                   help="comma-separated sample sizes in requests (default 5000,20000,100000)")
    p.add_argument("--scenarios", default=",".join("+".join(s) for s in DEFAULT_SETS),
                   help="comma-separated scenario sets; '+' combines scenarios (default: each scenario "
                        "and clean+covariate_shift)")
    p.add_argument("--seed0", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--bucket", default="auto", choices=("auto", "hour", "day"))
    p.add_argument("--hourly-seeds", type=int, default=20,
                   help="also audit the sets with nothing planted (clean, covariate_shift) with hourly buckets, "
                        "this many seeds per size (default 20; 0 skips)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "audit_calibration.md"))
    p.add_argument("--json", default=None, help="also write every run's outcome to this JSON file")
    p.add_argument("--from-json", default=None,
                   help="rebuild the page from a JSON file written by --json instead of running")
    args = p.parse_args(argv)
    if args.from_json:
        outcomes, command, elapsed = _from_json(Path(args.from_json).read_text())
    else:
        try:
            sets = _parse_sets(args.scenarios)
            sizes = tuple(int(r) for r in args.rows.split(",") if r.strip())
        except ValueError as exc:
            p.error(f"--rows takes whole numbers separated by commas: {exc}")
        except InputError as exc:
            p.error(str(exc))
        t0 = time.time()
        outcomes = run(sets, sizes, args.seeds, seed0=args.seed0, bucket=args.bucket)
        unplanted = tuple(x for x in sets if set(x) <= NOTHING_PLANTED)
        if args.hourly_seeds > 0 and args.bucket != "hour" and unplanted:
            outcomes += run(unplanted, sizes, args.hourly_seeds, seed0=args.seed0, bucket="hour")
        elapsed = time.time() - t0
        command = (".venv/bin/python benchmarks/audit_calibration.py "
                   + " ".join(argv if argv is not None else sys.argv[1:])).strip()
        if args.json:
            Path(args.json).write_text(_to_json(outcomes, command, elapsed))
    out = Path(args.out)
    text = markdown(outcomes, command, elapsed) + _kept_reading(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
