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
    con.execute(v1.replace("ingest_id BIGINT NOT NULL",
                           f"ingest_id BIGINT NOT NULL,\n        {quote_ident(REQUEST_KEY)} UINTEGER NOT NULL"))


def _add_request_key(con: duckdb.DuckDBPyConnection) -> None:
    """Version 2: every prediction row carries its request key, computed once (``toolkit.engine.keys``).

    A stored table gains the column, filled for the rows it holds; an
    attached dataset's view (``vdrift attach``) is wrapped by one that
    computes it on read, until ``vdrift validate`` rebuilds the views.
    Every write of a prediction row fills the column; it is NOT NULL
    (:func:`_require_request_key`), so a row inserted by hand without it is
    refused rather than read without a replicate group.
    """
    kind = one_row(con, "SELECT table_type FROM information_schema.tables WHERE table_name = 'predictions'")[0]
    key, expr = quote_ident(REQUEST_KEY), REQUEST_KEY_SQL
    if kind == "VIEW":
        con.execute("ALTER VIEW predictions RENAME TO _vdrift_predictions_v1")
        con.execute(f"CREATE VIEW predictions AS SELECT *, {expr} AS {key} FROM _vdrift_predictions_v1")
        return
    con.execute(f"ALTER TABLE predictions ADD COLUMN {key} UINTEGER")
    con.execute(f"UPDATE predictions SET {key} = {expr}")


def _require_request_key(con: duckdb.DuckDBPyConnection) -> None:
    """Make ``predictions.request_key`` NOT NULL (a stored table; DuckDB refuses it in the filling transaction)."""
    if one_row(con, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'predictions' "
               "AND column_name = ? AND is_nullable = 'YES' AND table_name IN (SELECT table_name FROM "
               "information_schema.tables WHERE table_type = 'BASE TABLE')", [REQUEST_KEY])[0]:
        con.execute(f"ALTER TABLE predictions ALTER COLUMN {quote_ident(REQUEST_KEY)} SET NOT NULL")


_MIGRATIONS: dict[int, list[str] | Callable[[duckdb.DuckDBPyConnection], None]] = {
    1: _DDL_V1, 2: _add_request_key}


def ensure_schema(con: duckdb.DuckDBPyConnection, *, read_only: bool = False) -> int:
    """Create or migrate the schema and return the store's schema version.

    Raises
    ------
    StoreError
        If the file was written by a newer toolkit (its schema version is
        higher than :data:`SCHEMA_VERSION`).
    """
    has_meta = one_row(
        con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
    )[0]
    current = 0
    if has_meta:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is not None:  # no schema_version row: version 0
            try:
                current = int(row[0])
            except ValueError:
                raise StoreError(
                    f"the store's schema version {row[0]!r} is not a number (its meta table was edited or "
                    "damaged); restore the store from a backup or rebuild it by ingesting the logs again"
                ) from None
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"this store has schema version {current}, but this toolkit only "
            f"understands up to version {SCHEMA_VERSION}: upgrade vdrift "
            "(pip install -U vdrift) to open it"
        )
    if current == SCHEMA_VERSION:
        return current
    if read_only and current:
        raise StoreError(
            f"the store has schema version {current}, older than this vdrift's {SCHEMA_VERSION}: "
            "run `vdrift upgrade --db <store>` once to migrate it (in place, one transaction)"
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
        con.execute(RESOLVED_VIEW)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    _require_request_key(con)
    return SCHEMA_VERSION
