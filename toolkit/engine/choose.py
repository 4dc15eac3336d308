"""Choosing where the row-level passes run: :func:`engine_runner` for ``engine="duckdb"`` or ``"spark"``.

``attribute``, ``audit`` and ``explain`` take ``engine=`` and ``spark=`` and
open their runner here. On Spark the store's resolved rows are exported once
to Parquet and registered as the session's views; a call made while another
call's Spark runner is open on the same store and session (``explain`` runs
an attribution and two audits) reuses that runner instead of exporting again.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import duckdb

from ..errors import check_choice
from .run import DuckRunner, Runner

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

EngineOption = Literal["duckdb", "spark"]
ENGINES: tuple[str, ...] = get_args(EngineOption)

#: The Spark runner open in this context: (DuckDB connection, session, runner).
_OPEN: ContextVar[tuple[duckdb.DuckDBPyConnection, object, Runner] | None] = ContextVar("vdrift_spark_runner",
                                                                                        default=None)


@contextmanager
def engine_runner(con: duckdb.DuckDBPyConnection, engine: str,
                  spark: SparkSession | None = None) -> Iterator[Runner]:
    """The runner of the row-level passes: the store's DuckDB, or Spark over the store's resolved rows.

    Parameters
    ----------
    con
        The store's connection.
    engine
        ``"duckdb"`` or ``"spark"`` (anything else is an ``InputError``).
    spark
        The session for ``"spark"``; None builds one from the standard
        configuration (:func:`toolkit.engine.spark.default_session`).
    """
    check_choice(engine, ENGINES, "engine")
    if engine == "duckdb":
        yield DuckRunner(con)
        return
    from . import spark as sp

    session = spark if spark is not None else sp.default_session()
    active = _OPEN.get()
    if active is not None and active[0] is con and active[1] is session:
        yield active[2]
        return
    with tempfile.TemporaryDirectory(prefix="vdrift-spark-") as tmp:
        # the resolved rows (versions resolved against the registry by the store's view), once per call
        path = sp.export_resolved(con, Path(tmp) / "predictions_resolved.parquet")
        with sp.spark_rows(session, path) as run:
            token = _OPEN.set((con, session, run))
            try:
                yield run
            finally:
                _OPEN.reset(token)


__all__ = ["EngineOption", "ENGINES", "engine_runner"]
