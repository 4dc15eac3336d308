"""What the benchmarks measure against: the targets of issue 6, and shared units."""

from __future__ import annotations

METHODS = ("regression", "matched", "standardization")
GIB = 2**30
#: rows per DuckDB row group (the unit its min/max pruning skips)
ROW_GROUP = 122_880

#: the targets of issue 6
TARGET_INGEST_RATIO = 1.5
TARGET_SECONDS_100M = 60.0
TARGET_RSS_100M = 4 * GIB
TARGET_GLM_SPEEDUP = 20.0
TARGET_GLM_DIFF = 1e-6
