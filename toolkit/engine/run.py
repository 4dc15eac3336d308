"""Where the row-level passes run: a :class:`Runner` executes one query text with positional parameters.

Every pass writes its SQL for ``runner.dialect`` (``toolkit.engine.keys``) and hands it to the runner;
:class:`DuckRunner` runs it on the store's DuckDB connection, ``toolkit.engine.spark.SparkRunner`` on
a Spark session. The result of a pass is small (sums, counts, a sample) and comes back as polars.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import duckdb
import polars as pl

from .keys import Dialect


class Runner(Protocol):
    """Runs a query of the row-level passes; ``dialect`` is the SQL it takes."""

    dialect: Dialect

    def frame(self, sql: str, params: Sequence) -> pl.DataFrame:
        """The rows of ``sql`` with ``params`` bound to its ``?``."""
        ...

    def registered(self, name: str, frame: pl.DataFrame) -> AbstractContextManager[None]:
        """``frame`` (small: a lookup table of the store) readable as ``name`` by the passes, while open."""
        ...


class DuckRunner:
    """The store's own DuckDB connection."""

    dialect: Dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def frame(self, sql: str, params: Sequence) -> pl.DataFrame:
        """The rows of ``sql`` with ``params`` bound, as polars."""
        return self.con.execute(sql, list(params)).pl()

    @contextmanager
    def registered(self, name: str, frame: pl.DataFrame) -> Iterator[None]:
        """``frame`` as the view ``name`` of the connection, while open."""
        self.con.register(name, frame.to_arrow())
        try:
            yield
        finally:
            self.con.unregister(name)


def runner_for(con: duckdb.DuckDBPyConnection, run: Runner | None) -> Runner:
    """``run``, or the DuckDB runner of ``con`` when None."""
    return DuckRunner(con) if run is None else run
