"""Spark local mode against DuckDB on one store, side by side in one process (issue #14).

The task ``spark`` (run by ``run.py --tasks spark``, a fresh process like
every task) opens the tier's store, starts one local Spark session and runs
each analysis on DuckDB and then on Spark: the audit of the two weeks, the
regression attribution with its bootstrap, and explain. It checks that the two
engines agree (summaries equal, estimates within 1e-9) and records the time of
each, their ratio, the time of the Spark engine's export of the window's
resolved rows, and, for a one-day audit, the rows each engine reads: DuckDB's
from EXPLAIN ANALYZE of its row passes, Spark's from the ``numOutputRows`` of
the Parquet scans in the executed plans.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from benchmarks.tasks import BASELINE, COMPARISON, DAY_B, METRIC, _Recorder, _store


def _scan_rows(plan: Any) -> tuple[int, int]:
    """(rows, files) the Parquet scans of an executed Spark plan (py4j object) output."""
    rows = files = 0
    stack = [plan]
    while stack:
        node = stack.pop()
        name = node.nodeName()
        if name.startswith("Scan parquet") or name == "FileScan parquet":
            metrics = node.metrics()
            if metrics.contains("numOutputRows"):
                rows += int(metrics.apply("numOutputRows").value())
            if metrics.contains("numFiles"):
                files += int(metrics.apply("numFiles").value())
        kids = node.children()
        stack.extend(kids.apply(i) for i in range(kids.size()))
        if "QueryStage" in name:
            stack.append(node.plan())
        if name == "AdaptiveSparkPlan":
            stack.append(node.finalPhysicalPlan())
    return rows, files


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _session(opts: dict) -> tuple[Any, float]:
    """A local Spark session for the benchmark, and its start-up seconds."""
    from pyspark.sql import SparkSession

    t0 = time.perf_counter()
    session = (SparkSession.builder.master(opts.get("spark_master", "local[2]")).config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", str(opts.get("shuffle_partitions", 8)))
               .config("spark.driver.memory", opts.get("driver_memory", "6g")).getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return session, time.perf_counter() - t0


def _jobs(n_boot: int) -> dict:
    from toolkit import attribute, explain
    from toolkit.audit import audit

    window = f"{BASELINE.split('..')[0]}..{COMPARISON.split('..')[1]}"
    return {
        "audit (two weeks)": lambda st, **kw: audit(st, window=window, **kw),
        "attribute regression": lambda st, **kw: attribute(st, METRIC, BASELINE, COMPARISON, method="regression",
                                                           n_boot=n_boot, seed=0, **kw),
        "explain": lambda st, **kw: explain(st, METRIC, COMPARISON, baseline=BASELINE, n_boot=n_boot, seed=0, **kw),
    }


def _same(name: str, duck: Any, on_spark: Any) -> bool:
    import numpy as np

    same = duck.summary() == on_spark.summary()
    if name.startswith("attribute"):
        a, b = duck.frame, on_spark.frame
        same = same and all(np.allclose(a[c].to_numpy(), b[c].to_numpy(), rtol=0, atol=1e-9, equal_nan=True)
                            for c in ("estimate", "ci_low", "ci_high"))
    return same


def task_spark(opts: dict) -> dict:
    """DuckDB and Spark local mode on the same store: seconds, ratios, equality, rows read for one day."""
    from toolkit.audit import audit
    from toolkit.engine import spark as sp

    master = opts.get("spark_master", "local[2]")
    n_boot = int(opts["n_boot"])
    session, startup = _session(opts)
    exports: list[dict] = []
    real_export = sp.export_predictions

    def export(con, out, span=None):
        path, seconds = _timed(real_export, con, out, span)
        exports.append({"seconds": seconds, "bytes": Path(path).stat().st_size})
        return path

    sp.export_predictions = export
    scans: list[tuple[int, int]] = []
    returned: list[tuple[int, int]] = []  # (rows, bytes) of what each pass hands back to the driver

    def frame(self, sql, params):  # SparkRunner.frame, also reading the scans' row counts
        df = self.spark.sql(sql, args=[sp._spark_param(p) for p in params])
        out = sp._to_polars(df)
        scans.append(_scan_rows(df._jdf.queryExecution().executedPlan()))
        returned.append((out.height, int(out.estimated_size())))
        return out

    sp.SparkRunner.frame = frame  # type: ignore[method-assign]
    out: dict[str, Any] = {"master": master, "startup_seconds": startup, "n_boot": n_boot, "jobs": {}}
    jobs = _jobs(n_boot)
    total = 0.0
    with _store(Path(opts["db"]), opts, read_only=True) as store:
        rows = store.con.execute("SELECT count(*) FROM predictions").fetchone()[0]
        for name, job in jobs.items():
            duck, d_s = _timed(job, store)
            exports.clear()
            returned.clear()
            on_spark, s_s = _timed(job, store, engine="spark", spark=session)
            total += s_s
            same = _same(name, duck, on_spark)
            out["jobs"][name] = {"duckdb_seconds": d_s, "spark_seconds": s_s, "ratio": s_s / d_s,
                                 "export_seconds": sum(e["seconds"] for e in exports),
                                 "export_bytes": sum(e["bytes"] for e in exports), "same_result": same,
                                 "passes": len(returned), "returned_rows": sum(r for r, _ in returned),
                                 "returned_bytes": sum(b for _, b in returned),
                                 "largest_return_rows": max((r for r, _ in returned), default=0)}
        # one day: the rows each engine reads
        day = DAY_B
        lo, hi = day.split("..")
        day_rows = store.con.execute("SELECT count(*) FROM predictions WHERE ts >= ? AND ts < ?",
                                     [lo, hi]).fetchone()[0]
        real = store.con
        rec = _Recorder(real)
        store.con = rec
        try:
            audit(store, window=day)
        finally:
            store.con = real
        duck_scanned = sum(s["rows_scanned"] for q in rec.queries for s in q["scans"])
        scans.clear()
        exports.clear()
        _, day_s = _timed(audit, store, window=day, engine="spark", spark=session)
        out["one_day_audit"] = {
            "window": day, "window_rows": day_rows, "table_rows": rows,
            "duckdb_rows_scanned": duck_scanned, "duckdb_queries": len(rec.queries),
            "spark_rows_scanned": sum(r for r, _ in scans), "spark_passes": len(scans),
            "spark_files_read": sum(f for _, f in scans), "spark_seconds": day_s,
            "spark_exported_rows": store.con.execute(
                "SELECT count(*) FROM predictions WHERE ts >= CAST(? AS TIMESTAMP) - INTERVAL 1 DAY "
                "AND ts < CAST(? AS TIMESTAMP) + INTERVAL 1 DAY", [lo, hi]).fetchone()[0],
            "export_seconds": sum(e["seconds"] for e in exports)}
    session.stop()
    return {"seconds": total, "rows": rows, **out}


def task_spark_lake(opts: dict) -> dict:
    """The tier's rows as a day-partitioned Parquet lake, attached: DuckDB's views against Spark in place.

    Writes the lake from the tier's store, attaches it to a new store
    (validated by DuckDB), validates it again on Spark, then runs each
    analysis on DuckDB (its attached views) and on Spark (reading the files),
    and a one-day audit's Parquet scans on Spark.
    """
    import shutil

    from toolkit.audit import audit
    from toolkit.engine import spark as sp
    from toolkit.store.attach import sql_literal

    from benchmarks.tasks import _data

    n_boot = int(opts["n_boot"])
    session, startup = _session(opts)
    work = Path(opts["work"])
    lake, db = work / f"{opts['tier']}-lake", work / f"{opts['tier']}-lake.duckdb"
    shutil.rmtree(lake, ignore_errors=True)
    db.unlink(missing_ok=True)
    with _store(Path(opts["db"]), opts, read_only=True) as src:
        rows = src.con.execute("SELECT count(*) FROM predictions").fetchone()[0]
        copy = ("COPY (SELECT * EXCLUDE (ingest_id), CAST(ts AS DATE) AS date FROM predictions ORDER BY ts) "
                f"TO {sql_literal(str(lake))} (FORMAT parquet, PARTITION_BY (date))")
        _, write_s = _timed(src.con.execute, copy)
    scans: list[tuple[int, int]] = []

    def frame(self, sql, params):  # SparkRunner.frame, also reading the scans' row counts
        df = self.spark.sql(sql, args=[sp._spark_param(p) for p in params])
        got = sp._to_polars(df)
        scans.append(_scan_rows(df._jdf.queryExecution().executedPlan()))
        return got

    sp.SparkRunner.frame = frame  # type: ignore[method-assign]
    out: dict[str, Any] = {"master": opts.get("spark_master", "local[2]"), "startup_seconds": startup,
                           "n_boot": n_boot, "rows": rows, "lake_write_seconds": write_s, "jobs": {}}
    with _store(db, opts) as store:
        store.ingest("artifacts", [_data(opts) / "artifacts.csv"])
        store.ingest("deployments", [_data(opts) / "deployments.jsonl"])
        on_duck, out["attach_duckdb_seconds"] = _timed(store.attach, lake, partitioning="hive")
        on_spark, out["validate_spark_seconds"] = _timed(store.validate, engine="spark", spark=session)
        _, out["validate_duckdb_seconds"] = _timed(store.validate)
        out["files"] = len(on_duck.files)
        out["validation_same"] = ((on_duck.rows, on_duck.valid, on_duck.reasons)
                                  == (on_spark.rows, on_spark.valid, on_spark.reasons))
        for name, job in _jobs(n_boot).items():
            duck, d_s = _timed(job, store)
            on_sp, s_s = _timed(job, store, engine="spark", spark=session)
            out["jobs"][name] = {"duckdb_seconds": d_s, "spark_seconds": s_s, "ratio": s_s / d_s,
                                 "same_result": _same(name, duck, on_sp)}
        scans.clear()
        _, day_s = _timed(audit, store, window=DAY_B, engine="spark", spark=session)
        out["one_day_audit"] = {"window": DAY_B, "spark_seconds": day_s, "spark_passes": len(scans),
                                "spark_rows_scanned": sum(r for r, _ in scans),
                                "spark_files_read": sum(f for _, f in scans)}
    session.stop()
    return {"seconds": sum(j["spark_seconds"] for j in out["jobs"].values()), **out}


def main() -> None:  # pragma: no cover
    """A quick look without run.py: ``python -m benchmarks.spark_engine STORE``."""
    import sys

    print(json.dumps(task_spark({"db": sys.argv[1], "n_boot": 200, "tier": "adhoc"}), indent=1, default=str))


if __name__ == "__main__":  # pragma: no cover
    main()
