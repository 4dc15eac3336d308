"""Registration: attach a dataset to a store, validate it again, detach it."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING

from ... import __version__
from ...engine.choose import Engine, EngineOption, check_engine, resolve_engine
from ...errors import InputError
from ...sqlutil import one_row
from ..ingest.entry import _check_mapping_values, _check_timezone
from ..mapping import Mapping, load_mapping
from ..schema import CONTRACT
from .dataset import PARTITIONINGS, Partitioning
from .report import report
from .result import AttachResult
from .state import (
    CHECKED_VIEW,
    DUPLICATES_TABLE,
    FILES_TABLE,
    MACRO,
    META_KEY,
    info,
    mapping_record,
    now_text,
    recorded_mapping,
    require_record,
    stale_files,
    unguard,
)
from .views import build_views

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from ..store import Store


def attach(store: Store, path: str | os.PathLike, *, mapping: str | os.PathLike | dict | None = None,
           partitioning: Partitioning | None = None, examples: int = 5, engine: EngineOption | Engine | None = None,
           spark: SparkSession | None = None) -> AttachResult:
    """``toolkit.attach(store, "lake/", partitioning="hive")``: the same as :meth:`Store.attach`."""
    return store.attach(path, mapping=mapping, partitioning=partitioning, examples=examples, engine=engine,
                        spark=spark)


def attach_source(store: Store, pattern: str | os.PathLike, *,
                  mapping: str | os.PathLike | dict | Mapping | None = None,
                  partitioning: str | None = None, examples: int = 5, engine: EngineOption | Engine | None = None,
                  spark: SparkSession | None = None) -> AttachResult:
    """Register a Parquet dataset as the store's predictions, validate it and build the views.

    On a Spark engine the scans of every row (duplicates, the files' time
    ranges, the report's counts and examples) run on Spark.
    """
    check_engine(engine)
    con = store.con
    t0 = time.perf_counter()
    if not isinstance(pattern, (str, os.PathLike)) or not os.fspath(pattern):
        raise InputError(f"path must be a file, directory or glob, got {pattern!r}")
    part = partitioning or "none"
    if part not in PARTITIONINGS:
        raise InputError(f"partitioning must be one of {', '.join(PARTITIONINGS)}, got {partitioning!r}")
    existing = info(con)
    if existing is not None:
        raise InputError(
            f"the store {store.path!r} already has predictions attached from {existing['pattern']}; "
            "detach them first (`vdrift detach predictions`) or use another store"
        )
    stored = one_row(con, "SELECT count(*) FROM predictions")[0]
    if stored:
        raise InputError(
            f"the store {store.path!r} holds {stored:,} ingested predictions; a store reads its predictions "
            "either ingested or attached, not both: attach into a new store (deployments and artifacts "
            "are ingested there as usual)"
        )
    if one_row(con, "SELECT count(*) FROM covariates")[0]:
        raise InputError(f"the store {store.path!r} has covariates of earlier ingests; attach into a new store")
    the_mapping = load_mapping(mapping)
    if the_mapping.format:
        raise InputError(f"mapping {the_mapping.source}: format = {the_mapping.format!r}: log layouts of serving "
                         "platforms cannot be attached; attach files in the contract's flat layout")
    _check_timezone(con, the_mapping)
    _check_mapping_values(con, "predictions", the_mapping)
    for cname in list(the_mapping.columns) + list(the_mapping.defaults):
        if cname not in CONTRACT["predictions"]:
            raise InputError(f"mapping {the_mapping.source}: {cname!r} is not a predictions contract column; "
                             f"contract columns: {', '.join(CONTRACT['predictions'])}")
    text = os.fspath(pattern)
    record = {
        "pattern": text, "pattern_abs": os.path.join(os.getcwd(), text),  # join keeps an absolute one as it is
        "partitioning": part, "mapping": mapping_record(the_mapping),
        "attached_at": now_text(), "toolkit_version": __version__,
    }
    return _build_and_report(store, record, the_mapping, first=True, examples=examples, t0=t0,
                             engine=resolve_engine(engine, spark, store))


def validate(store: Store, *, examples: int = 5, engine: EngineOption | Engine | None = None,
             spark: SparkSession | None = None) -> AttachResult:
    """Take in the files that match the pattern now, validate them again and rebuild the views."""
    check_engine(engine)
    con = store.con
    record = require_record(store)
    t0 = time.perf_counter()
    the_mapping = recorded_mapping(record)
    unguard(con)
    return _build_and_report(store, record, the_mapping, first=False, examples=examples, t0=t0,
                             engine=resolve_engine(engine, spark, store))


def checked_report(store: Store, *, examples: int = 5, engine: EngineOption | Engine | None = None,
                   spark: SparkSession | None = None) -> AttachResult:
    """The report of what was validated last (no file taken in or dropped), its scans on ``engine``."""
    check_engine(engine)
    eng = resolve_engine(engine, spark, store)
    if eng.name == "duckdb" or stale_files(store.con):  # stale: the report reads no row
        return report(store, examples=examples)
    from ...engine.lake import lake_report
    from ...engine.spark import default_session

    with lake_report(eng.spark or default_session(), store.con) as run:
        return report(store, examples=examples, run=run)


def _build_and_report(store: Store, record: dict, the_mapping: Mapping, *, first: bool, examples: int,
                      t0: float, engine: Engine) -> AttachResult:
    """Build the attached views in one transaction, refresh the store's views and report.

    A first attach also draws its attach id inside the same transaction, so a failed
    build leaves no half-recorded source behind.
    """
    con = store.con
    with ExitStack() as stack:
        scan = None
        if engine.name == "spark":
            from ...engine.lake import SparkScan
            from ...engine.spark import default_session

            scan = stack.enter_context(SparkScan(engine.spark or default_session(), con))
        con.execute("BEGIN TRANSACTION")
        try:
            if first:
                record["attach_id"] = int(one_row(con, "SELECT nextval('ingest_id_seq')")[0])
            build_views(store, record, the_mapping, first=first, scan=scan)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        store.refresh_views()
        return report(store, examples=examples, seconds=time.perf_counter() - t0,
                      run=scan.run if scan is not None else None)


def detach(store: Store) -> str:
    """Forget the attached source: the store gets an empty predictions table again. Returns the pattern."""
    from ..schema import OLD_VIEW, create_predictions_table

    con = store.con
    record = require_record(store)
    unguard(con)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DROP VIEW IF EXISTS predictions_resolved")
        con.execute("DROP VIEW IF EXISTS predictions")
        con.execute(f"DROP VIEW IF EXISTS {OLD_VIEW}")  # a version-1 view that version 2 wrapped
        con.execute(f"DROP VIEW IF EXISTS {CHECKED_VIEW}")
        con.execute(f"DROP MACRO TABLE IF EXISTS {MACRO}")
        con.execute(f"DROP TABLE IF EXISTS {DUPLICATES_TABLE}")
        con.execute(f"DROP TABLE IF EXISTS {FILES_TABLE}")
        con.execute("DELETE FROM covariates WHERE first_ingest_id = ?", [record["attach_id"]])
        con.execute("DELETE FROM meta WHERE key = ?", [META_KEY])
        create_predictions_table(con)
        store.refresh_views()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return record["pattern"]
