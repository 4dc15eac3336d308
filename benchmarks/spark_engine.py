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


def task_spark(opts: dict) -> dict:
    """DuckDB and Spark local mode on the same store: seconds, ratios, equality, rows read for one day."""
    import numpy as np
    from pyspark.sql import SparkSession

    from toolkit import attribute, explain
    from toolkit.audit import audit
    from toolkit.engine import spark as sp

    master = opts.get("spark_master", "local[2]")
    n_boot = int(opts["n_boot"])
    t0 = time.perf_counter()
    session = (SparkSession.builder.master(master).config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", str(opts.get("shuffle_partitions", 8)))
               .config("spark.driver.memory", opts.get("driver_memory", "6g")).getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - t0
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
    window = f"{BASELINE.split('..')[0]}..{COMPARISON.split('..')[1]}"
    jobs = {
        "audit (two weeks)": lambda st, **kw: audit(st, window=window, **kw),
        "attribute regression": lambda st, **kw: attribute(st, METRIC, BASELINE, COMPARISON, method="regression",
                                                           n_boot=n_boot, seed=0, **kw),
        "explain": lambda st, **kw: explain(st, METRIC, COMPARISON, baseline=BASELINE, n_boot=n_boot, seed=0, **kw),
    }
    total = 0.0
    with _store(Path(opts["db"]), opts, read_only=True) as store:
        rows = store.con.execute("SELECT count(*) FROM predictions").fetchone()[0]
        for name, job in jobs.items():
            duck, d_s = _timed(job, store)
            exports.clear()
            returned.clear()
            on_spark, s_s = _timed(job, store, engine="spark", spark=session)
            total += s_s
            same = duck.summary() == on_spark.summary()
            if name.startswith("attribute"):
                a, b = duck.frame, on_spark.frame
                same = same and all(np.allclose(a[c].to_numpy(), b[c].to_numpy(), rtol=0, atol=1e-9, equal_nan=True)
                                    for c in ("estimate", "ci_low", "ci_high"))
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


def main() -> None:  # pragma: no cover
    """A quick look without run.py: ``python -m benchmarks.spark_engine STORE``."""
    import sys

    print(json.dumps(task_spark({"db": sys.argv[1], "n_boot": 200, "tier": "adhoc"}), indent=1, default=str))


if __name__ == "__main__":  # pragma: no cover
    main()
