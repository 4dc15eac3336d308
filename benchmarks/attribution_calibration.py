r"""Accuracy and interval coverage of the attribution against replay truth: real-data cases and the simulator.

For every replication of every source, build a store, attribute the shift of
each metric between the two windows with every method
(``toolkit.attribution.attribute(..., method='all')``) and compare the data
drift and version drift of each method with the exact replay truth (every
logged input replayed through every version):

* sources: the two real-data replay cases (``toolkit.samples.real``:
  ``flights``, ``nlswork``) resampled with ``--fraction`` (0.7) and
  ``seed`` = replication index, which redraws the routing (canary draws,
  experiment salt) and the subsample of records; and the simulator scenarios
  canary, rollback, config_mismatch, experiment, covariate_shift
  (``toolkit.samples.simulate(scenarios=[name], rows=--rows, seed=rep)``);
* metrics: ``rate:prediction=<positive label>`` and ``mean:score``; on the
  real cases also ``accuracy``, reported in a table of its own (the replay
  truth of an outcome metric books concept drift, a change of the outcome
  given the inputs, to data drift, while vdrift books it to the residual);
* figures per source x metric x method x component: mean error (estimate -
  truth), RMSE, the share of replications within the acceptance tolerance
  ``max(0.006, 0.3 * |truth|)`` (0.6 points of a rate or accuracy; 0.006 of a
  mean score, scores being probabilities), and the coverage of the truth by
  the 95% interval (with its Wilson 95% interval over the replications).

Stores are built in a separate process whose ``PYTHONPATH`` is
``--build-root`` (default: this checkout) and saved as ``.duckdb`` files under
``--work``; the attribution then runs with this checkout's toolkit in at most
``--jobs`` processes (DuckDB, BLAS and polars held to one thread each).
Replications are run in order of their index relative to the R of their kind,
so a run cut by ``--budget-min`` keeps the replication counts in proportion. Writes
``benchmarks/results/attribution_calibration.md`` and the raw replications to
``benchmarks/results/attribution_calibration.csv``; a hand-written reading in
``benchmarks/results/attribution_calibration.notes.md`` (when present) is
appended to the page.

Usage::

    .venv/bin/python benchmarks/attribution_calibration.py            # R=40 per case, 20 per scenario, 2 jobs
    .venv/bin/python benchmarks/attribution_calibration.py --real-reps 2 --sim-reps 2 \
        --out /tmp/ac.md --csv /tmp/ac.csv                               # quick look
    .venv/bin/python benchmarks/attribution_calibration.py --build-root /tmp/calib-base   # stores from another checkout
    .venv/bin/python benchmarks/attribution_calibration.py --real-reps 20 --sim-reps 10 --first-rep 20 \
        --csv /tmp/more.csv --out /tmp/more.md                          # 20 more replications (seeds 20-39)
    .venv/bin/python benchmarks/attribution_calibration.py --from-csv benchmarks/results/attribution_calibration.csv \
        /tmp/more.csv                                                   # one page from both runs
"""

from __future__ import annotations

import os

# one thread per worker process: the run stays on --jobs cores
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POLARS_MAX_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import datetime as dt
import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BASELINE = "2026-11-02..2026-11-09"
COMPARISON = "2026-11-09..2026-11-16"
CASES = ("flights", "nlswork")
SIM_SCENARIOS = ("canary", "rollback", "config_mismatch", "experiment", "covariate_shift")
COMPONENTS = ("data_drift", "version_drift")
METHODS = ("regression", "matched", "standardization")
#: acceptance tolerance: max(TOL_ABS, TOL_REL * |truth|), raw units of the metric
TOL_ABS = 0.006
TOL_REL = 0.30
#: the coverage band a 95% interval should land in over the replications
BAND = (90.0, 98.0)
#: share of replications within tolerance for a cell to "meet" it
TOL_PASS = 90.0
#: slack of the coverage check (degenerate cells: a single version gives a zero-width interval at the truth)
EPS = 1e-9
WORK = ROOT / "benchmarks" / "work" / "attribution_calibration"
RESULTS = ROOT / "benchmarks" / "results"


# ----------------------------------------------------------------------------- tasks
def tasks_of(args: argparse.Namespace) -> list[dict]:
    """One task per source x replication, in order of rep / R of its kind (a cut run keeps R in proportion)."""
    f = args.first_rep
    out = [{"kind": "real", "source": c, "rep": f + i} for i in range(args.real_reps) for c in args.cases]
    out += [{"kind": "sim", "source": s, "rep": f + i} for i in range(args.sim_reps) for s in args.scenarios]
    total = {"real": args.real_reps, "sim": args.sim_reps}
    out.sort(key=lambda t: ((t["rep"] - f + 0.5) / total[t["kind"]], t["kind"]))
    for t in out:
        t["store"] = str(Path(args.work) / f"{t['source']}-{t['rep']}.duckdb")
        t["truth"] = str(Path(args.work) / f"{t['source']}-{t['rep']}.truth.json")
    return out


# ----------------------------------------------------------------------------- building stores
def _build_one(job: tuple[dict, dict]) -> dict:
    task, opts = job
    try:
        for p in (task["store"], task["store"] + ".wal"):
            if os.path.exists(p):
                os.remove(p)
        if task["kind"] == "real":
            from toolkit.samples.real import load_case_store
            store, truth = load_case_store(task["source"], task["store"], seed=task["rep"],
                                           fraction=opts["fraction"])
        else:
            from toolkit.samples import load_simulation, simulate
            sim = simulate(scenarios=[task["source"]], rows=opts["rows"], seed=task["rep"])
            truth = sim.ground_truth
            store = load_simulation(sim, task["store"])
        store.close()
        Path(task["truth"]).write_text(json.dumps(json.loads(truth.to_json())["attribution"]))
        return {**task, "error": None}
    except Exception as exc:  # noqa: BLE001 - reported per task
        return {**task, "error": f"{type(exc).__name__}: {exc}"}


def build_main(spec_path: str) -> int:
    """Entry of the build process (run with PYTHONPATH = the build root)."""
    spec = json.loads(Path(spec_path).read_text())
    sys.path.insert(0, spec["build_root"])
    jobs = [(t, spec["opts"]) for t in spec["tasks"]]
    ctx = mp.get_context("fork")
    failed = 0
    with ctx.Pool(spec["jobs"]) as pool:
        for done in pool.imap_unordered(_build_one, jobs):
            if done["error"]:
                failed += 1
                print(f"build {done['source']} rep {done['rep']}: {done['error']}", file=sys.stderr, flush=True)
    return 1 if failed == len(jobs) and jobs else 0


def build_stores(tasks: list[dict], args: argparse.Namespace) -> None:
    """Build every replication's store in a subprocess that imports the ``--build-root`` checkout."""
    Path(args.work).mkdir(parents=True, exist_ok=True)
    spec = {"build_root": str(Path(args.build_root).resolve()), "jobs": args.jobs, "tasks": tasks,
            "opts": {"fraction": args.fraction, "rows": args.rows}}
    spec_path = Path(args.work) / "build.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, PYTHONPATH=spec["build_root"])
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_build", str(spec_path)]
    proc = subprocess.run(cmd, env=env, cwd=spec["build_root"], check=False)
    if proc.returncode:
        raise SystemExit(f"building the stores failed with {args.build_root} (exit {proc.returncode}); "
                         "pass --build-root of a checkout whose ingest works")


# ----------------------------------------------------------------------------- attribution
_STATE: dict = {}


def _init_worker(deadline: float, n_boot: int, keep: bool, segments: bool) -> None:
    sys.path.insert(0, str(ROOT))
    import toolkit.attribution
    import toolkit.store  # noqa: F401
    _STATE.update(deadline=deadline, n_boot=n_boot, keep=keep,
                  extra={"segments": True} if segments else {})


def _attribute_one(task: dict) -> dict:
    if time.time() > _STATE["deadline"]:
        return {**task, "status": "skipped", "rows": []}
    if not (os.path.exists(task["store"]) and os.path.exists(task["truth"])):
        return {**task, "status": "not built", "rows": []}
    from toolkit.attribution import attribute
    from toolkit.store import Store

    truth = json.loads(Path(task["truth"]).read_text())
    rows, t0 = [], time.time()
    try:
        with Store(task["store"], read_only=True, threads=1) as store:
            for metric, tr in truth.items():
                t1 = time.time()
                res = attribute(store, metric, BASELINE, COMPARISON, method="all",
                                n_boot=_STATE["n_boot"], seed=task["rep"], **_STATE["extra"])
                seconds = time.time() - t1
                total_obs = float(res.total)
                for method in res.methods:
                    resid = res.component(method, "residual")[0]
                    for comp in COMPONENTS:
                        est, lo, hi = res.component(method, comp)
                        rows.append({
                            "kind": task["kind"], "source": task["source"], "rep": task["rep"],
                            "metric": metric, "method": method, "component": comp,
                            "truth": float(tr[comp]), "estimate": float(est),
                            "ci_low": float(lo), "ci_high": float(hi),
                            "est_residual": float(resid), "observed_total": total_obs,
                            "truth_total": float(tr["total"]), "truth_residual": float(tr.get("residual", 0.0)),
                            "truth_sampling_noise": float(tr.get("sampling_noise", 0.0)),
                            "seconds": seconds,
                        })
    except Exception as exc:  # noqa: BLE001 - reported per task
        return {**task, "status": f"error: {type(exc).__name__}: {exc}", "rows": rows}
    finally:
        if not _STATE["keep"]:
            for p in (task["store"], task["store"] + ".wal", task["truth"]):
                if os.path.exists(p):
                    os.remove(p)
    return {**task, "status": "ok", "rows": rows, "seconds": time.time() - t0}


def run(tasks: list[dict], args: argparse.Namespace, deadline: float) -> list[dict]:
    """Attribute every task in worker processes until done or the deadline; return one row per estimate."""
    ctx = mp.get_context("spawn")
    rows: list[dict] = []
    counts: dict[tuple[str, str], int] = {}
    raw = Path(args.work) / "replications.jsonl"
    init = (deadline, args.n_boot, args.keep, args.segments)
    with ctx.Pool(args.jobs, initializer=_init_worker, initargs=init) as pool, \
            raw.open("w") as sink:
        for done in pool.imap(_attribute_one, tasks):
            key = (done["source"], done["status"])
            counts[key] = counts.get(key, 0) + 1
            if done["status"] == "ok":
                for r in done["rows"]:
                    sink.write(json.dumps(r) + "\n")
                sink.flush()
                rows += done["rows"]
                print(f"{done['source']} rep {done['rep']}: {done['seconds']:.0f} s", file=sys.stderr, flush=True)
            elif done["status"] != "skipped":
                print(f"{done['source']} rep {done['rep']}: {done['status']}", file=sys.stderr, flush=True)
    for (source, status), n in sorted(counts.items()):
        if status != "ok":
            print(f"{source}: {n} replications {status}", file=sys.stderr)
    return rows


# ----------------------------------------------------------------------------- summary
def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` trials (``nan`` for ``n = 0``)."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def summarise(frame):
    """Per source, metric, method and component: error, RMSE, share within tolerance and coverage."""
    import polars as pl

    tol = pl.max_horizontal(pl.lit(TOL_ABS), TOL_REL * pl.col("truth").abs())
    g = (
        frame.with_columns(
            (pl.col("estimate") - pl.col("truth")).alias("error"),
            ((pl.col("ci_low") - EPS <= pl.col("truth")) & (pl.col("truth") <= pl.col("ci_high") + EPS))
            .alias("covered"),
            ((pl.col("estimate") - pl.col("truth")).abs() <= tol).alias("within"),
            (pl.col("ci_high") - pl.col("ci_low")).alias("width"),
        )
        .group_by("kind", "source", "metric", "method", "component", maintain_order=True)
        .agg(
            pl.len().alias("reps"),
            pl.col("truth").mean().alias("mean_truth"),
            pl.col("truth").std().alias("sd_truth"),
            pl.col("error").mean().alias("mean_error"),
            pl.col("error").std().alias("sd_error"),
            (pl.col("error") ** 2).mean().sqrt().alias("rmse"),
            pl.col("within").sum().alias("n_within"),
            pl.col("covered").sum().alias("n_covered"),
            pl.col("width").mean().alias("mean_width"),
        )
        .with_columns(
            (100 * pl.col("n_within") / pl.col("reps")).alias("within_pct"),
            (100 * pl.col("n_covered") / pl.col("reps")).alias("coverage_pct"),
            ((pl.col("rmse") < EPS) & (pl.col("mean_width") < EPS)).alias("exact"),
        )
        .with_columns(
            (pl.col("exact") | pl.col("coverage_pct").is_between(*BAND)).alias("in_band"),
            (pl.col("within_pct") >= TOL_PASS).alias("in_tol"),
            pl.struct("n_covered", "reps").map_elements(
                lambda x: wilson(x["n_covered"], x["reps"])[0], return_dtype=pl.Float64).alias("cov_lo"),
            pl.struct("n_covered", "reps").map_elements(
                lambda x: wilson(x["n_covered"], x["reps"])[1], return_dtype=pl.Float64).alias("cov_hi"),
        )
    )
    return g


def _metric_family(metric: str) -> str:
    if metric.startswith("rate:"):
        return "rate"
    if metric.startswith("mean:"):
        return "mean:score"
    return metric


def _ok_cov(c: float) -> bool:
    return BAND[0] <= c <= BAND[1]


def _row(r: dict) -> str:
    lo, hi = r["cov_lo"], r["cov_hi"]
    if r["exact"]:
        cov = f"{r['coverage_pct']:.0f} (exact: zero-width interval at the truth)"
    else:
        flag = "" if _ok_cov(r["coverage_pct"]) else (" **low**" if r["coverage_pct"] < BAND[0] else " **high**")
        cov = f"{r['coverage_pct']:.0f} ({lo:.0f}-{hi:.0f}){flag}"
    tol_flag = "" if r["within_pct"] >= TOL_PASS else " **<90**"
    return (f"| {r['source']} | `{r['metric']}` | {r['method']} | {r['component']} | {r['reps']} | "
            f"{r['mean_truth']:+.4f} | {r['mean_error']:+.4f} | {r['rmse']:.4f} | {r['mean_width']:.4f} | "
            f"{r['within_pct']:.0f}{tol_flag} | {cov} |")


HEAD = ("| source | metric | method | component | R | mean truth | mean error | RMSE | mean CI width | "
        "within tol. % | coverage % (Wilson 95%) |\n|---|---|---|---|---|---|---|---|---|---|---|")


def interpretation(summary) -> list[str]:
    """Data-driven reading: which cells meet the coverage band and the tolerance (rate and mean:score)."""
    import polars as pl

    main = summary.filter(pl.col("metric") != "accuracy")
    live = main.filter(~pl.col("exact"))
    nominal_out = live.filter((pl.col("cov_hi") < 95.0) | (pl.col("cov_lo") > 95.0))
    out = [
        (f"Of the {main.height} cells of rate and mean-score metrics ({main.height - live.height} of them exact: "
        "a single version in both windows gives a zero-width interval at the truth), "
        f"{main.filter(pl.col('in_band') & pl.col('in_tol')).height} meet both the coverage band "
        f"({BAND[0]:.0f}-{BAND[1]:.0f}%) and the tolerance (at least {TOL_PASS:.0f}% of replications within "
        f"max(0.006, 30% of |truth|)). Of the others, {live.filter(pl.col('coverage_pct') < BAND[0]).height} "
        f"under-cover, {live.filter(pl.col('coverage_pct') > BAND[1]).height} over-cover, "
        f"{main.filter(~pl.col('in_tol')).height} miss the tolerance; {nominal_out.height} have a Wilson interval "
        "of the coverage that excludes 95% (a miss not explained by the finite R)."),
        "",
        "By method and component (pooled over sources and metrics; real cases and simulator apart):",
        "",
        ("| sources | method | component | cells | cells in band | cells within tol. | pooled coverage % "
        "| pooled within tol. % | RMSE range | worst coverage % (cell) |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, label in (("real", "real cases"), ("sim", "simulator")):
        sub = main.filter(pl.col("kind") == kind)
        for method in METHODS:
            for comp in COMPONENTS:
                c = sub.filter((pl.col("method") == method) & (pl.col("component") == comp))
                if c.height == 0:
                    continue
                reps = c["reps"].sum()
                worst = c.sort("coverage_pct").row(0, named=True)
                out.append(
                    f"| {label} | {method} | {comp} | {c.height} | {c['in_band'].sum()} | {c['in_tol'].sum()} | "
                    f"{100 * c['n_covered'].sum() / reps:.1f} | {100 * c['n_within'].sum() / reps:.1f} | "
                    f"{c['rmse'].min():.4f}-{c['rmse'].max():.4f} | "
                    f"{worst['coverage_pct']:.0f} ({worst['source']}, `{worst['metric']}`) |")
    over = main.filter(pl.col("in_tol") & ~pl.col("exact") & (pl.col("coverage_pct") > BAND[1]))
    if over.height:
        ratio = (over["mean_width"] / (2 * 1.959964 * over["sd_error"])).drop_nans().drop_nulls()
        out += ["", (f"{over.height} cells within the tolerance over-cover (coverage above {BAND[1]:.0f}%): their "
                "intervals are wider than the spread of the error calls for; the mean half-width is "
                f"{ratio.median():.1f} times 1.96 SD of the error across replications in the median such cell "
                f"(range {ratio.min():.1f}-{ratio.max():.1f}; 1.0 is a calibrated interval when the bias is nil).")]
    fails = main.filter((~pl.col("in_band") & (pl.col("coverage_pct") < BAND[0])) | ~pl.col("in_tol")).sort(
        "coverage_pct")
    if fails.height:
        out += ["", ("Cells that under-cover or miss the tolerance, lowest coverage first. bias = mean error; "
                "bias/SD = bias over the SD of the error across replications (how many of its own standard "
                "deviations the estimate is off on average); half-width = mean half-width of the interval, "
                "to compare with the RMSE:"), ""]
        for r in fails.iter_rows(named=True):
            sd = r["sd_error"] if r["sd_error"] is not None else float("nan")
            ratio = r["mean_error"] / sd if sd > 0 else float("nan")
            why = []
            if not r["in_band"]:
                why.append(f"coverage {r['coverage_pct']:.0f}% ({r['cov_lo']:.0f}-{r['cov_hi']:.0f})")
            if not r["in_tol"]:
                why.append(f"within tolerance {r['within_pct']:.0f}%")
            out.append(
                f"- {r['source']} `{r['metric']}` {r['method']} {r['component']}: {', '.join(why)}; "
                f"truth {r['mean_truth']:+.4f}, bias {r['mean_error']:+.4f} (bias/SD {ratio:+.1f}), "
                f"RMSE {r['rmse']:.4f}, half-width {r['mean_width'] / 2:.4f}.")
    return out


def markdown(frame, summary, meta: dict, notes: str | None) -> str:
    """The results page: the summary tables, the run's metadata and the hand-written notes."""
    import polars as pl

    lines = [
        "# Attribution accuracy and interval calibration against replay truth",
        "",
        (f"Generated {meta['generated']} by `benchmarks/attribution_calibration.py` ({meta['cmd']}); "
        f"{meta['runtime']}."),
        "",
        ("Each replication builds a store and attributes the shift of each metric between "
        f"{BASELINE} and {COMPARISON} with every method (`method='all'`, `n_boot={meta['n_boot']}`, "
        "bootstrap seed = replication index); the data drift and version drift of each method are compared with "
        "the exact replay truth. Real-data cases (`toolkit.samples.real`): the records resampled with "
        f"`fraction={meta['fraction']}` and seed = replication index (redraws the routing and the records). "
        f"Simulator: `simulate(scenarios=[name], rows={meta['rows']}, seed=replication index)`."),
        "",
        (f"- **within tol. %**: share of replications with |estimate - truth| <= max({TOL_ABS}, "
        f"{TOL_REL:.0%} of |truth|) (0.6 points of a rate or accuracy; 0.006 of a mean score, a probability); "
        f"**<90** marks a cell below {TOL_PASS:.0f}%."),
        f"- **coverage %**: share of replications whose 95% interval holds the truth, with its Wilson 95% "
        f"interval; **low** / **high** mark cells outside {BAND[0]:.0f}-{BAND[1]:.0f}%. The binomial SE of a "
        "coverage near 95% is "
        + ", ".join(f"{100 * (0.95 * 0.05 / r) ** 0.5:.1f} points at R={r}"
                    for r in sorted(set(summary['reps'].to_list())) if r > 0)
        + f". Checked with a slack of {EPS:g} (cells with one version have zero-width intervals at the truth).",
        ("- **mean truth** varies between replications of the real cases (the subsample and routing change it); "
        "mean error is estimate - truth, RMSE its root mean square, mean CI width the mean of hi - lo."),
        "",
        "## Positive rate and mean score",
        "",
        HEAD,
    ]
    main = summary.filter(pl.col("metric") != "accuracy")
    for kind in ("real", "sim"):
        for r in main.filter(pl.col("kind") == kind).iter_rows(named=True):
            lines.append(_row(r))
    lines += ["", "## Reading (generated from the figures)", ""] + interpretation(summary)
    acc = summary.filter(pl.col("metric") == "accuracy")
    if acc.height:
        lines += [
            "", "## Accuracy (real cases; not comparable as an acceptance test)", "",
            ("For an outcome metric the replay truth books concept drift (the outcome changing given the inputs, "
            "e.g. a different delay or wage regime in the comparison window) to **data drift**, because it "
            "replays the logged inputs *with their logged outcomes*; vdrift's outcome models hold the "
            "baseline's outcome-given-inputs relation and book that change to the **residual**. A gap "
            "between vdrift's data drift and the truth's is therefore expected whenever concept drift is "
            "present; the version drift is comparable in principle. The mean residual estimate is shown per "
            "cell for that reason."),
            "",
            ("| source | metric | method | component | R | mean truth | mean error | RMSE | mean CI width | "
            "within tol. % | coverage % (Wilson 95%) | mean vdrift residual |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|"),
        ]
        resid = (frame.filter(pl.col("metric") == "accuracy")
                 .group_by("source", "method", "component").agg(pl.col("est_residual").mean()))
        rmap = {(r["source"], r["method"], r["component"]): r["est_residual"] for r in resid.iter_rows(named=True)}
        for r in acc.iter_rows(named=True):
            lines.append(_row(r) + f" {rmap[(r['source'], r['method'], r['component'])]:+.4f} |")
    if notes:
        lines += ["", notes.strip()]
    lines.append("")
    return "\n".join(lines)


def _commit(root) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "toolkit"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + (" + uncommitted toolkit changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return str(root)


def write_outputs(frame, meta: dict, args: argparse.Namespace) -> str:
    """Write the Markdown page (summary and notes) to ``--out`` and return its text."""
    summary = summarise(frame)
    notes_path = Path(args.notes) if args.notes else None
    notes = notes_path.read_text() if notes_path and notes_path.is_file() else None
    text = markdown(frame, summary, meta, notes)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``--help`` lists the options)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_build"]:
        return build_main(argv[1])
    sys.path.insert(0, str(ROOT))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--real-reps", type=int, default=40, help="replications per real-data case (default 40)")
    p.add_argument("--sim-reps", type=int, default=20, help="replications per simulator scenario (default 20)")
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated real-data cases ('' for none)")
    p.add_argument("--scenarios", default=",".join(SIM_SCENARIOS), help="comma-separated scenarios ('' for none)")
    p.add_argument("--rows", type=int, default=20_000, help="requests per simulated sample (default 20000)")
    p.add_argument("--fraction", type=float, default=0.7, help="share of a real case's records kept (default 0.7)")
    p.add_argument("--n-boot", type=int, default=100, help="bootstrap replicates per attribution (default 100)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--budget-min", type=float, default=45.0,
                   help="wall-time budget in minutes; replications not started by then are skipped (default 45)")
    p.add_argument("--build-root", default=str(ROOT),
                   help="checkout whose toolkit builds the stores (default this one; e.g. a git worktree of the "
                        "last commit whose ingest works)")
    p.add_argument("--work", default=str(WORK), help="folder of the stores (deleted after use unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep the stores")
    p.add_argument("--out", default=str(RESULTS / "attribution_calibration.md"))
    p.add_argument("--csv", default=str(RESULTS / "attribution_calibration.csv"))
    p.add_argument("--notes", default=str(RESULTS / "attribution_calibration.notes.md"),
                   help="hand-written reading appended to the page when the file exists")
    p.add_argument("--first-rep", type=int, default=0,
                   help="index (= seed) of the first replication, to extend an earlier run (default 0)")
    p.add_argument("--segments", action="store_true",
                   help="attribute with segments=True (behaviour estimated inside deployment segments)")
    p.add_argument("--from-csv", nargs="+", default=None,
                   help="rebuild the page from the CSV(s) of earlier runs (several are concatenated: an extended "
                        "run); the first one's .json holds the page's header")
    args = p.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    args.work = str(Path(args.work).resolve())  # the build process runs in --build-root

    import polars as pl

    meta_path = (Path(args.from_csv[0]) if args.from_csv else Path(args.csv)).with_suffix(".json")
    if args.from_csv:
        frame = pl.concat([pl.read_csv(f) for f in args.from_csv]).unique(
            ["source", "rep", "metric", "method", "component"], keep="first", maintain_order=True)
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {
            "generated": "?", "cmd": "?", "runtime": "?", "n_boot": args.n_boot, "fraction": args.fraction,
            "rows": args.rows}
        print(write_outputs(frame, meta, args))
        return 0

    t0 = time.time()
    deadline = t0 + 60 * args.budget_min
    # the workers import the toolkit when they start: record the code they run now, not at the end
    code = _commit(ROOT)
    build_code = _commit(args.build_root)
    tasks = tasks_of(args)
    build_stores(tasks, args)
    t_build = time.time() - t0
    print(f"built {len(tasks)} stores in {t_build:.0f} s", file=sys.stderr, flush=True)
    rows = run(tasks, args, deadline)
    elapsed = time.time() - t0
    if not rows:
        raise SystemExit("no replication finished")
    frame = pl.DataFrame(rows)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(args.csv)
    reps = frame.group_by("source").agg(pl.col("rep").n_unique()).sort("source")
    rep_text = ", ".join(f"{s} R={n}" for s, n in reps.iter_rows())
    cut = "" if all(n == (args.real_reps if s in args.cases else args.sim_reps) for s, n in reps.iter_rows()) \
        else f" (cut by the {args.budget_min:g}-minute budget)"
    build_note = f"; toolkit `{code}`" if Path(args.build_root).resolve() == ROOT else (
        f"; stores built with the toolkit of `{build_code}`, attribution with `{code}`")
    meta = {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cmd": f"`--real-reps {args.real_reps} --sim-reps {args.sim_reps} --first-rep {args.first_rep} "
               f"--rows {args.rows} --fraction {args.fraction} --n-boot {args.n_boot} --jobs {args.jobs}"
               + (" --segments" if args.segments else "") + "`" + build_note,
        "runtime": f"{rep_text}{cut}; {elapsed / 60:.1f} min wall time on {args.jobs} processes "
                   f"(stores built in {t_build / 60:.1f} min)",
        "n_boot": args.n_boot, "fraction": args.fraction, "rows": args.rows,
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    print(write_outputs(frame, meta, args))
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
