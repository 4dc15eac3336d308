"""RESULTS.md: :func:`write_results` assembles the page; the introduction, machine, data and targets are here."""

from __future__ import annotations

from pathlib import Path

from benchmarks.generate import TIERS
from benchmarks.results_format import boot_key, fmt_s, gib
from benchmarks.results_sections import (
    dowhy_section,
    failures_section,
    spark_lake_section,
    spark_section,
    glm_section,
    ingest_scan_sections,
    profiles_section,
    timings_section,
)
from benchmarks.targets import (
    GIB,
    METHODS,
    ROW_GROUP,
    TARGET_GLM_DIFF,
    TARGET_GLM_SPEEDUP,
    TARGET_INGEST_RATIO,
    TARGET_RSS_100M,
    TARGET_SECONDS_100M,
)

HERE = Path(__file__).resolve().parent


def write_results(path: Path, runs: dict, info: dict) -> str:
    """Write RESULTS.md from all stored measures and return its text."""
    tiers = [t for t in TIERS if t in runs]
    failures = [(t, k, e) for t in tiers for k, e in runs[t].items() if "error" in e]
    runs = {t: {k: e for k, e in runs[t].items() if "error" not in e} for t in tiers}
    L: list[str] = []
    L += _intro()
    L += _machine(runs, tiers, info)
    L += _data(runs, tiers)
    L += _targets(runs, tiers)
    L += timings_section(runs, tiers)
    L += glm_section(runs, tiers)
    L += dowhy_section(runs, tiers)
    L += ingest_scan_sections(runs, tiers)
    L += spark_section(runs, tiers)
    L += spark_lake_section(runs, tiers)
    L += failures_section(failures)
    L += profiles_section(runs, tiers)
    if (HERE / "ANALYSIS.md").exists():
        L.append((HERE / "ANALYSIS.md").read_text().strip())
        L.append("")
    text = "\n".join(L) + "\n"
    path.write_text(text)
    return text


def _intro() -> list[str]:
    """The title and how to read the page."""
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
    return L


def _machine(runs: dict, tiers: list[str], info: dict) -> list[str]:
    """What the measures ran on."""
    L: list[str] = []
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
    return L


def _data(runs: dict, tiers: list[str]) -> list[str]:
    """The data tiers."""
    L: list[str] = []
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
    return L


def _targets(runs: dict, tiers: list[str]) -> list[str]:
    """The table of targets: measured and met or not."""
    L: list[str] = []
    L.append("## Targets")
    L.append("")
    L.append("| target | measured | met? |")
    L.append("|---|---|---|")
    L += _ingest_targets(runs, tiers)
    L += _speed_targets(runs, tiers)
    L += _glm_targets(runs, tiers)
    for t in tiers:
        r = runs[t]
        L += _dowhy_target(t, r) + _incremental_target(t, r) + _pruning_targets(t, r)
    L.append("")
    return L


def _ingest_targets(runs: dict, tiers: list[str]) -> list[str]:
    """Ingest against DuckDB CREATE TABLE AS, per tier."""
    L: list[str] = []
    for t in tiers:
        r = runs[t]
        if "ingest" in r and "duckdb_ctas" in r:
            ratio = r["ingest"]["median"] / r["duckdb_ctas"]["median"]
            cpu = r["ingest"]["last"]["cpu_seconds"] / r["duckdb_ctas"]["last"]["cpu_seconds"]
            L.append(f"| ingest <= {TARGET_INGEST_RATIO}x DuckDB CTAS ({t}) | {ratio:.2f}x wall "
                     f"({fmt_s(r['ingest']['median'])} s vs {fmt_s(r['duckdb_ctas']['median'])} s), "
                     f"{cpu:.2f}x CPU time | "
                     f"{'yes' if ratio <= TARGET_INGEST_RATIO else 'no'} |")
    return L


def _speed_targets(runs: dict, tiers: list[str]) -> list[str]:
    """Audit and attribution time and memory, per tier."""
    L: list[str] = []
    for t in tiers:
        r = runs[t]
        rows = r.get("generate", {}).get("rows_written", 0)
        for key in ["audit"] + [boot_key(r, m) for m in METHODS] + ["explain"]:
            if key not in r:
                continue
            e = r[key]
            name = (key if key in ("audit", "explain")
                    else f"attribution {key.split(':')[1]} ({key.split(':')[2]} bootstrap)")
            ok_t = e["median"] < TARGET_SECONDS_100M
            ok_m = e["peak_rss_bytes"] < TARGET_RSS_100M
            if t == "100m":
                verdict = "yes" if ok_t and ok_m else "no"
            else:
                verdict = (f"not measured at 100M; at {t}: " + ("under" if ok_t else "over") + " 60 s, "
                           + ("under" if ok_m else "over") + " 4 GiB")
            L.append(f"| {name} < 60 s and < 4 GiB at 100M ({t}, {rows:,} rows) | {fmt_s(e['median'])} s "
                     f"(CPU {fmt_s(e['last'].get('cpu_seconds'))} s), {gib(e['peak_rss_bytes'])} GiB | {verdict} |")
    return L


def _glm_targets(runs: dict, tiers: list[str]) -> list[str]:
    """The cell GLM against the row-level fit, per tier."""
    L: list[str] = []
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
    return L


def _dowhy_target(t: str, r: dict) -> list[str]:
    """The DoWhy comparison of one tier."""
    L: list[str] = []
    if "dowhy" in r:
        d = r["dowhy"]["last"]
        L.append(f"| DoWhy comparison ({t}) | {fmt_s(r['dowhy']['median'])} s; error data "
                 f"{d['errors']['data_drift']:+.4f}, version {d['errors']['version_drift']:+.4f} | "
                 "reported (see below) |")
    return L


def _incremental_target(t: str, r: dict) -> list[str]:
    """A new day's ingest against an empty store, one tier."""
    L: list[str] = []
    if "incremental" in r:
        inc = r["incremental"]["last"]
        L.append(f"| a new day's ingest does not rescan earlier data ({t}) | {inc['ratio']:.2f}x the time "
                 f"of the same day into an empty store | {'yes' if inc['ratio'] < 1.5 else 'no'} |")
    return L


def _pruning_targets(t: str, r: dict) -> list[str]:
    """Window pruning of audit and attribution, one tier."""
    L: list[str] = []
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
    return L
