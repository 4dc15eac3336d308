"""Benchmark tasks, each run in a fresh Python process by ``run.py``.

A task times one operation with :func:`time.perf_counter` (imports, store
opening and set-up are outside the timed part) and prints one JSON line
(prefixed ``BENCH-RESULT``) with ``seconds`` and task-specific figures. The
parent measures the child's peak resident memory with ``os.wait4``.

Usage (what ``run.py`` does)::

    .venv/bin/python benchmarks/tasks.py NAME '{"tier": "1m", ...}'
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run as a script: make `toolkit` and `benchmarks` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.generate import DATA, day_files, tier_dir  # noqa: E402
from toolkit.sqlutil import one_row  # noqa: E402

WORK = HERE / "work"
MARK = "BENCH-RESULT "
METRIC = "rate:prediction=approved"
BASELINE = "2026-11-02..2026-11-09"
COMPARISON = "2026-11-09..2026-11-16"
#: the one-day windows of the pruning check (the last baseline day and the first comparison day)
DAY_A = "2026-11-08..2026-11-09"
DAY_B = "2026-11-09..2026-11-10"


def _remove_db(path: Path) -> None:
    for p in (path, Path(str(path) + ".wal")):
        if p.exists():
            p.unlink()


def _store(db: Path, opts: dict, *, read_only: bool = False):
    from toolkit.store import Store

    return Store(db, read_only=read_only, memory_limit=opts.get("memory_limit"),
                 temp_directory=opts.get("temp_directory"))


def _data(opts: dict) -> Path:
    return tier_dir(opts["tier"], Path(opts.get("data_root", DATA)))


# ----------------------------------------------------------------------------- ingest
def task_ingest(opts: dict) -> dict:
    """Validated ingest of a tier (registry, history, then the day files) into a new store."""
    db = Path(opts["db"])
    _remove_db(db)
    data = _data(opts)
    with _store(db, opts) as store:
        t0 = time.perf_counter()
        store.ingest("artifacts", data / "artifacts.csv")
        store.ingest("deployments", data / "deployments.jsonl")
        t1 = time.perf_counter()
        report = store.ingest("predictions", data / "predictions")
        t2 = time.perf_counter()
        if not report.ok:
            raise RuntimeError(report.summary())
        store.con.execute("CHECKPOINT")
        t3 = time.perf_counter()
    return {"seconds": t2 - t1, "history_seconds": t1 - t0, "checkpoint_seconds": t3 - t2,
            "rows": report.accepted, "quarantined": report.quarantined, "files": len(report.results)}


def task_duckdb_ctas(opts: dict) -> dict:
    """The floor for loading: DuckDB's own CREATE TABLE AS SELECT * FROM read_parquet on the same files."""
    import duckdb

    db = Path(opts["db"])
    _remove_db(db)
    config: dict[str, str | bool | int | float | list[str]] = {
        k: str(opts[k]) for k in ("memory_limit", "temp_directory") if opts.get(k)
    }
    con = duckdb.connect(str(db), config=config)
    files = [str(p) for p in day_files(opts["tier"], Path(opts.get("data_root", DATA)))]
    t0 = time.perf_counter()
    con.execute("CREATE TABLE predictions AS SELECT * FROM read_parquet(?)", [files])
    t1 = time.perf_counter()
    con.execute("CHECKPOINT")
    rows = one_row(con, "SELECT count(*) FROM predictions")[0]
    con.close()
    _remove_db(db)
    return {"seconds": t1 - t0, "rows": rows, "files": len(files)}


def task_incremental(opts: dict) -> dict:
    """Ingest of the last day into a store holding the earlier days vs into an empty store.

    The store with the first 13 days is built once (untimed) and copied for
    every repeat, so each timed ingest starts from the same state.
    """
    data = _data(opts)
    days = day_files(opts["tier"], Path(opts.get("data_root", DATA)))
    last, earlier = days[-1], days[:-1]
    work = Path(opts.get("work", WORK))
    base = work / f"{opts['tier']}-incremental-base.duckdb"
    trial = work / f"{opts['tier']}-incremental-trial.duckdb"
    _remove_db(base)
    with _store(base, opts) as store:
        store.ingest("artifacts", data / "artifacts.csv")
        store.ingest("deployments", data / "deployments.jsonl")
        report = store.ingest("predictions", earlier)
        if not report.ok:
            raise RuntimeError(report.summary())
        store.con.execute("CHECKPOINT")
        earlier_rows = report.accepted
    full: list[float] = []
    empty: list[float] = []
    repeats = int(opts.get("inner_repeats", 3))
    for _ in range(repeats):
        for target, out in ((True, full), (False, empty)):
            _remove_db(trial)
            if target:
                shutil.copyfile(base, trial)
            with _store(trial, opts) as store:
                if not target:
                    store.ingest("artifacts", data / "artifacts.csv")
                    store.ingest("deployments", data / "deployments.jsonl")
                t0 = time.perf_counter()
                rep = store.ingest("predictions", last)
                out.append(time.perf_counter() - t0)
                if not rep.ok or rep.quarantined:
                    raise RuntimeError(rep.summary())
                day_rows = rep.accepted
    _remove_db(trial)
    _remove_db(base)
    full_med = sorted(full)[len(full) // 2]
    empty_med = sorted(empty)[len(empty) // 2]
    return {"seconds": full_med, "into_store_seconds": full, "into_empty_seconds": empty,
            "ratio": full_med / empty_med, "earlier_rows": earlier_rows, "day_rows": day_rows,
            "day_file": last.parent.name}


# ----------------------------------------------------------------------------- analyses
def task_audit(opts: dict) -> dict:
    """The whole audit (census, intended state, detectors, consistency) over a window."""
    from toolkit.audit import audit

    with _store(Path(opts["db"]), opts, read_only=True) as store:
        t0 = time.perf_counter()
        result = audit(store, window=opts.get("window"))
        seconds = time.perf_counter() - t0
        rows = store.con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    return {"seconds": seconds, "rows": rows, "findings": result.findings.height,
            "census_rows": result.census.height}


def task_attribute(opts: dict) -> dict:
    """One attribution method (with its bootstrap) on the two weeks."""
    from toolkit.attribution import attribute

    with _store(Path(opts["db"]), opts, read_only=True) as store:
        t0 = time.perf_counter()
        res = attribute(store, opts.get("metric", METRIC), opts.get("baseline", BASELINE),
                        opts.get("comparison", COMPARISON), method=opts["method"], n_boot=int(opts["n_boot"]),
                        seed=0, covariates=opts.get("covariates"))
        seconds = time.perf_counter() - t0
    frame = res.to_frame()
    est = {r["component"]: r["estimate"] for r in frame.iter_rows(named=True) if r["method"] == opts["method"]}
    return {"seconds": seconds, "rows": sum(res.rows), "cells": res.cells.height, "estimates": est}


def task_explain(opts: dict) -> dict:
    """``explain``: the attribution, the audit of both windows, the off-intent cost and the ranked causes."""
    from toolkit.causes import explain

    with _store(Path(opts["db"]), opts, read_only=True) as store:
        t0 = time.perf_counter()
        res = explain(store, opts.get("metric", METRIC), opts.get("comparison", COMPARISON),
                      baseline=opts.get("baseline", BASELINE), n_boot=int(opts["n_boot"]), seed=0)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "causes": res.causes.height, "total": res.total,
            "cost": res.window_costs["cost"].to_list()}


def task_report(opts: dict) -> dict:
    """The incident report: papermill run of the notebook and offline HTML export."""
    from toolkit.report import render

    out = Path(opts.get("work", WORK)) / "reports" / opts["tier"]
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    res = render("incident", {"store_path": str(opts["db"]), "metric": METRIC, "baseline": BASELINE,
                              "comparison": COMPARISON, "title": f"benchmark {opts['tier']}"},
                 out_dir=out, timeout=1800)
    seconds = time.perf_counter() - t0
    html = getattr(res, "html", None)
    return {"seconds": seconds, "html_bytes": Path(html).stat().st_size if html else None}


# ----------------------------------------------------------------------------- pruning
class _Recorder:
    """A DuckDB connection stand-in that profiles every query reading ``predictions``.

    Each such query is first run under ``EXPLAIN ANALYZE`` with JSON
    profiling (DuckDB executes the statement to profile it), then run again
    for the caller. The table scans of ``predictions`` are collected with
    the rows they actually read.
    """

    def __init__(self, con: Any) -> None:
        self._con = con
        self.queries: list[dict] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def execute(self, sql: str, params: Any = None) -> Any:
        if "predictions" in sql and not sql.lstrip().upper().startswith(("DROP", "DESCRIBE", "EXPLAIN")):
            self._con.execute("PRAGMA enable_profiling = 'json'")
            self._con.execute("SET profiling_mode = 'detailed'")
            try:
                prof = self._con.execute("EXPLAIN ANALYZE " + sql, params or []).fetchall()[0][1]
            finally:
                self._con.execute("PRAGMA disable_profiling")
            scans = _scans(json.loads(prof))
            if scans:
                self.queries.append({"sql": " ".join(sql.split())[:160], "scans": scans, "full_sql": sql})
        return self._con.execute(sql, params or [])


def _scans(node: dict, tables: tuple[str, ...] = (".predictions", "._hashed")) -> list[dict]:
    out = []
    info = node.get("extra_info") or {}
    if node.get("operator_name", node.get("operator_type", "")).strip() in ("SEQ_SCAN", "TABLE_SCAN") \
            and str(info.get("Table", "")).endswith(tables):
        filters = info.get("Filters", "")
        out.append({"rows_scanned": int(node.get("operator_rows_scanned") or 0),
                    "rows_out": int(node.get("operator_cardinality") or 0),
                    "filters": filters if isinstance(filters, str) else " AND ".join(filters)})
    for child in node.get("children", []):
        out.extend(_scans(child))
    return out


def task_pruning(opts: dict) -> dict:
    """Rows of ``predictions`` each query of a one-day audit / attribution actually reads."""
    from toolkit.attribution import attribute
    from toolkit.audit import audit

    out: dict[str, Any] = {}
    with _store(Path(opts["db"]), opts, read_only=True) as store:
        real = store.con
        table_rows = real.execute("SELECT count(*) FROM predictions").fetchone()[0]
        day_rows = real.execute("SELECT count(*) FROM predictions WHERE ts >= ? AND ts < ?",
                                [dt.datetime(2026, 11, 9), dt.datetime(2026, 11, 10)]).fetchone()[0]
        jobs: list[tuple[str, str, Callable[[Any], Any]]] = [
            ("audit", "_vdrift_audit_precells AS", lambda s: audit(s, window=DAY_B)),
            ("attribution", "AS grp", lambda s: attribute(s, METRIC, DAY_A, DAY_B, method="standardization",
                                                                 n_boot=0)),
        ]
        t0 = time.perf_counter()
        for name, marker, job in jobs:
            rec = _Recorder(real)
            store.con = rec
            try:
                job(store)
            finally:
                store.con = real
            main = [q for q in rec.queries if marker in q["full_sql"]]
            out[name] = {
                "queries": len(rec.queries),
                "rows_scanned_total": sum(s["rows_scanned"] for q in rec.queries for s in q["scans"]),
                "main": {k: v for k, v in main[0].items() if k != "full_sql"} if main else None,
                "per_query": [{"sql": q["sql"], "rows_scanned": sum(s["rows_scanned"] for s in q["scans"])}
                              for q in rec.queries],
            }
    return {"seconds": time.perf_counter() - t0, "table_rows": table_rows, "window_rows": day_rows, **out}


# ----------------------------------------------------------------------------- design experiment
def task_dupcheck(opts: dict) -> dict:
    """The ingest's duplicate check of one day file against a full store, as written and time-bounded.

    Replays the check of ``toolkit.store.ingest._mark_duplicates`` (``EXISTS``
    over every stored row with the same request_id) on the keys of the last
    day file, then the same check restricted to stored rows within a day of
    the file's time range (``ts`` between its min - 1 day and max + 1 day),
    which DuckDB can prune by row-group min/max. Both under EXPLAIN ANALYZE:
    rows scanned and seconds. The store is only read (a temp table holds the keys).
    """
    last = day_files(opts["tier"], Path(opts.get("data_root", DATA)))[-1]
    with _store(Path(opts["db"]), opts, read_only=True) as store:
        con = store.con
        con.execute("CREATE TEMP TABLE _keys AS SELECT request_id, component, model_version, "
                    "CAST(ts AS TIMESTAMP) AS ts FROM read_parquet(?)", [str(last)])
        lo, hi = con.execute("SELECT min(ts) - INTERVAL 1 DAY, max(ts) + INTERVAL 1 DAY FROM _keys").fetchone()
        table_rows = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
        exists = ("SELECT 1 FROM predictions AS p WHERE p.request_id = s.request_id AND p.component = s.component "
                  "AND (s.component <> 'shadow' OR p.model_version = s.model_version)")
        variants = {
            "as written (every stored row)": (f"SELECT count(*) FROM _keys AS s WHERE EXISTS ({exists})", []),
            "time-bounded (file range +- 1 day)": (
                f"SELECT count(*) FROM _keys AS s WHERE EXISTS ({exists} AND p.ts >= ? AND p.ts < ?)", [lo, hi]),
        }
        # real request ids are often random (UUIDs): the same checks with hashed ids on a copy of the keys
        con.execute("CREATE TEMP TABLE _hashed AS SELECT md5(request_id) AS request_id, component, model_version, ts "
                    "FROM predictions")
        con.execute("CREATE TEMP TABLE _hkeys AS SELECT md5(request_id) AS request_id, component, model_version, ts "
                    "FROM _keys")
        hexists = exists.replace("predictions AS p", "_hashed AS p")
        variants["random ids, as written"] = (f"SELECT count(*) FROM _hkeys AS s WHERE EXISTS ({hexists})", [])
        variants["random ids, time-bounded"] = (
            f"SELECT count(*) FROM _hkeys AS s WHERE EXISTS ({hexists} AND p.ts >= ? AND p.ts < ?)", [lo, hi])
        out = {}
        for name, (sql, params) in variants.items():
            t0 = time.perf_counter()
            dup = con.execute(sql, params).fetchone()[0]
            secs = time.perf_counter() - t0
            con.execute("PRAGMA enable_profiling = 'json'")
            con.execute("SET profiling_mode = 'detailed'")
            prof = json.loads(con.execute("EXPLAIN ANALYZE " + sql, params).fetchall()[0][1])
            con.execute("PRAGMA disable_profiling")
            out[name] = {"seconds": secs, "duplicates_found": dup,
                         "rows_scanned": sum(s["rows_scanned"] for s in _scans(prof))}
        file_rows = con.execute("SELECT count(*) FROM _keys").fetchone()[0]
    return {"seconds": out["as written (every stored row)"]["seconds"], "table_rows": table_rows,
            "file_rows": file_rows, "day_file": last.parent.name, "variants": out}


TASKS: dict[str, Callable[[dict], dict]] = {
    "ingest": task_ingest,
    "duckdb_ctas": task_duckdb_ctas,
    "incremental": task_incremental,
    "audit": task_audit,
    "attribute": task_attribute,
    "explain": task_explain,
    "report": task_report,
    "pruning": task_pruning,
    "dupcheck": task_dupcheck,
}


def _baseline_tasks() -> dict[str, Callable[[dict], dict]]:
    from benchmarks import baselines

    from benchmarks import spark_engine

    return {"pandas_glm": baselines.task_pandas_glm, "toolkit_glm": baselines.task_toolkit_glm,
            "dowhy": baselines.task_dowhy, "spark": spark_engine.task_spark,
            "spark_lake": spark_engine.task_spark_lake}


def main(argv: list[str]) -> int:
    """Run one measure (``argv[0]``, options as JSON in ``argv[1]``) and print its result as marked JSON."""
    name, opts = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    tasks = {**TASKS, **_baseline_tasks()}
    if name not in tasks:
        raise SystemExit(f"unknown task {name!r}: choose from {', '.join(tasks)}")
    if opts.get("profile"):
        from pyinstrument import Profiler

        prof = Profiler()
        prof.start()
        result = tasks[name](opts)
        prof.stop()
        result["profile"] = prof.output_text(unicode=False, color=False, show_all=False)
    else:
        result = tasks[name](opts)
    print(MARK + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
