"""Consistency score per bucket: the share of requests served as intended.

A request is *governed* when a deployment history covers it (online, cache
and batch rows once their component has a deploy event; shadow rows are
never governed) and *served as intended* when its resolved version is one
of the versions the intended state allows at that moment. The score is
``n_as_intended / n`` over governed requests (1.0 = consistent);
``n_versions`` counts the distinct resolved versions that answered
non-shadow requests in the bucket.
"""

from __future__ import annotations

import duckdb
import polars as pl

from .census import CELLS
from .results import CONSISTENCY_COLUMNS, COVERAGE_COLUMNS

_SQL = f"""
SELECT bucket_start,
       sum(CASE WHEN governed THEN n ELSE 0 END)::BIGINT AS n,
       sum(CASE WHEN governed AND in_intent THEN n ELSE 0 END)::BIGINT AS n_as_intended,
       CASE WHEN sum(CASE WHEN governed THEN n ELSE 0 END) > 0
            THEN sum(CASE WHEN governed AND in_intent THEN n ELSE 0 END)
                 / sum(CASE WHEN governed THEN n ELSE 0 END) END AS score,
       count(DISTINCT CASE WHEN component <> 'shadow' THEN resolved_version END)::BIGINT AS n_versions
FROM {CELLS}
GROUP BY bucket_start
ORDER BY bucket_start
"""


_COVERAGE_SQL = f"""
SELECT component, sum(n)::BIGINT AS n, sum(CASE WHEN governed THEN n ELSE 0 END)::BIGINT AS n_governed,
       bool_or(gov IS NOT NULL) AS has_history_kind
FROM {CELLS}
GROUP BY component
ORDER BY n DESC, component
"""


def coverage_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per predictions component: requests, and those a deployment history governs (the score's base).

    ``has_history_kind`` is False for a component vdrift does not know how to
    govern (a name other than online, cache, batch; shadow is never governed).
    """
    return con.execute(_COVERAGE_SQL).pl().select(list(COVERAGE_COLUMNS))


def consistency_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Per bucket: governed requests, those as intended, score, distinct versions."""
    frame = con.execute(_SQL).pl()
    return frame.select(list(CONSISTENCY_COLUMNS)).with_columns(pl.col("score").cast(pl.Float64))
