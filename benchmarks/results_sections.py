"""The detail sections of RESULTS.md: timings, the GLM and DoWhy comparisons, ingest scans, failures, profiles."""

from __future__ import annotations

from benchmarks.results_format import boot_key, cell, fmt_s, gib, load_text
from benchmarks.targets import METHODS


def timings_section(runs: dict, tiers: list[str]) -> list[str]:
    """Every measure: seconds, CPU, rows/s, peak RSS, load."""
    L: list[str] = []
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
            L.append(f"| {t} | {label} | {e['repeats']} | {cell(e)} | {fmt_s(cpu)} | {rate} | "
                     f"{gib(e['peak_rss_bytes'])} | "
                     f"{load_text(e)} | {e['measured_at']} |")
    L.append("")
    L.append("`attribute ... (n_boot 0)` is the point estimate alone (SQL aggregation, model fit, feature-drift "
             "tests); the difference to n_boot 200 is the cell-level bootstrap, whose cost depends on the "
             "number of cells, not rows.")
    L.append("")
    return L


def glm_section(runs: dict, tiers: list[str]) -> list[str]:
    """The cell GLM against row-level pandas + statsmodels, per tier."""
    L: list[str] = []
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
        L.append(f"| end to end, s | {cell(tk)} (`attribute(method='regression', n_boot=0)`) | {cell(pd_)} |")
        L.append(f"| of which aggregation / load, s | {fmt_s(tk['last']['cells_seconds'])} (SQL to cells) | "
                 f"{fmt_s(pd_['last']['load_seconds'])} (rows to pandas) + "
                 f"{fmt_s(pd_['last']['design_seconds'])} (design) |")
        fits = (fmt_s(tk['last']['fit_seconds']), fmt_s(pd_['last']['fit_seconds']))
        L.append(f"| of which GLM fit, s | {fits[0]} | {fits[1]} |")
        L.append(f"| peak RSS, GiB | {gib(tk['peak_rss_bytes'])} | {gib(pd_['peak_rss_bytes'])} |")
        L.append(f"| terms | {tk['last']['terms']} | {pd_['last']['terms']} |")
        L.append(f"| speed-up (end to end) | {pd_['median'] / tk['median']:.0f}x | |")
        L.append(f"| max abs coefficient difference | {pd_['last']['max_abs_param_diff']:.2e} | |")
        L.append(f"| max abs fitted-probability difference | {pd_['last']['max_abs_fitted_diff']:.2e} | |")
        L.append(f"| own bin edges equal to 1e-9 / same log1p choice | {pd_['last']['same_edges']} / "
                 f"{pd_['last']['same_transforms']} | |")
        L.append(f"| rows that numpy's own quantile edges put in the other bin | "
                 f"{pd_['last'].get('rows_on_an_edge_moved', '-')} (the fit uses the toolkit's edges) | |")
        L.append("")
    return L


def dowhy_section(runs: dict, tiers: list[str]) -> list[str]:
    """DoWhy against the replay truth and vdrift's methods, per tier."""
    L: list[str] = []
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
        L.append(f"| DoWhy | {fmt_s(r['dowhy']['median'])} ({fmt_s(d.get('cpu_seconds'))}) | "
                 f"{e['data_drift']:+.4f} | {e['version_drift']:+.4f} | "
                 f"{e['residual']:+.4f} | {d['errors']['data_drift']:+.4f} | {d['errors']['version_drift']:+.4f} |")
        for m in METHODS:
            k = boot_key(r, m)
            if k in r:
                est = r[k]["last"]["estimates"]
                L.append(f"| vdrift {m} | {fmt_s(r[k]['median'])} ({fmt_s(r[k]['last'].get('cpu_seconds'))}) | "
                         f"{est['data_drift']:+.4f} | "
                         f"{est['version_drift']:+.4f} | {est['residual']:+.4f} | "
                         f"{est['data_drift'] - tr['data_drift']:+.4f} | "
                         f"{est['version_drift'] - tr['version_drift']:+.4f} |")
        L.append("")
    return L


def ingest_scan_sections(runs: dict, tiers: list[str]) -> list[str]:
    """Incremental ingest, the duplicate check's scan and window pruning, per tier."""
    L: list[str] = []
    for t in tiers:
        r = runs[t]
        L += _incremental(t, r) + _dupcheck(t, r) + _pruning(t, r)
    return L


def _incremental(t: str, r: dict) -> list[str]:
    """Incremental ingest of one tier."""
    L: list[str] = []
    if "incremental" in r:
        inc = r["incremental"]["last"]
        L.append(f"## Incremental ingest ({t})")
        L.append("")
        L.append(f"Ingest of the last day file ({inc['day_file']}, {inc['day_rows']:,} rows) into a store that "
                 f"already holds the {inc['earlier_rows']:,} rows of the 13 earlier days, versus the same file "
                 "into an empty store (registry and history loaded), each repeat from a copy of the same "
                 "store:")
        L.append("")
        L.append(f"- into the full store: {', '.join(fmt_s(x) for x in inc['into_store_seconds'])} s")
        L.append(f"- into an empty store: {', '.join(fmt_s(x) for x in inc['into_empty_seconds'])} s")
        L.append(f"- ratio of medians: **{inc['ratio']:.2f}x**")
        L.append("")
    return L


def _dupcheck(t: str, r: dict) -> list[str]:
    """What a new day's duplicate check reads, one tier."""
    L: list[str] = []
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
            L.append(f"| {name} | {v['rows_scanned']:,} | {fmt_s(v['seconds'])} |")
        L.append("")
    return L


def _pruning(t: str, r: dict) -> list[str]:
    """Window pruning of one tier, query by query."""
    L: list[str] = []
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
    return L


def spark_section(runs: dict, tiers: list[str]) -> list[str]:
    """Spark local mode against DuckDB on the same store (benchmarks/spark_engine.py)."""
    L: list[str] = []
    for t in tiers:
        if "spark" not in runs[t]:
            continue
        r = runs[t]["spark"]["last"]
        L.append(f"## Spark local mode vs DuckDB ({t})")
        L.append("")
        L.append(f"One process, one store of {r['rows']:,} rows, Spark `{r['master']}` (session start-up "
                 f"{fmt_s(r['startup_seconds'])} s, not counted below), each analysis run on DuckDB and then on "
                 f"Spark (`engine=\"spark\"`), `n_boot={r['n_boot']}`. The Spark time includes the export of "
                 "the call's span of resolved rows to Parquet (its own column) and the local statistics.")
        L.append("")
        L.append("| analysis | DuckDB s | Spark s | ratio | of which export s | export MB | passes on Spark | "
                 "rows returned (largest pass) | KB returned | same result |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for name, j in r["jobs"].items():
            back = (f"{j['returned_rows']:,} ({j['largest_return_rows']:,})" if "returned_rows" in j else "")
            kb = f"{j['returned_bytes'] / 1024:,.0f}" if "returned_bytes" in j else ""
            L.append(f"| {name} | {fmt_s(j['duckdb_seconds'])} | {fmt_s(j['spark_seconds'])} | "
                     f"{j['ratio']:.1f}x | {fmt_s(j['export_seconds'])} | {j['export_bytes'] / 1e6:,.0f} | "
                     f"{j.get('passes', '')} | {back} | {kb} | {'yes' if j['same_result'] else '**no**'} |")
        d = r["one_day_audit"]
        L.append("")
        L.append(f"**Rows read for a one-day audit** ({d['window']}, {d['window_rows']:,} of the "
                 f"{d['table_rows']:,} rows): DuckDB's {d['duckdb_queries']} row queries scanned "
                 f"{d['duckdb_rows_scanned']:,} rows (EXPLAIN ANALYZE, row groups pruned on `ts`). The Spark "
                 f"engine exported {d['spark_exported_rows']:,} rows (the day +/- 1 day of shadow margin; "
                 f"{fmt_s(d['export_seconds'])} s) and its {d['spark_passes']} passes scanned "
                 f"{d['spark_rows_scanned']:,} rows in {d['spark_files_read']} file reads (`numOutputRows` of "
                 f"the Parquet scans; {fmt_s(d['spark_seconds'])} s in all).")
        L.append("")
    return L


def spark_lake_section(runs: dict, tiers: list[str]) -> list[str]:
    """An attached lake: DuckDB's views against Spark reading the files (benchmarks/spark_engine.py)."""
    L: list[str] = []
    for t in tiers:
        if "spark_lake" not in runs[t]:
            continue
        r = runs[t]["spark_lake"]["last"]
        L.append(f"## Spark reading an attached lake in place ({t})")
        L.append("")
        L.append(f"The tier's {r['rows']:,} rows written as a Parquet lake partitioned by day "
                 f"({r['files']} files, {fmt_s(r['lake_write_seconds'])} s) and attached to a new store. "
                 f"Validation (every row typed and checked, duplicates, each file's time ranges, the report): "
                 f"DuckDB {fmt_s(r['attach_duckdb_seconds'])} s at attach and {fmt_s(r['validate_duckdb_seconds'])} s "
                 f"again, Spark `{r['master']}` {fmt_s(r['validate_spark_seconds'])} s "
                 f"({'the same counts and reasons' if r['validation_same'] else '**different counts**'}). Each "
                 f"analysis on DuckDB (its attached views) and on Spark reading the files (no export), "
                 f"`n_boot={r['n_boot']}`:")
        L.append("")
        L.append("| analysis | DuckDB s | Spark s | ratio | same result |")
        L.append("|---|---:|---:|---:|---|")
        for name, j in r["jobs"].items():
            L.append(f"| {name} | {fmt_s(j['duckdb_seconds'])} | {fmt_s(j['spark_seconds'])} | {j['ratio']:.1f}x | "
                     f"{'yes' if j['same_result'] else '**no**'} |")
        d = r["one_day_audit"]
        L.append("")
        L.append(f"A one-day audit ({d['window']}) on Spark: {d['spark_passes']} passes scanned "
                 f"{d['spark_rows_scanned']:,} rows in {d['spark_files_read']} file reads "
                 f"({fmt_s(d['spark_seconds'])} s).")
        L.append("")
    return L


def failures_section(failures: list) -> list[str]:
    """The measures that failed."""
    L: list[str] = []
    if failures:
        L.append("## Failed measures")
        L.append("")
        for t, k, e in failures:
            L.append(f"- {t} {k} ({e['measured_at']}): `{e['error'].splitlines()[-1][:300]}`")
        L.append("")
    return L


def profiles_section(runs: dict, tiers: list[str]) -> list[str]:
    """The profiles of measures that missed a target."""
    L: list[str] = []
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
    return L
