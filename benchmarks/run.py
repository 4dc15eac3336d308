"""Run the benchmarks and write benchmarks/RESULTS.md.

Every measure runs as a fresh Python process (``benchmarks/tasks.py``) so
that its peak resident memory (``ru_maxrss`` from ``os.wait4``) belongs to
that task alone; each is repeated and reported as median and range, with the
1-minute load average before and after (the machine may be shared).

Usage::

    .venv/bin/python benchmarks/run.py --tiers 1m 10m          # make bench
    .venv/bin/python benchmarks/run.py --tiers 1m 10m 100m     # make bench-100m
    .venv/bin/python benchmarks/run.py --tiers 100k --repeats 1 --no-baselines   # smoke

Measures of earlier runs are kept in ``benchmarks/results/runs.json`` (one
entry per tier and task, replaced when measured again) and RESULTS.md is
written from all of them, so ``--tiers 100m`` later adds to a 1m/10m run.
"""

from __future__ import annotations

import argparse
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
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.generate import DATA, TIERS, generate_tier  # noqa: E402

WORK = HERE / "work"
DOWHY_SITE = WORK / "dowhy-site"
METHODS = ("regression", "matched", "standardization")
GIB = 2**30
#: rows per DuckDB row group (the unit its min/max pruning skips)
ROW_GROUP = 122_880

#: the targets of issue 6
TARGET_INGEST_RATIO = 1.5
TARGET_SECONDS_100M = 60.0
TARGET_RSS_100M = 4 * GIB
TARGET_GLM_SPEEDUP = 20.0
TARGET_GLM_DIFF = 1e-6


# ----------------------------------------------------------------------------- running tasks
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


# ----------------------------------------------------------------------------- set-up
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


# ----------------------------------------------------------------------------- one tier
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
        if key == "audit" or (key.startswith("attribute:") and not key.endswith(":0")):
            if entry["median"] * 100e6 / rows > TARGET_SECONDS_100M or entry["median"] > TARGET_SECONDS_100M:
                keys.append(key)
    return keys


# ----------------------------------------------------------------------------- RESULTS.md
def _boot_key(tier_runs: dict, method: str) -> str:
    """Key of the attribution run of ``method`` with the most bootstrap replicates."""
    keys = [k for k in tier_runs if k.startswith(f"attribute:{method}:")]
    return max(keys, key=lambda k: int(k.split(":")[2])) if keys else f"attribute:{method}:none"


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def _cell(entry: dict) -> str:
    return f"{_fmt_s(entry['median'])} ({_fmt_s(entry['min'])}-{_fmt_s(entry['max'])})"


def _gib(b: float) -> str:
    return f"{b / GIB:.2f}"


def _load(entry: dict) -> str:
    return "/".join(f"{x:.1f}" for x in entry["load"])


def write_results(path: Path, runs: dict, info: dict) -> str:
    """Write RESULTS.md from all stored measures and return its text."""
    tiers = [t for t in TIERS if t in runs]
    failures = [(t, k, e) for t in tiers for k, e in runs[t].items() if "error" in e]
    runs = {t: {k: e for k, e in runs[t].items() if "error" not in e} for t in tiers}
    L: list[str] = []
    L.append("# Benchmark results")
    L.append("")
    L.append("Written by `benchmarks/run.py` (do not edit by hand; rerun `make bench`). Each measure is a fresh "
             "Python process; times are the timed operation only (imports and opening the store excluded), as "
             "**median (min-max)** over the repeats; peak memory is the process's peak RSS (`ru_maxrss` via "
             "`os.wait4`, highest over the repeats, includes the Python interpreter and libraries, about "
             "0.2-0.3 GiB); *CPU s* is the user + system time of the process (and the children it waited for) "
             "in the last repeat, whole process including start-up and imports (1-3 CPU s), less sensitive to "
             "other work on the machine than wall time; *load* is the "
             "1-minute load average before each repeat and after the last. The "
             "machine was shared with other work while measuring, so times are noisy: compare CPU-bound "
             "ratios measured close together rather than absolute seconds.")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append(f"- {info['cores']} cores ({info['cpu']}), {info['memory_bytes'] / GIB:.1f} GiB memory, "
             f"{info['platform']}")
    L.append(f"- Python {info['python']}, DuckDB {info['duckdb']}, polars {info['polars']}, numpy {info['numpy']}, "
             f"pandas {info['pandas']}, statsmodels {info['statsmodels']}, vdrift {info['vdrift']} "
             f"(commit {info['commit']})")
    mem = next((e["opts"].get("memory_limit") for t in tiers for e in runs[t].values() if "opts" in e), None)
    L.append(f"- Stores opened with DuckDB `memory_limit={mem}` and `temp_directory=benchmarks/work/tmp` "
             "(`Store(path, memory_limit=..., temp_directory=...)`, CLI `--memory-limit`).")
    L.append("")
    L.append("## Data")
    L.append("")
    L.append("`benchmarks/generate.py`: the sample simulator (`toolkit.samples.generate`, all scenarios, seed 0), "
             "Parquet partitioned by day (14 files), with deployment history, registry and replay ground truth.")
    L.append("")
    L.append("| tier | requests | rows written (incl. shadow) | Parquet MiB |")
    L.append("|---|---:|---:|---:|")
    for t in tiers:
        g = runs[t].get("generate")
        if g:
            L.append(f"| {t} | {g['rows']:,} | {g['rows_written']:,} | {g['bytes'] / 2**20:.0f} |")
    L.append("")

    # -- summary of targets
    L.append("## Targets")
    L.append("")
    L.append("| target | measured | met? |")
    L.append("|---|---|---|")
    for t in tiers:
        r = runs[t]
        if "ingest" in r and "duckdb_ctas" in r:
            ratio = r["ingest"]["median"] / r["duckdb_ctas"]["median"]
            cpu = r["ingest"]["last"]["cpu_seconds"] / r["duckdb_ctas"]["last"]["cpu_seconds"]
            L.append(f"| ingest <= {TARGET_INGEST_RATIO}x DuckDB CTAS ({t}) | {ratio:.2f}x wall "
                     f"({_fmt_s(r['ingest']['median'])} s vs {_fmt_s(r['duckdb_ctas']['median'])} s), "
                     f"{cpu:.2f}x CPU time | "
                     f"{'yes' if ratio <= TARGET_INGEST_RATIO else 'no'} |")
    for t in tiers:
        r = runs[t]
        rows = r.get("generate", {}).get("rows_written", 0)
        for key in ["audit"] + [_boot_key(r, m) for m in METHODS]:
            if key not in r:
                continue
            e = r[key]
            name = "audit" if key == "audit" else f"attribution {key.split(':')[1]} ({key.split(':')[2]} bootstrap)"
            ok_t = e["median"] < TARGET_SECONDS_100M
            ok_m = e["peak_rss_bytes"] < TARGET_RSS_100M
            if t == "100m":
                verdict = "yes" if ok_t and ok_m else "no"
            else:
                verdict = (f"not measured at 100M; at {t}: " + ("under" if ok_t else "over") + " 60 s, "
                           + ("under" if ok_m else "over") + " 4 GiB")
            L.append(f"| {name} < 60 s and < 4 GiB at 100M ({t}, {rows:,} rows) | {_fmt_s(e['median'])} s "
                     f"(CPU {_fmt_s(e['last'].get('cpu_seconds'))} s), {_gib(e['peak_rss_bytes'])} GiB | {verdict} |")
    for t in tiers:
        r = runs[t]
        if "toolkit_glm" in r and "pandas_glm" in r:
            tk, pd_ = r["toolkit_glm"], r["pandas_glm"]
            speed = pd_["median"] / tk["median"]
            diff = pd_["last"]["max_abs_param_diff"]
            ok = speed >= TARGET_GLM_SPEEDUP and diff <= TARGET_GLM_DIFF
            L.append(f"| regression >= {TARGET_GLM_SPEEDUP:.0f}x faster than row-level pandas + statsmodels, "
                     f"same estimates to 1e-6 ({t}) | {speed:.0f}x, max coefficient difference {diff:.1e} | "
                     f"{'yes' if ok else 'no'} |")
    for t in tiers:
        r = runs[t]
        if "dowhy" in r:
            d = r["dowhy"]["last"]
            L.append(f"| DoWhy comparison ({t}) | {_fmt_s(r['dowhy']['median'])} s; error data "
                     f"{d['errors']['data_drift']:+.4f}, version {d['errors']['version_drift']:+.4f} | "
                     "reported (see below) |")
        if "incremental" in r:
            inc = r["incremental"]["last"]
            L.append(f"| a new day's ingest does not rescan earlier data ({t}) | {inc['ratio']:.2f}x the time "
                     f"of the same day into an empty store | {'yes' if inc['ratio'] < 1.5 else 'no'} |")
        if "pruning" in r:
            p = r["pruning"]["last"]
            for job in ("audit", "attribution"):
                main = p[job]["main"]
                if main:
                    scanned = sum(s["rows_scanned"] for s in main["scans"])
                    # pruned: each scan reads its window's rows plus at most the two row groups it straddles
                    pruned = all(s["rows_scanned"] <= s["rows_out"] + 2 * ROW_GROUP for s in main["scans"])
                    everything = sum(1 for q in p[job]["per_query"] if q["rows_scanned"] >= p["table_rows"])
                    L.append(f"| {job} on a 1-day window reads only that window ({t}) | main aggregation "
                             f"scanned {scanned:,} of {p['table_rows']:,} rows ({p['window_rows']:,} in the "
                             f"day); all {p[job]['queries']} queries together {p[job]['rows_scanned_total']:,}, "
                             f"{everything} of them the whole table | "
                             f"{'main query yes' if pruned else 'no'}{'; other queries no' if everything else ''} |")
    L.append("")

    # -- detail tables
    L.append("## Timings")
    L.append("")
    L.append("Seconds, median (min-max); peak RSS in GiB; load = 1-min load average per repeat.")
    L.append("")
    L.append("| tier | measure | repeats | seconds | CPU s (last) | rows/s | peak RSS GiB | load | measured |")
    L.append("|---|---|---:|---|---:|---:|---:|---|---|")
    for t in tiers:
        rows = runs[t].get("generate", {}).get("rows_written", 0)
        for key, e in runs[t].items():
            if "median" not in e:
                continue
            label = key
            if key.startswith("attribute:"):
                _, meth, nb = key.split(":")
                label = f"attribute {meth} (n_boot {nb})"
            rate = f"{rows / e['median']:,.0f}" if e["median"] > 0 and key in ("ingest", "duckdb_ctas") else ""
            cpu = e["last"].get("cpu_seconds")
            L.append(f"| {t} | {label} | {e['repeats']} | {_cell(e)} | {_fmt_s(cpu)} | {rate} | "
                     f"{_gib(e['peak_rss_bytes'])} | "
                     f"{_load(e)} | {e['measured_at']} |")
    L.append("")
    L.append("`attribute ... (n_boot 0)` is the point estimate alone (SQL aggregation, model fit, feature-drift "
             "tests); the difference to n_boot 200 is the cell-level bootstrap, whose cost depends on the "
             "number of cells, not rows.")
    L.append("")

    # -- GLM comparison
    for t in tiers:
        r = runs[t]
        if "toolkit_glm" not in r or "pandas_glm" not in r:
            continue
        tk, pd_ = r["toolkit_glm"], r["pandas_glm"]
        L.append(f"## Cell GLM vs row-level pandas + statsmodels ({t})")
        L.append("")
        L.append("Same model, same data: the regression method's binomial GLM (version, region and channel "
                 "dummies, a cubic in the standardized log amount cell mean, version interactions, period x "
                 "version terms) on the rows of both weeks for `rate:prediction=approved`, covariates "
                 f"`region, channel, amount`. The toolkit fits it on {tk['last']['cells']:,} cells with "
                 f"`var_weights = n`; the baseline reads the {pd_['last']['rows']:,} rows into pandas, rebuilds "
                 "every regressor from the raw rows with numpy (log1p test, bins, cell means, standardisation; the "
                 "term list and the bin edges are taken from the toolkit) and fits `sm.GLM(y, X, "
                 "Binomial())` on the rows (`benchmarks/baselines.py`).")
        L.append("")
        L.append("| | toolkit (cells) | pandas (rows) |")
        L.append("|---|---|---|")
        L.append(f"| end to end, s | {_cell(tk)} (`attribute(method='regression', n_boot=0)`) | {_cell(pd_)} |")
        L.append(f"| of which aggregation / load, s | {_fmt_s(tk['last']['cells_seconds'])} (SQL to cells) | "
                 f"{_fmt_s(pd_['last']['load_seconds'])} (rows to pandas) + "
                 f"{_fmt_s(pd_['last']['design_seconds'])} (design) |")
        fits = (_fmt_s(tk['last']['fit_seconds']), _fmt_s(pd_['last']['fit_seconds']))
        L.append(f"| of which GLM fit, s | {fits[0]} | {fits[1]} |")
        L.append(f"| peak RSS, GiB | {_gib(tk['peak_rss_bytes'])} | {_gib(pd_['peak_rss_bytes'])} |")
        L.append(f"| terms | {tk['last']['terms']} | {pd_['last']['terms']} |")
        L.append(f"| speed-up (end to end) | {pd_['median'] / tk['median']:.0f}x | |")
        L.append(f"| max abs coefficient difference | {pd_['last']['max_abs_param_diff']:.2e} | |")
        L.append(f"| max abs fitted-probability difference | {pd_['last']['max_abs_fitted_diff']:.2e} | |")
        L.append(f"| own bin edges equal to 1e-9 / same log1p choice | {pd_['last']['same_edges']} / "
                 f"{pd_['last']['same_transforms']} | |")
        L.append(f"| rows that numpy's own quantile edges put in the other bin | "
                 f"{pd_['last'].get('rows_on_an_edge_moved', '-')} (the fit uses the toolkit's edges) | |")
        L.append("")

    # -- DoWhy
    for t in tiers:
        r = runs[t]
        if "dowhy" not in r:
            continue
        d = r["dowhy"]["last"]
        tr = d["truth"]
        L.append(f"## DoWhy `gcm.distribution_change_robust` ({t})")
        L.append("")
        L.append("Same split (baseline week vs comparison week, non-shadow rows, `rate:prediction=approved`). "
                 "DoWhy graph: region -> channel, merchant_category, log amount, account_age_days; every "
                 "covariate -> version; every covariate and version -> approved. Histogram gradient boosting "
                 "learners (50 iterations), sample splitting (`xfit=False`), multiply-robust estimator. Data drift "
                 "= sum of the covariate nodes' contributions, version drift = the version node, residual = the "
                 "outcome node. Truth = the simulator's replay (`ground_truth.json`); the toolkit's rows use "
                 "its default covariates and 200 bootstrap replicates.")
        L.append("")
        L.append("| estimator | seconds wall (CPU) | data drift | version drift | residual "
                 "| error data | error version |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        L.append(f"| replay truth | | {tr['data_drift']:+.4f} | {tr['version_drift']:+.4f} | {tr['residual']:+.4f} "
                 f"(sampling noise {tr['sampling_noise']:+.4f}) | | |")
        e = d["estimates"]
        L.append(f"| DoWhy | {_fmt_s(r['dowhy']['median'])} ({_fmt_s(d.get('cpu_seconds'))}) | "
                 f"{e['data_drift']:+.4f} | {e['version_drift']:+.4f} | "
                 f"{e['residual']:+.4f} | {d['errors']['data_drift']:+.4f} | {d['errors']['version_drift']:+.4f} |")
        for m in METHODS:
            k = _boot_key(r, m)
            if k in r:
                est = r[k]["last"]["estimates"]
                L.append(f"| vdrift {m} | {_fmt_s(r[k]['median'])} ({_fmt_s(r[k]['last'].get('cpu_seconds'))}) | "
                         f"{est['data_drift']:+.4f} | "
                         f"{est['version_drift']:+.4f} | {est['residual']:+.4f} | "
                         f"{est['data_drift'] - tr['data_drift']:+.4f} | "
                         f"{est['version_drift'] - tr['version_drift']:+.4f} |")
        L.append("")

    # -- incremental and pruning
    for t in tiers:
        r = runs[t]
        if "incremental" in r:
            inc = r["incremental"]["last"]
            L.append(f"## Incremental ingest ({t})")
            L.append("")
            L.append(f"Ingest of the last day file ({inc['day_file']}, {inc['day_rows']:,} rows) into a store that "
                     f"already holds the {inc['earlier_rows']:,} rows of the 13 earlier days, versus the same file "
                     "into an empty store (registry and history loaded), each repeat from a copy of the same "
                     "store:")
            L.append("")
            L.append(f"- into the full store: {', '.join(_fmt_s(x) for x in inc['into_store_seconds'])} s")
            L.append(f"- into an empty store: {', '.join(_fmt_s(x) for x in inc['into_empty_seconds'])} s")
            L.append(f"- ratio of medians: **{inc['ratio']:.2f}x**")
            L.append("")
        if "dupcheck" in r:
            dc = r["dupcheck"]["last"]
            L.append(f"What a new day's ingest reads of the earlier data ({t}): the duplicate check of "
                     "`toolkit.store.ingest._mark_duplicates` (an `EXISTS` on request_id against every stored "
                     f"row) replayed for the keys of {dc['day_file']} ({dc['file_rows']:,} rows) against the "
                     f"{dc['table_rows']:,} stored rows, under `EXPLAIN ANALYZE`. The simulator numbers requests "
                     "in time order, so DuckDB's join filter (min/max of the new keys) skips old row groups; "
                     "real request ids are often random (UUIDs), replayed here with md5-hashed ids.")
            L.append("")
            L.append("| check | rows scanned | seconds |")
            L.append("|---|---:|---:|")
            for name, v in dc["variants"].items():
                L.append(f"| {name} | {v['rows_scanned']:,} | {_fmt_s(v['seconds'])} |")
            L.append("")
        if "pruning" in r:
            p = r["pruning"]["last"]
            L.append(f"## Window pruning ({t})")
            L.append("")
            L.append(f"The predictions table holds {p['table_rows']:,} rows; the day 2026-11-09 holds "
                     f"{p['window_rows']:,}. Every query of `audit(window='{'2026-11-09..2026-11-10'}')` and of "
                     "`attribute(..., baseline='2026-11-08..2026-11-09', comparison='2026-11-09..2026-11-10', "
                     "method='standardization', n_boot=0)` that reads `predictions` was profiled with DuckDB "
                     "`EXPLAIN ANALYZE` (JSON profile, `operator_rows_scanned` of the table scans; DuckDB skips "
                     "row groups whose min/max of `ts` lie outside the filter).")
            L.append("")
            for job in ("audit", "attribution"):
                q = p[job]
                L.append(f"**{job}**: {q['queries']} queries read `predictions`, {q['rows_scanned_total']:,} rows "
                         "scanned in total.")
                L.append("")
                if q["main"]:
                    L.append("Main aggregation query: `" + q["main"]["sql"].replace("|", "\\|") + " ...`")
                    L.append("")
                    L.append("| scan | rows scanned | rows out | filter pushed into the scan |")
                    L.append("|---|---:|---:|---|")
                    for i, s in enumerate(q["main"]["scans"], 1):
                        L.append(f"| {i} | {s['rows_scanned']:,} | {s['rows_out']:,} | "
                                 f"`{(s['filters'] or '(none)').replace('|', '/')[:140]}` |")
                    L.append("")
                L.append("<details><summary>all queries</summary>")
                L.append("")
                L.append("| rows scanned | query |")
                L.append("|---:|---|")
                for row in q["per_query"]:
                    L.append(f"| {row['rows_scanned']:,} | `{row['sql'][:110].replace('|', '/')}` |")
                L.append("")
                L.append("</details>")
                L.append("")

    if failures:
        L.append("## Failed measures")
        L.append("")
        for t, k, e in failures:
            L.append(f"- {t} {k} ({e['measured_at']}): `{e['error'].splitlines()[-1][:300]}`")
        L.append("")

    # -- profiles
    profs = [(t, k, e) for t in tiers for k, e in runs[t].items() if isinstance(e, dict) and e.get("profile")]
    if profs:
        L.append("## Profiles")
        L.append("")
        for t, k, e in profs:
            L.append(f"### {k} ({t})")
            L.append("")
            L.append("```")
            L.extend(e["profile"].strip().splitlines()[:45])
            L.append("```")
            L.append("")
    if (HERE / "ANALYSIS.md").exists():
        L.append((HERE / "ANALYSIS.md").read_text().strip())
        L.append("")
    text = "\n".join(L) + "\n"
    path.write_text(text)
    return text


# ----------------------------------------------------------------------------- main
ALL_TASKS = ("ingest", "incremental", "pruning", "audit", "attribute", "report", "glm", "dowhy")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (``--help`` lists the options)."""
    parser = argparse.ArgumentParser(description="Run the vdrift benchmarks and write RESULTS.md.")
    parser.add_argument("--tiers", nargs="+", default=["1m", "10m"], choices=list(TIERS))
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each measure (default 3)")
    parser.add_argument("--tasks", nargs="+", default=list(ALL_TASKS), choices=ALL_TASKS)
    parser.add_argument("--no-baselines", action="store_true", help="skip the pandas and DoWhy baselines")
    parser.add_argument("--glm-tiers", nargs="+", default=["1m", "10m"], help="tiers of the cell GLM timing")
    parser.add_argument("--pandas-tiers", nargs="+", default=["1m"],
                        help="tiers where the row-level pandas fit runs (at 10M rows it needs more than 22 GB)")
    parser.add_argument("--pandas-repeats", type=int, default=2, help="repeats of the (slow) row-level fit")
    parser.add_argument("--dowhy-tiers", nargs="+", default=["1m"], help="tiers of the DoWhy comparison")
    parser.add_argument("--report-tiers", nargs="+", default=["1m", "10m"], help="tiers of the report timing")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--n-boot", type=int, default=200, help="bootstrap replicates of the attribution runs")
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB memory_limit of every store (default 3GB)")
    parser.add_argument("--profile", action="store_true", help="profile measures that miss a target (pyinstrument)")
    parser.add_argument("--data-root", type=Path, default=DATA)
    parser.add_argument("--work", type=Path, default=WORK, help="where stores are written (benchmarks/work)")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "runs.json",
                        help="JSON store of all measures (merged across runs)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--rewrite", action="store_true",
                        help="measure nothing: rewrite RESULTS.md from the saved runs (after editing ANALYSIS.md)")
    args = parser.parse_args(argv)
    if args.no_baselines:
        args.tasks = [t for t in args.tasks if t not in ("glm", "dowhy")]

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    if args.rewrite:
        saved = json.loads(args.results.read_text())
        write_results(args.out, saved.get("tiers", {}), saved.get("machine", {}))
        log(f"{args.out} rewritten from {args.results}")
        return 0
    info = machine()
    args.results.parent.mkdir(parents=True, exist_ok=True)
    def save(tier: str, measured: dict) -> None:
        runs: dict[str, Any] = {}
        if args.results.exists():  # another run may have added measures meanwhile
            runs = json.loads(args.results.read_text()).get("tiers", {})
        runs.setdefault(tier, {}).update(measured)
        tmp = args.results.with_suffix(".tmp")
        tmp.write_text(json.dumps({"machine": info, "tiers": runs}, indent=1, default=str))
        os.replace(tmp, args.results)
        write_results(args.out, runs, info)

    for tier in args.tiers:
        measured = run_tier(tier, args, log, lambda m, tier=tier: save(tier, m))
        save(tier, dict(measured))
        log(f"[{tier}] done; {args.out} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
