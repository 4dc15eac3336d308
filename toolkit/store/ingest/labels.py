"""Late labels: ``vdrift ingest outcomes`` joins ground truth that arrives days later to stored predictions.

A labels file has ``request_id`` and ``outcome`` (and optionally ``labeled_at``,
when the label was decided). It goes through the same staging, checks and
transaction as every ingest; then, in that transaction:

- a label whose ``request_id`` no stored prediction has is quarantined (ingest
  the predictions, then ``vdrift quarantine --release`` it);
- a label that disagrees with one already stored (an earlier labels file, or
  the ``outcome`` the predictions log carried) is quarantined as a conflict,
  naming both values; an identical label stored before is quarantined as a repeat;
- accepted labels are kept in the ``outcomes`` table with their arrival time
  (``arrived_at``, when this ingest ran) and written into the ``outcome`` of
  every prediction row of the request that has none yet (``applied``).

``--force`` re-ingest of a labels file first takes back what it applied.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ...sqlutil import one_row
from .plan import shown

#: the table of accepted labels; made by the first labels ingest of a store
TABLE_SQL = """CREATE TABLE IF NOT EXISTS outcomes (
    request_id VARCHAR NOT NULL,
    outcome VARCHAR NOT NULL,
    labeled_at TIMESTAMP,
    arrived_at TIMESTAMP,
    applied BIGINT,
    ingest_id BIGINT NOT NULL
)"""


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``outcomes`` table if this store has none yet (inside the ingest's transaction)."""
    con.execute(TABLE_SQL)


def has_table(con: duckdb.DuckDBPyConnection) -> bool:
    """True once a labels file was ingested into the store."""
    return bool(one_row(
        con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'outcomes'")[0])


def mark(con: duckdb.DuckDBPyConnection) -> None:
    """Set ``_reason`` on staged labels that repeat or contradict a stored one, or match no prediction."""
    rid, here = shown("s.request_id"), shown("s.outcome")
    con.execute(
        f"""UPDATE _vd_stage AS s SET _reason = CASE
              WHEN o.outcome = s.outcome
                THEN 'label for request_id ' || {rid} || ' already stored by ingest ' || o.ingest_id || ' (same value)'
              ELSE 'conflicting label for request_id ' || {rid} || ': ' || {here} || ' here, '
                   || {shown("o.outcome")} || ' stored by ingest ' || o.ingest_id END
            FROM (SELECT request_id, any_value(outcome) AS outcome, min(ingest_id) AS ingest_id
                  FROM outcomes GROUP BY request_id) AS o
            WHERE s._reason IS NULL AND o.request_id = s.request_id"""
    )
    con.execute(
        f"""UPDATE _vd_stage AS s SET _reason = CASE
              WHEN q.found IS NULL THEN 'no stored prediction has request_id ' || {rid}
                   || ' (ingest its predictions, then release it with vdrift quarantine --release)'
              ELSE 'conflicting label for request_id ' || {rid} || ': ' || {here} || ' here, '
                   || {shown("q.logged")} || ' in the predictions log' END
            FROM (SELECT st.request_id, p.request_id AS found, p.logged
                  FROM (SELECT DISTINCT request_id FROM _vd_stage WHERE _reason IS NULL) AS st
                  LEFT JOIN (SELECT request_id, max(outcome) AS logged FROM predictions
                             WHERE request_id IN (SELECT request_id FROM _vd_stage WHERE _reason IS NULL)
                             GROUP BY request_id) AS p ON p.request_id = st.request_id) AS q
            WHERE s._reason IS NULL AND q.request_id = s.request_id
              AND (q.found IS NULL OR (q.logged IS NOT NULL AND q.logged <> s.outcome))"""
    )


def apply(con: duckdb.DuckDBPyConnection, ingest_id: int, arrived: dt.datetime) -> int:
    """Write the ingest's accepted labels into predictions of requests the log left unlabelled; rows updated.

    A request whose log already carries the same outcome keeps it (``applied`` = 0).
    """
    con.execute(
        # numbered parameters: DuckDB numbers '?' in UPDATE ... FROM subqueries before the SET clause
        """UPDATE outcomes AS o SET arrived_at = $1, applied = c.n
           FROM (SELECT o2.request_id, count(p.request_id) FILTER (WHERE p.outcome IS NULL)
                        * (count(p.outcome) = 0)::INTEGER AS n
                 FROM outcomes AS o2 LEFT JOIN predictions AS p ON p.request_id = o2.request_id
                 WHERE o2.ingest_id = $2 GROUP BY o2.request_id) AS c
           WHERE o.ingest_id = $2 AND o.request_id = c.request_id""",
        [arrived, ingest_id],
    )
    n = one_row(  # an UPDATE returns one row: the number of rows it changed
        con,
        """UPDATE predictions AS p SET outcome = o.outcome
           FROM outcomes AS o
           WHERE o.ingest_id = ? AND o.applied > 0 AND p.request_id = o.request_id""",
        [ingest_id],
    )[0]
    return int(n)


def take_back(con: duckdb.DuckDBPyConnection, ingest_ids: list[int]) -> None:
    """Before ``--force`` replaces labels ingests: clear the outcomes they wrote into predictions."""
    if not has_table(con):
        return
    con.execute(
        """UPDATE predictions AS p SET outcome = NULL
           FROM outcomes AS o
           WHERE o.ingest_id IN (SELECT unnest(?)) AND o.applied > 0 AND p.request_id = o.request_id""",
        [ingest_ids],
    )
    con.execute("DELETE FROM outcomes WHERE ingest_id IN (SELECT unnest(?))", [ingest_ids])
