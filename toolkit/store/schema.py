"""DuckDB schema of the store, its version, and migrations.

The store holds the three contract tables (``predictions``, ``deployments``,
``artifacts``), the bookkeeping tables (``ingest_log``, ``quarantine``,
``covariates``, ``meta``) and one view, ``predictions_resolved``, that adds the
resolved version (docs/ingest.md, "The data contract") to every prediction.

All timestamps are ``TIMESTAMP`` values holding UTC wall-clock time.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from ..engine.keys import REQUEST_KEY, request_key_sql
from ..errors import StoreError
from ..sqlutil import one_row, quote_ident

SCHEMA_VERSION = 2

#: Columns of ``predictions`` that vdrift writes itself (never a contract column or a covariate):
#: the ingest that loaded the row, and the row's request key (``toolkit.engine.keys``).
BOOKKEEPING = ("ingest_id", REQUEST_KEY)
#: The request key of a row being inserted into ``predictions`` (from its column ``request_id``).
REQUEST_KEY_SQL = request_key_sql(quote_ident("request_id"), "duckdb")

#: Contract columns of each table: name -> (DuckDB type, required).
CONTRACT: dict[str, dict[str, tuple[str, bool]]] = {
    "predictions": {
        "request_id": ("VARCHAR", True),
        "ts": ("TIMESTAMP", True),
        "model_version": ("VARCHAR", True),
        "prediction": ("VARCHAR", True),
        "score": ("DOUBLE", False),
        "artifact_hash": ("VARCHAR", False),
        "feature_version": ("VARCHAR", False),
        "component": ("VARCHAR", False),
        "cache_hit": ("BOOLEAN", False),
        "region": ("VARCHAR", False),
        "instance_id": ("VARCHAR", False),
        "entity_id": ("VARCHAR", False),
        "experiment": ("VARCHAR", False),
        "arm": ("VARCHAR", False),
        "outcome": ("VARCHAR", False),
    },
    "outcomes": {  # late labels, joined to stored predictions by request_id (toolkit.store.ingest.labels)
        "request_id": ("VARCHAR", True),
        "outcome": ("VARCHAR", True),
        "labeled_at": ("TIMESTAMP", False),
    },
    "deployments": {
        "ts": ("TIMESTAMP", True),
        "component": ("VARCHAR", True),
        "scope": ("VARCHAR", True),
        "event": ("VARCHAR", True),
        "version": ("VARCHAR", False),
        "artifact_hash": ("VARCHAR", False),
        "traffic_pct": ("DOUBLE", False),
        "expected_end": ("TIMESTAMP", False),
        "actor": ("VARCHAR", False),
        "experiment": ("VARCHAR", False),
        "note": ("VARCHAR", False),
    },
    "artifacts": {
        "version": ("VARCHAR", True),
        "artifact_hash": ("VARCHAR", True),
        "feature_version": ("VARCHAR", False),
        "created_at": ("TIMESTAMP", False),
    },
}


_DDL_V1 = [
    """CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)""",
    """CREATE SEQUENCE IF NOT EXISTS ingest_id_seq START 1""",
    """CREATE TABLE IF NOT EXISTS ingest_log (
        ingest_id BIGINT PRIMARY KEY,
        kind VARCHAR NOT NULL,
        path VARCHAR NOT NULL,
        sha256 VARCHAR NOT NULL,
        format VARCHAR NOT NULL,
        mapping VARCHAR,
        rows_read BIGINT NOT NULL,
        accepted BIGINT NOT NULL,
        quarantined BIGINT NOT NULL,
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP NOT NULL,
        toolkit_version VARCHAR NOT NULL,
        superseded_by BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        ingest_id BIGINT NOT NULL,
        kind VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        row_number BIGINT,
        reason VARCHAR NOT NULL,
        raw JSON
    )""",
    """CREATE TABLE IF NOT EXISTS covariates (
        name VARCHAR PRIMARY KEY,
        type VARCHAR NOT NULL,
        first_ingest_id BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS predictions (
        request_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        model_version VARCHAR NOT NULL,
        prediction VARCHAR NOT NULL,
        score DOUBLE,
        artifact_hash VARCHAR,
        feature_version VARCHAR,
        component VARCHAR NOT NULL DEFAULT 'online',
        cache_hit BOOLEAN,
        region VARCHAR,
        instance_id VARCHAR,
        entity_id VARCHAR,
        experiment VARCHAR,
        arm VARCHAR,
        outcome VARCHAR,
        ingest_id BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS deployments (
        ts TIMESTAMP NOT NULL,
        component VARCHAR NOT NULL,
        scope VARCHAR NOT NULL,
        event VARCHAR NOT NULL,
        version VARCHAR,
        artifact_hash VARCHAR,
        traffic_pct DOUBLE,
        expected_end TIMESTAMP,
        actor VARCHAR,
        experiment VARCHAR,
        note VARCHAR,
        ingest_id BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS artifacts (
        version VARCHAR NOT NULL,
        artifact_hash VARCHAR NOT NULL,
        feature_version VARCHAR,
        created_at TIMESTAMP,
        ingest_id BIGINT NOT NULL
    )""",
]

def resolution_sql(alias: str, registry: str = "artifacts") -> tuple[str, str]:
    """How a logged row (``alias``: its table alias) resolves to a version (docs/ingest.md, "The data contract").

    Returns the select-list fragment (``resolved_version``, ``version_status``,
    ``expected_feature_version``) and the registry join it reads (alias
    ``a``), shared by the ``predictions_resolved`` view and the audit's
    pre-cells, which resolve a group of rows with one logged digest, and
    the Spark engine's view over the exported rows (``registry``: the
    registered copy of the registry there). The text is the same on DuckDB
    and Spark; a digest registered under several versions resolves to the
    smallest, on either engine. ``alias`` and ``registry`` are fixed
    identifiers of the calling code, never user input.
    """
    select = f"""CASE
         WHEN {alias}.artifact_hash IS NULL THEN {alias}.model_version
         WHEN a.version IS NOT NULL THEN a.version
         ELSE 'unregistered:' || left({alias}.artifact_hash, 12)
       END AS resolved_version,
       CASE
         WHEN {alias}.artifact_hash IS NULL THEN 'unverified'
         WHEN a.version IS NULL THEN 'unregistered'
         WHEN a.version = {alias}.model_version THEN 'verified'
         ELSE 'mismatch'
       END AS version_status,
       a.feature_version AS expected_feature_version"""
    join = f"""LEFT JOIN (SELECT artifact_hash, min(version) AS version,
                  min(feature_version) AS feature_version
           FROM {registry} GROUP BY artifact_hash) AS a
  ON {alias}.artifact_hash = a.artifact_hash"""
    return select, join


_VIEW_SELECT, _VIEW_JOIN = resolution_sql("p")
# The view is recreated on every open because it lists the covariate columns.
RESOLVED_VIEW = f"""
CREATE OR REPLACE VIEW predictions_resolved AS
SELECT p.*,
       {_VIEW_SELECT}
FROM predictions AS p
{_VIEW_JOIN}
"""



def create_predictions_table(con: duckdb.DuckDBPyConnection) -> None:
    """An empty ``predictions`` table with the contract columns and the bookkeeping of this schema version."""
    v1 = next(s for s in _DDL_V1 if s.strip().startswith("CREATE TABLE IF NOT EXISTS predictions"))
    anchor = "ingest_id BIGINT NOT NULL"
    if v1.count(anchor) != 1:
        raise RuntimeError("the predictions DDL no longer names its ingest_id column as expected here")
    con.execute(v1.replace(anchor, f"{anchor},\n        {quote_ident(REQUEST_KEY)} UINTEGER NOT NULL"))


#: An attached store's version-1 view of the predictions, which version 2 wraps (see :func:`settle_request_key`).
OLD_VIEW = "_vdrift_predictions_v1"
#: A version-1 store's own column named like the request key is kept under this name (a stored table).
RENAMED_KEY = "input_request_key"


def _predictions_columns(con: duckdb.DuckDBPyConnection) -> tuple[str | None, dict[str, tuple[str, bool]]]:
    """``predictions``' kind (``BASE TABLE``, ``VIEW`` or None) and its columns: name -> (type, nullable).

    Read from the catalog, so a view over files that are gone is described without reading them.
    """
    kind = con.execute("SELECT table_type FROM information_schema.tables WHERE table_schema = 'main' "
                       "AND table_name = 'predictions'").fetchone()
    cols = con.execute("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                       "WHERE table_schema = 'main' AND table_name = 'predictions'").fetchall()
    return (kind[0] if kind else None), {c: (t, n == "YES") for c, t, n in cols}


def _add_request_key(con: duckdb.DuckDBPyConnection) -> None:
    """Version 2: every stored prediction row carries its request key, computed once (``toolkit.engine.keys``).

    A stored table gains the column, filled for the rows it holds. A column
    of the store's own that version 1 took as a covariate named
    ``request_key`` is kept, renamed :data:`RENAMED_KEY`. An attached
    dataset's view is left to :func:`settle_request_key`, after the commit.
    """
    kind, cols = _predictions_columns(con)
    if kind != "BASE TABLE":
        return
    key, expr = quote_ident(REQUEST_KEY), REQUEST_KEY_SQL
    if REQUEST_KEY in cols:
        new = RENAMED_KEY
        while new in cols:
            new = "input_" + new
        con.execute(f"ALTER TABLE predictions RENAME COLUMN {key} TO {quote_ident(new)}")
        con.execute("UPDATE covariates SET name = ? WHERE name = ?", [new, REQUEST_KEY])
    con.execute(f"ALTER TABLE predictions ADD COLUMN {key} UINTEGER")
    con.execute(f"UPDATE predictions SET {key} = {expr}")


def settle_request_key(con: duckdb.DuckDBPyConnection) -> None:
    """On a store opened for writing: ``predictions.request_key`` exists, filled, and a stored one is NOT NULL.

    Run after any migration has committed (DuckDB refuses the constraint in
    the transaction that filled the column), and on every open for writing,
    so a process stopped between the two leaves nothing that a later open
    does not finish (DuckDB refuses the constraint on a table with an index
    of the user's own: the column then stays nullable, and the passes refuse
    a NULL key, :func:`toolkit.attribution.sums.frame_to_sums`). An attached dataset's version-1 view is wrapped by one
    that computes the key on read (a column of its own of that name is left
    out, as the attach of this version leaves it out); when the view cannot
    be read (its files are gone) it is left as it is, and ``vdrift
    validate`` rebuilds it.
    """
    kind, cols = _predictions_columns(con)
    key = quote_ident(REQUEST_KEY)
    if kind == "BASE TABLE" and cols.get(REQUEST_KEY, ("", False))[1]:
        con.execute(f"UPDATE predictions SET {key} = {REQUEST_KEY_SQL} WHERE {key} IS NULL")
        try:
            con.execute(f"ALTER TABLE predictions ALTER COLUMN {key} SET NOT NULL")
        except duckdb.DependencyException:
            pass  # an index of the user's own on the table: the column stays nullable, filled by every write
    elif kind == "VIEW" and cols.get(REQUEST_KEY, ("",))[0] != "UINTEGER":
        own = f" EXCLUDE ({key})" if REQUEST_KEY in cols else ""
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DROP VIEW IF EXISTS {OLD_VIEW}")
            con.execute(f"ALTER VIEW predictions RENAME TO {OLD_VIEW}")
            con.execute(f"CREATE VIEW predictions AS SELECT *{own}, {REQUEST_KEY_SQL} AS {key} FROM {OLD_VIEW}")
            con.execute("DELETE FROM covariates WHERE name = ?", [REQUEST_KEY])
            con.execute("COMMIT")
        except duckdb.Error:
            con.execute("ROLLBACK")


_MIGRATIONS: dict[int, list[str] | Callable[[duckdb.DuckDBPyConnection], None]] = {
    1: _DDL_V1, 2: _add_request_key}


def stored_schema_version(path: str) -> int | None:
    """The schema version a store file records (read-only), or None when it is no vdrift store.

    Raises
    ------
    StoreError
        When the file cannot be opened as a DuckDB database, or records a version that is not a number.
    """
    try:
        con = duckdb.connect(path, read_only=True)
    except duckdb.Error as exc:
        raise StoreError(f"cannot open {path!r} as a DuckDB database: {str(exc).strip().splitlines()[0]}") from None
    try:
        return _recorded_version(con)
    finally:
        con.close()


def _recorded_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The schema version the store's ``meta`` records, None without one (StoreError when it is no number)."""
    if not one_row(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'")[0]:
        return None
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else _version_number(row[0])


def _version_number(value: str) -> int:
    """The schema version recorded in ``meta`` as a number (StoreError when it is not one)."""
    try:
        return int(value)
    except ValueError:
        raise StoreError(
            f"the store's schema version {value!r} is not a number (its meta table was edited or "
            "damaged); restore the store from a backup or rebuild it by ingesting the logs again"
        ) from None


def ensure_schema(con: duckdb.DuckDBPyConnection, *, read_only: bool = False, path: str = "<store>") -> int:
    """Create or migrate the schema and return the store's schema version.

    A store opened for writing is migrated in one transaction, then
    :func:`settle_request_key` finishes what DuckDB cannot do inside it.

    Raises
    ------
    StoreError
        If the file was written by a newer toolkit (its schema version is
        higher than :data:`SCHEMA_VERSION`); if it is older and opened
        read-only (the message asks for ``vdrift upgrade``, or ``Store(path)``
        opened for writing); if a migration fails (the store is unchanged).
    """
    current = _recorded_version(con) or 0  # no meta table or no schema_version row: version 0
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"this store has schema version {current}, but this toolkit only "
            f"understands up to version {SCHEMA_VERSION}: upgrade vdrift "
            "(pip install -U vdrift) to open it"
        )
    if current == SCHEMA_VERSION:
        if not read_only:
            settle_request_key(con)
        return current
    if read_only and current:
        raise StoreError(
            f"the store has schema version {current}, older than this vdrift's {SCHEMA_VERSION}: "
            f"run `vdrift upgrade --db {path}` once to migrate it in place (in Python: open it for writing, "
            "Store(path))"
        )
    if read_only:
        raise StoreError(
            "the store has no vdrift schema yet; open it read-write once (e.g. run `vdrift ingest`) to create it"
        )
    con.execute("BEGIN TRANSACTION")
    try:
        for version in range(current + 1, SCHEMA_VERSION + 1):
            step = _MIGRATIONS[version]
            if callable(step):
                step(con)
            else:
                for stmt in step:
                    con.execute(stmt)
        con.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
        )
        if _predictions_columns(con)[0] == "BASE TABLE":  # an attached dataset's views are built by attach
            con.execute(RESOLVED_VIEW)
        con.execute("COMMIT")
    except Exception as exc:
        con.execute("ROLLBACK")
        if current and isinstance(exc, duckdb.Error):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(
                f"migrating the store from schema version {current} to {SCHEMA_VERSION} failed, and it is "
                f"unchanged: {first}; if an index or view of your own depends on its tables, drop it and run "
                f"`vdrift upgrade --db {path}` again"
            ) from None
        raise
    settle_request_key(con)
    return SCHEMA_VERSION
