"""The :class:`Store`: one DuckDB file holding logs, history and registry."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from collections.abc import Callable, Iterable, Iterator

import duckdb
import polars as pl

from ..engine.choose import Engine
from ..errors import InputError, StoreError, from_duckdb
from .ingest.labels import has_table as has_labels_table
from ..sqlutil import one_row, quote_ident, table_columns
from .schema import RESOLVED_VIEW, ensure_schema

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

Kind = Literal["predictions", "deployments", "artifacts", "outcomes"]
KINDS: tuple[str, ...] = ("predictions", "deployments", "artifacts")


_MEMORY = re.compile(r"^\s*([0-9]+(\.[0-9]+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.IGNORECASE)
_UNIT_BYTES = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30,
               "TIB": 2**40}
#: below this DuckDB cannot run vdrift's queries at all (its blocks are 256 KiB; 16 MB already fails)
MIN_MEMORY_LIMIT = 64e6


def _check_is_duckdb_file(path: str) -> None:
    """Refuse an existing file that is not a DuckDB database.

    DuckDB opens a CSV or Parquet file given as a database as a read-only
    view over it plus an in-memory catalogue, so ingesting "into" a log file
    would appear to work and keep nothing.
    """
    if path == ":memory:" or not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    with open(path, "rb") as fh:
        head = fh.read(12)
    if head[8:12] != b"DUCK":
        raise StoreError(
            f"{path!r} is not a DuckDB database file (is it a log file?); pass the store file "
            "with --db, e.g. --db vdrift.duckdb (a new name creates a new store)"
        )


def _check_bool(name: str, value: object) -> None:
    """Options that are flags must be True or False (``force='no'`` is truthy and used to force)."""
    if not isinstance(value, bool):
        raise InputError(f"{name} must be True or False, got {value!r}")


def _check_open_args(path: object, read_only: object, memory_limit: object, temp_directory: object,
                     threads: object) -> None:
    """The types of Store()'s arguments, in the order they are given."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise InputError(
            f"store path must be a file name (str or path), e.g. Store('vdrift.duckdb'), got {path!r}"
        )
    for name, flag in (("read_only", read_only),):
        _check_bool(name, flag)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise InputError(f"threads must be a positive integer, got {threads!r}")
    if memory_limit is not None and not isinstance(memory_limit, str):
        raise InputError(f"memory_limit must be a size such as '4GB', got {memory_limit!r}")
    if temp_directory is not None and not isinstance(temp_directory, (str, os.PathLike)):
        raise InputError(f"temp_directory must be a folder name, got {temp_directory!r}")


def _check_memory_limit(memory_limit: str) -> None:
    size = _MEMORY.match(str(memory_limit))
    if not size:
        raise InputError(
            f"memory limit {str(memory_limit)!r} is not a size with a unit; write it like 4GB, 500MB or 8GiB"
        )
    if float(size.group(1)) * _UNIT_BYTES[size.group(3).upper()] < MIN_MEMORY_LIMIT:
        raise InputError(
            f"memory limit {str(memory_limit)!r} is too small: DuckDB needs at least 64MB for vdrift's "
            "queries; give e.g. 500MB or 4GB, and --temp-directory to spill beyond it"
        )


def _duckdb_config(memory_limit: str | None, temp_directory: str | os.PathLike | None,
                   threads: int | None) -> dict[str, str | bool | int | float | list[str]]:
    """DuckDB's connect config from Store()'s settings (the memory limit checked first)."""
    config: dict[str, str | bool | int | float | list[str]] = {}
    if memory_limit is not None:
        _check_memory_limit(memory_limit)
    if memory_limit:
        config["memory_limit"] = str(memory_limit)
    if temp_directory:
        config["temp_directory"] = str(temp_directory)
    if threads:
        config["threads"] = str(int(threads))
    return config


def _connect(path: str, read_only: bool,
             config: dict[str, str | bool | int | float | list[str]]) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(path, read_only=read_only, config=config)
    except duckdb.IOException as exc:
        known = from_duckdb(exc, path)  # a lock, or a corrupt file (its message says "block")
        if known is not None:
            raise known from None
        raise StoreError(f"cannot open store {path!r}: {exc}") from None
    except duckdb.Error as exc:
        known = from_duckdb(exc, path)
        if known is not None:
            raise known from None
        raise StoreError(
            f"cannot open store {path!r}: {exc}. Is it a DuckDB file written by vdrift?"
        ) from None


class Store:
    """A vdrift store: one DuckDB file.

    Parameters
    ----------
    path
        The DuckDB file; created (with the schema) when it does not exist
        and ``read_only`` is false. ``":memory:"`` gives a throw-away store.
    read_only
        Open without write access (several readers may share a file).
    memory_limit, temp_directory, threads
        DuckDB settings; with a memory limit DuckDB spills to
        ``temp_directory`` instead of failing on larger-than-memory work.
    engine, spark
        Where the analyses of this store (audit, attribute, explain) run
        their passes over the rows unless they say otherwise: ``"duckdb"``
        (default), ``"spark"`` with an optional session, or a
        :class:`toolkit.Engine` (docs/spark.md). Kept as :attr:`engine`.

    Examples
    --------
    >>> with Store(":memory:") as store:
    ...     store.counts()["predictions"]
    0
    """

    #: while an ingest with ``progress`` runs (toolkit.store.ingest.entry): prints a progress line
    _note: Callable[[str], None] | None = None
    #: while a quarantine release runs (toolkit.store.quarantine): called with the connection and the new
    #: ingest id inside each ingest's transaction, before it commits
    _in_transaction: Callable[[duckdb.DuckDBPyConnection, int], None] | None = None

    def __init__(
        self,
        path: str | os.PathLike = "vdrift.duckdb",
        *,
        read_only: bool = False,
        memory_limit: str | None = None,
        temp_directory: str | os.PathLike | None = None,
        threads: int | None = None,
        engine: str | Engine = "duckdb",
        spark: SparkSession | None = None,
    ) -> None:
        _check_open_args(path, read_only, memory_limit, temp_directory, threads)
        #: where the analyses of this store run their passes over the rows (their own ``engine=`` overrides it)
        self.engine = Engine.of(engine, spark)
        self.path = os.fsdecode(os.fspath(path))
        if read_only and self.path != ":memory:" and not Path(self.path).exists():
            raise StoreError(
                f"store {self.path!r} does not exist: create it with "
                f"`vdrift ingest predictions FILE --db {self.path}` or pass the right --db"
            )
        _check_is_duckdb_file(self.path)
        config = _duckdb_config(memory_limit, temp_directory, threads)
        self.con = _connect(self.path, read_only, config)
        self.read_only = read_only
        try:
            self._prepare(read_only)
        except duckdb.Error as exc:  # a DuckDB file with other tables of the same names
            self.con.close()
            known = from_duckdb(exc, self.path)
            if known is not None:
                raise known from None
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(
                f"{self.path!r} is a DuckDB database but not a vdrift store ({first}); "
                "pass a vdrift store or a new file name with --db"
            ) from None
        except BaseException:
            self.con.close()
            raise

    def _prepare(self, read_only: bool) -> None:
        """Session settings, the schema, and the attached datasets' state, on a fresh connection."""
        self.con.execute("SET TimeZone = 'UTC'")
        # DuckDB draws its progress bar on stdout for queries over 2 s, even into pipes and
        # cron mail; ingest(progress=True) turns it on for terminals
        try:
            self.con.execute("SET enable_progress_bar = false")
        except duckdb.InvalidInputException:
            pass  # in a Jupyter kernel DuckDB refuses without ipywidgets, and prints nothing there
        self.schema_version = ensure_schema(self.con, read_only=read_only, path=self.path)
        from . import attach as _attach

        stale = _attach.stale_files(self.con)  # attached predictions whose validated files changed
        if stale and read_only:
            raise StoreError(_attach.stale_message(self.path, stale))
        if stale:  # open for writing, so that `vdrift validate` (or detach) can take the dataset as it is
            _attach.guard(self.con, _attach.stale_message(self.path, stale))
        elif not read_only:
            self.refresh_views()

    # -- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        """Close the connection to the store."""
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    # -- ingestion -------------------------------------------------------------
    def ingest(
        self,
        kind: Kind,
        paths: str | os.PathLike | Iterable[str | os.PathLike],
        *,
        mapping: str | os.PathLike | dict | None = None,
        force: bool = False,
        progress: bool | Literal['lines'] = False,
        format: str | None = None,
    ):
        """Validate and load files of one kind; see :func:`toolkit.store.ingest.ingest`.

        ``format`` reads prediction logs in a serving platform's native layout
        (``sagemaker``, ``kserve``, ``seldon``, ``bentoml``; docs/sources.md).

        Returns
        -------
        IngestReport
            One :class:`IngestResult` per file, including skipped and failed ones.
        """
        from .ingest import ingest

        _check_bool("force", force)
        if progress != "lines":
            _check_bool("progress", progress)
        if not isinstance(kind, str):
            raise InputError(f"kind must be 'predictions', 'deployments' or 'artifacts', got {kind!r}")
        if not isinstance(paths, (str, os.PathLike)):
            if not isinstance(paths, Iterable) or isinstance(paths, (bytes, dict)):
                raise InputError(f"paths must be a file name or a list of file names, got {paths!r}")
            paths = list(paths)
            if not paths or not all(isinstance(p, (str, os.PathLike)) for p in paths):
                raise InputError(f"paths must be a non-empty list of file names (str or path), got {paths!r}")
        if mapping is not None and not isinstance(mapping, (str, os.PathLike, dict)):
            from .mapping import Mapping

            if not isinstance(mapping, Mapping):
                raise InputError(f"mapping must be a mapping file name or a dict, got {mapping!r}")
        if self.read_only:
            raise StoreError("this store was opened read-only; open it with read_only=False to ingest")
        if kind == "predictions":
            from . import attach as _attach

            attached = _attach.info(self.con)
            if attached is not None:
                raise InputError(
                    f"the store {self.path!r} reads its predictions from the attached dataset "
                    f"{attached['pattern']}; it cannot also ingest prediction files. Add the files to the "
                    "dataset and run `vdrift validate`, or ingest into another store (deployments and "
                    "artifacts are ingested here as usual)"
                )
        return ingest(self, kind, paths, mapping=mapping, force=force, progress=progress, format=format)

    # -- attached predictions ------------------------------------------------
    def attach(
        self,
        path: str | os.PathLike,
        *,
        mapping: str | os.PathLike | dict | None = None,
        partitioning: Literal["none", "hive"] | None = None,
        examples: int = 5,
        engine: Any = None,
        spark: Any = None,
    ):
        """Read predictions in place from a Parquet dataset; see :mod:`toolkit.store.attach`.

        The dataset (a file, a directory, a glob, or with ``partitioning="hive"``
        ``key=value`` directories) is not copied: ``predictions`` becomes a
        view of its valid rows, with the row rules of ingest applied. A store
        reads its predictions either ingested or attached: attaching into a
        store that holds ingested predictions, or attaching twice, is an
        :class:`~toolkit.errors.InputError`. ``engine="spark"`` (or the
        store's engine) runs the scans of every row on Spark (docs/spark.md).

        Returns
        -------
        AttachResult
            Files, rows, valid and excluded rows by reason, with examples.
        """
        from . import attach as _attach

        if mapping is not None and not isinstance(mapping, (str, os.PathLike, dict)):
            raise InputError(f"mapping must be a mapping file name or a dict, got {mapping!r}")
        if self.read_only:
            raise StoreError("this store was opened read-only; open it with read_only=False to attach")
        return _attach.attach_source(self, path, mapping=mapping, partitioning=partitioning, examples=examples,
                                     engine=engine, spark=spark)

    def validate(self, *, examples: int = 5, engine: Any = None, spark: Any = None):
        """The attached source's rows that analyses exclude, by reason, with examples.

        On a store opened for writing the dataset is first validated again:
        files that match its pattern now are taken in, files gone are dropped.
        A read-only store reports what was validated last. ``engine="spark"``
        (or the store's engine) runs the scans of every row on Spark.
        """
        from . import attach as _attach

        if self.read_only:
            return _attach.checked_report(self, examples=examples, engine=engine, spark=spark)
        return _attach.validate(self, examples=examples, engine=engine, spark=spark)

    def attached(self, *, examples: int = 5, engine: Any = None, spark: Any = None):
        """The attached source's :class:`~toolkit.store.attach.AttachResult`, or None when predictions are ingested.

        Its counts and examples are a scan of every validated row: on Spark with ``engine="spark"``.
        """
        from . import attach as _attach

        if _attach.info(self.con) is None:
            return None
        return _attach.checked_report(self, examples=examples, engine=engine, spark=spark)

    def detach(self) -> str:
        """Forget the attached dataset (its files are untouched); predictions is an empty table again."""
        from . import attach as _attach

        if self.read_only:
            raise StoreError("this store was opened read-only; open it with read_only=False to detach")
        return _attach.detach(self)

    # -- reading -------------------------------------------------------------
    def refresh_views(self) -> None:
        """Recreate ``predictions_resolved`` (it lists the covariate columns)."""
        self.con.execute(RESOLVED_VIEW)

    def table(self, name: str, *, limit: int | None = None) -> pl.DataFrame:
        """A whole table (or the first ``limit`` rows) as a polars frame."""
        if not isinstance(name, str) or name not in self.tables():
            raise InputError(f"unknown table {name!r}; the store has: {', '.join(self.tables())}")
        sql = f"SELECT * FROM {quote_ident(name)}"
        params: list = []
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InputError(f"limit must be a non-negative integer, got {limit!r}")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return self.con.execute(sql, params).pl()

    def sql(self, query: str, params: list | None = None) -> pl.DataFrame:
        """Run a query (with bound parameters) and return a polars frame.

        Raises
        ------
        InputError
            For a query that is not text or that DuckDB refuses (its message is kept).
        """
        if not isinstance(query, str):
            raise InputError(f"query must be SQL text, got {query!r}")
        if params is not None and not isinstance(params, (list, tuple, dict)):
            raise InputError(f"params must be a list (or dict) of values to bind, got {params!r}")
        try:
            return self.con.execute(query, params or []).pl()
        except duckdb.Error as exc:
            known = from_duckdb(exc, self.path)
            if known is not None:
                raise known from None
            raise InputError(f"the query failed: {exc}") from None

    def tables(self) -> list[str]:
        """Names of the store's tables."""
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
        ).fetchall()
        return [r[0] for r in rows]

    def columns(self, table: str = "predictions") -> dict[str, str]:
        """Column name -> DuckDB type of a table (default ``predictions``)."""
        return table_columns(self.con, table)

    def covariates(self) -> pl.DataFrame:
        """Covariate columns declared by ingests (name, type)."""
        return self.con.execute("SELECT name, type FROM covariates ORDER BY name").pl()

    def counts(self) -> dict[str, int]:
        """Row count of every data and bookkeeping table."""
        from . import attach as _attach

        out: dict[str, int] = {}
        for name in ("predictions", "deployments", "artifacts", "quarantine", "ingest_log"):
            if (name == "predictions" and _attach.info(self.con) is not None and not _attach.stale_files(self.con)
                    and "valid" in table_columns(self.con, _attach.FILES_TABLE)):
                # attached: the valid rows per file were counted when the dataset was validated (no scan)
                out[name] = int(one_row(self.con, f"SELECT coalesce(sum(valid), 0) FROM {_attach.FILES_TABLE}")[0])
                continue
            out[name] = one_row(self.con, f"SELECT count(*) FROM {quote_ident(name)}")[0]
        if has_labels_table(self.con):  # made by the first late-labels ingest
            out["outcomes"] = one_row(self.con, "SELECT count(*) FROM outcomes")[0]
        return out

    def ingest_log(self) -> pl.DataFrame:
        """One row per ingested file: path, sha256, counts and times."""
        return self.con.execute("SELECT * FROM ingest_log ORDER BY ingest_id").pl()

    def quarantine(self, *, ingest_id: int | None = None) -> pl.DataFrame:
        """Rejected rows with their reason and the raw row as JSON (of one ingest, or all)."""
        if ingest_id is None:
            return self.con.execute("SELECT * FROM quarantine ORDER BY ingest_id, row_number").pl()
        if isinstance(ingest_id, bool) or not isinstance(ingest_id, int):
            raise InputError(f"ingest id must be an integer (see Store.ingest_log()), got {ingest_id!r}")
        return self.con.execute(
            "SELECT * FROM quarantine WHERE ingest_id = ? ORDER BY row_number", [ingest_id]
        ).pl()

    def time_span(self, *, plausible: bool = False) -> tuple | None:
        """(first, last) prediction timestamp, or None for an empty store.

        With ``plausible``, only times inside :data:`toolkit.timeutil.PLAUSIBLE_START` ..
        ``PLAUSIBLE_END`` count (what a store written before ingest checked the range may hold
        besides them cannot be analysed).
        """
        from ..timeutil import PLAUSIBLE_END, PLAUSIBLE_START
        from . import attach as _attach

        if _attach.info(self.con) is not None:
            # attached: the valid rows' span per file was measured when the dataset was validated (their
            # times all lie in the plausible range), so no analysis scans the whole dataset for it
            row = one_row(self.con, f"SELECT min(ts_min), max(ts_max) FROM {_attach.FILES_TABLE}")
            return None if row[0] is None else (row[0], row[1])
        sql = "SELECT min(ts), max(ts) FROM predictions"
        params: list = []
        if plausible:
            sql += " WHERE ts >= ? AND ts < ?"
            params = [PLAUSIBLE_START, PLAUSIBLE_END]
        row = one_row(self.con, sql, params)
        return None if row[0] is None else (row[0], row[1])


@contextlib.contextmanager
def opened(store: Store | str | os.PathLike) -> Iterator[Store]:
    """The store an analysis reads: ``store`` itself, or the file at a path opened read-only and closed after.

    The one place the analyses (audit, attribution, explain, checks) turn their ``store`` argument
    into an open :class:`Store`; anything else is an error saying what to pass.
    """
    if isinstance(store, Store):
        yield store
        return
    if not isinstance(store, (str, os.PathLike)):
        raise InputError(f"store must be a toolkit.Store or a path to a store file, got {type(store).__name__}")
    with Store(store, read_only=str(store) != ":memory:") as st:
        yield st
