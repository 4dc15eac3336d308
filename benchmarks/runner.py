"""Running the measures: each task in a fresh process (peak RSS, CPU, load), repeated, tier by tier."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.generate import generate_tier
from benchmarks.targets import GIB, TARGET_INGEST_RATIO, TARGET_SECONDS_100M

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"
DOWHY_SITE = WORK / "dowhy-site"


def run_task(name: str, opts: dict, *, env: dict | None = None, timeout: float = 7200) -> dict:
    """Run one task in a fresh process; return its result with wall time, peak RSS and load.

    Raises
    ------
    RuntimeError
        When the task fails (its stderr tail is in the message).
    """
    load_before = os.getloadavg()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(HERE / "tasks.py"), name, json.dumps(opts)],
                                stdout=out, stderr=err, env=env, cwd=str(ROOT))
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.startswith("BENCH-RESULT ")), None)
    if proc.returncode != 0 or line is None:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"task {name} {opts} failed (exit {proc.returncode}, {wall:.0f} s):\n{tail}")
    result = json.loads(line[len("BENCH-RESULT "):])
    result.update({
        "wall_seconds": wall,
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # kilobytes on Linux
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "load_before": load_before[0],
        "load_after": os.getloadavg()[0],
    })
    return result


def repeat(name: str, opts: dict, n: int, log, **kw) -> dict:
    """Run a task ``n`` times; summarise seconds (median, min, max) and peak memory (max).

    A failing task does not stop the run: the entry then holds ``error``
    (the message with the task's stderr tail) and no timings.
    """
    runs = []
    for i in range(n):
        try:
            r = run_task(name, opts, **kw)
        except RuntimeError as exc:
            log(f"    {name} #{i + 1}: FAILED: {str(exc).splitlines()[-1]}")
            return {"task": name, "opts": {k: v for k, v in opts.items() if k != "temp_directory"},
                    "error": str(exc), "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}
        runs.append(r)
        log(f"    {name} #{i + 1}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_bytes'] / GIB:.2f} GiB, "
            f"load {r['load_before']:.1f}")
    secs = [r["seconds"] for r in runs]
    return {
        "task": name, "opts": {k: v for k, v in opts.items() if k not in ("temp_directory",)},
        "repeats": n, "median": statistics.median(secs), "min": min(secs), "max": max(secs),
        "seconds": secs, "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs),
        "load": [round(r["load_before"], 2) for r in runs] + [round(runs[-1]["load_after"], 2)],
        "last": {k: v for k, v in runs[-1].items() if k != "profile"},
        "profile": runs[-1].get("profile"),
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def ensure_dowhy(log) -> dict:
    """Install DoWhy (benchmark-only) into benchmarks/work/dowhy-site; return the child environment.

    It goes to its own directory (``pip install --target``), not into the
    project's virtualenv: DoWhy's dependencies pin an older scipy, which
    would otherwise replace the one the toolkit is tested with.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(DOWHY_SITE), str(ROOT)])
    probe = subprocess.run([sys.executable, "-c", "import dowhy.gcm, sklearn"], env=env, capture_output=True)
    if probe.returncode != 0:
        log("  installing dowhy into benchmarks/work/dowhy-site (benchmark-only dependency) ...")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(DOWHY_SITE), "dowhy"],
                       check=True)
    return env


def machine() -> dict:
    """What the measures ran on: CPU, memory, commit, Python and library versions."""
    import duckdb
    import numpy
    import pandas
    import polars
    import statsmodels

    from toolkit import __version__

    mem = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_bytes": mem, "cpu": cpu, "platform": platform.platform(),
            "python": platform.python_version(), "duckdb": duckdb.__version__, "polars": polars.__version__,
            "numpy": numpy.__version__, "pandas": pandas.__version__, "statsmodels": statsmodels.__version__,
            "vdrift": __version__, "commit": commit}


class _Saving(dict):
    """The measures of a tier, saved (merged into the results file) as each one arrives."""

    def __init__(self, save) -> None:
        super().__init__()
        self._save = save

    def __setitem__(self, key: str, value: dict) -> None:
        super().__setitem__(key, value)
        self._save(dict(self))


def run_tier(tier: str, args, log, save=lambda measured: None) -> dict[str, dict]:
    """Run every selected measure on one tier; return the measures by name."""
    out: dict[str, dict] = _Saving(save)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    tmp = work / "tmp"
    tmp.mkdir(exist_ok=True)
    base = {"tier": tier, "memory_limit": args.memory_limit, "temp_directory": str(tmp),
            "data_root": str(args.data_root), "work": str(work)}
    db = work / f"{tier}.duckdb"
    fresh = work / f"{tier}-ingest.duckdb"
    n = args.repeats
    want = set(args.tasks)

    log(f"[{tier}] data")
    out["generate"] = {"task": "generate", **generate_tier(tier, args.data_root)}

    if "ingest" in want:
        log(f"[{tier}] ingest vs DuckDB CREATE TABLE AS read_parquet")
        out["duckdb_ctas"] = repeat("duckdb_ctas", {**base, "db": str(work / f"{tier}-ctas.duckdb")}, n, log)
        out["ingest"] = repeat("ingest", {**base, "db": str(fresh)}, n, log)
        os.replace(fresh, db)  # the last repeat's store is the one the analyses read
    elif not db.exists():
        run_task("ingest", {**base, "db": str(fresh)})
        os.replace(fresh, db)
    if "incremental" in want:
        log(f"[{tier}] incremental ingest of the last day")
        out["incremental"] = repeat("incremental", {**base, "inner_repeats": n}, 1, log)
        out["dupcheck"] = repeat("dupcheck", {**base, "db": str(db)}, 1, log)
    if "pruning" in want:
        log(f"[{tier}] window pruning (EXPLAIN ANALYZE)")
        out["pruning"] = repeat("pruning", {**base, "db": str(db)}, 1, log)
    if "audit" in want:
        log(f"[{tier}] audit")
        out["audit"] = repeat("audit", {**base, "db": str(db)}, n, log)
    if "attribute" in want:
        for method in args.methods:
            for n_boot in sorted({args.n_boot, 0}, reverse=True):
                log(f"[{tier}] attribute {method} n_boot={n_boot}")
                out[f"attribute:{method}:{n_boot}"] = repeat(
                    "attribute", {**base, "db": str(db), "method": method, "n_boot": n_boot}, n, log)
    if "explain" in want:
        log(f"[{tier}] explain n_boot={args.n_boot}")
        out["explain"] = repeat("explain", {**base, "db": str(db), "n_boot": args.n_boot}, n, log)
    if "report" in want and tier in args.report_tiers:
        log(f"[{tier}] incident report")
        out["report"] = repeat("report", {**base, "db": str(db)}, 1, log)
    if "glm" in want and tier in args.glm_tiers:
        log(f"[{tier}] cell GLM vs row-level pandas + statsmodels")
        ref = work / f"{tier}-glm-toolkit.json"
        out["toolkit_glm"] = repeat("toolkit_glm", {**base, "db": str(db), "out": str(ref)}, n, log)
        if tier in args.pandas_tiers:
            out["pandas_glm"] = repeat("pandas_glm", {**base, "db": str(db), "reference": str(ref)},
                                       max(1, min(n, args.pandas_repeats)), log)
    if "dowhy" in want and tier in args.dowhy_tiers:
        log(f"[{tier}] DoWhy distribution_change_robust")
        env = ensure_dowhy(log)
        out["dowhy"] = repeat("dowhy", {**base, "db": str(db)}, 1, log, env=env)
    if "spark" in want and tier in args.spark_tiers:
        log(f"[{tier}] Spark local mode vs DuckDB, side by side")
        out["spark"] = repeat("spark", {**base, "db": str(db), "n_boot": args.n_boot}, 1, log)
    if "spark_lake" in want and tier in args.spark_tiers:
        log(f"[{tier}] an attached lake: DuckDB's views vs Spark reading the files")
        out["spark_lake"] = repeat("spark_lake", {**base, "db": str(db), "n_boot": args.n_boot,
                                                  "work": str(work)}, 1, log)
    if args.profile:
        for key in _missed(out):
            entry = out[key]
            log(f"[{tier}] profiling {key}")
            prof = run_task(entry["task"], {**base, **entry["opts"], "temp_directory": str(tmp), "profile": True})
            entry["profile"] = prof.get("profile")
    return out


def _missed(out: dict) -> list[str]:
    """Measures that miss (or, scaled linearly to 100M rows, would miss) a target: worth a profile."""
    keys = []
    out = {k: e for k, e in out.items() if "error" not in e}
    if ("ingest" in out and "duckdb_ctas" in out
            and out["ingest"]["median"] > TARGET_INGEST_RATIO * out["duckdb_ctas"]["median"]):
        keys.append("ingest")
    rows = out.get("generate", {}).get("rows_written", 0) or 1
    for key, entry in out.items():
        if key in ("audit", "explain") or (key.startswith("attribute:") and not key.endswith(":0")):
            if entry["median"] * 100e6 / rows > TARGET_SECONDS_100M or entry["median"] > TARGET_SECONDS_100M:
                keys.append(key)
    return keys
