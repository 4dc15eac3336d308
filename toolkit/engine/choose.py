"""Choosing where the row-level passes run: :func:`engine_runner` for ``engine="duckdb"`` or ``"spark"``.

``attribute``, ``audit`` and ``explain`` take ``engine=`` and ``spark=`` and
open their runner here. On Spark a store whose predictions are attached is
read in place: Spark reads the attached Parquet files of the call's time span
(its windows, with the audit's margin for shadow scores) and types and checks
their rows itself (``toolkit.engine.lake``). Otherwise the store's valid rows
of the span are exported once to Parquet and registered as the session's
views; DuckDB prunes that export to the span's row groups, so a one-day
window exports about a day. A call made while another call's Spark runner is open on the same store
and session over a span that covers its own (``explain`` runs an attribution
and two audits) reuses that runner instead of exporting again.
"""
from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import duckdb

from ..errors import InputError, check_choice
from ..timeutil import Window
from .run import DuckRunner, Runner

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

EngineOption = Literal["duckdb", "spark"]
ENGINES: tuple[str, ...] = get_args(EngineOption)

@dataclass(frozen=True)
class Engine:
    """Where the passes over the rows run: ``Engine()`` is the store's DuckDB, ``Engine("spark", session)`` Spark.

    Give it to a store (``Store(path, engine=Engine("spark", spark))``, or
    ``Store(path, engine="spark", spark=spark)``) and every analysis of that
    store runs its row passes there; an analysis's own ``engine=`` overrides
    the store's. ``spark`` None on a Spark engine: the session of the standard
    configuration (``SPARK_REMOTE`` for Spark Connect, else
    ``SparkSession.builder.getOrCreate()``), built when an analysis runs.
    """

    name: EngineOption = "duckdb"
    spark: SparkSession | None = None

    def __post_init__(self) -> None:
        check_choice(self.name, ENGINES, "engine")
        if self.name == "duckdb" and self.spark is not None:
            raise InputError("a Spark session was given with engine 'duckdb': pass engine='spark' to use it")

    @classmethod
    def of(cls, engine: EngineOption | Engine | str | None, spark: SparkSession | None = None,
           default: Engine | None = None) -> Engine:
        """``engine`` as an :class:`Engine`: a name (with ``spark``), an Engine, or None for ``default``."""
        if isinstance(engine, Engine):
            if spark is not None and spark is not engine.spark:
                raise InputError("give the Spark session either in the Engine or as spark=, not both")
            return engine
        if engine is None:  # the default; a session given on its own means Spark
            return (default or cls()) if spark is None else cls("spark", spark)
        return cls(engine, spark)  # type: ignore[arg-type]  # checked in __post_init__


def resolve_engine(engine: EngineOption | Engine | str | None, spark: SparkSession | None,
                   store: object) -> Engine:
    """The engine of an analysis: its own ``engine``/``spark``, else the one its store was opened with."""
    own = getattr(store, "engine", None)
    return Engine.of(engine, spark, own if isinstance(own, Engine) else None)


def check_engine(engine: object) -> None:
    """Refuse an unknown engine name before any work (an :class:`Engine` was checked when made)."""
    if engine is not None and not isinstance(engine, Engine):
        check_choice(engine, ENGINES, "engine")


#: The Spark runner open in this context: (DuckDB connection, session, span, runner).
_OPEN: ContextVar[tuple[duckdb.DuckDBPyConnection, object, Window, Runner] | None] = ContextVar(
    "vdrift_spark_runner", default=None)


def span_of(windows: Iterable[Window], margin: dt.timedelta = dt.timedelta(0)) -> Window:
    """The time span that covers ``windows``, widened by ``margin`` on each side."""
    ws = list(windows)
    return Window(min(w.start for w in ws) - margin, max(w.end for w in ws) + margin)


@contextmanager
def engine_runner(con: duckdb.DuckDBPyConnection, engine: Engine, span: Window | None = None) -> Iterator[Runner]:
    """The runner of the row-level passes: the store's DuckDB, or Spark over the store's resolved rows.

    Parameters
    ----------
    con
        The store's connection.
    engine
        DuckDB, or Spark with its session (a None session is the open
        runner's, else built from the standard configuration,
        :func:`toolkit.engine.spark.default_session`).
    span
        The rows the passes may read on Spark: only those with ``ts`` in
        ``span`` are exported (None: every row).
    """
    if engine.name == "duckdb":
        yield DuckRunner(con)
        return
    from . import spark as sp
    from .lake import lake_read

    active = _OPEN.get()
    # an open runner on this store serves a nested call whose span it covers (an engine without a session
    # takes the open runner's: the standard session is the one the outer call runs on)
    if (active is not None and active[0] is con and engine.spark in (None, active[1])
            and _covers(active[2], span)):
        yield active[3]
        return
    read = lake_read(con, span)
    session = engine.spark if engine.spark is not None else sp.default_session()
    with ExitStack() as stack:
        if read is not None and not read.unported:  # attached: Spark reads the files themselves
            run = stack.enter_context(sp.lake_rows(session, con, read))
        else:  # the store's valid rows of the span, exported once per call; Spark resolves their versions
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="vdrift-spark-"))
            path = sp.export_predictions(con, Path(tmp) / "predictions.parquet", span)
            run = stack.enter_context(sp.store_rows(session, con, path))
        token = _OPEN.set((con, session, span or _EVERYTHING, run))
        try:
            yield run
        finally:
            _OPEN.reset(token)


_EVERYTHING = Window(dt.datetime.min, dt.datetime.max)


def _covers(outer: Window, inner: Window | None) -> bool:
    inner = inner or _EVERYTHING
    return outer.start <= inner.start and inner.end <= outer.end


__all__ = ["Engine", "EngineOption", "ENGINES", "engine_runner", "span_of", "resolve_engine", "check_engine"]
