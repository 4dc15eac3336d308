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
    # imported here, once main() has put this checkout first on sys.path: the store-building process runs this
    # file with PYTHONPATH = --build-root, whose benchmarks/ need not have the page module
    from benchmarks.attribution_calibration_page import markdown, summarise

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
