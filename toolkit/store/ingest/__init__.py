"""Validated, atomic, idempotent ingestion of logs, history and registry.

Every file is loaded in one transaction. Validation is set-based SQL: the
file is read once into a typed staging table whose ``_reason`` column says
why a row cannot be accepted (NULL when it can); accepted rows go to the
target table, the others to ``quarantine`` with the source row kept whole as
JSON. ``accepted + quarantined = rows read`` holds for every file and is
checked before the transaction commits.

Consecutive Parquet prediction files of one call with the same columns are a
batch: one statement over ``read_parquet([...])`` validates and inserts the
valid rows of all of them (DuckDB reads the files in parallel), in one
transaction that holds all files of the batch or none. Each file keeps its
own ingest id, ingest_log row and result; a file with a rejected row or a
key that repeats is taken out again and loaded row by row in the same
transaction, so the outcome is the one of loading the files one by one. If
the batch fails, it is rolled back and its files are loaded one by one, each
in its own transaction.

The package follows the stages of an ingest:

- :mod:`.results`: :class:`IngestResult` and :class:`IngestReport`, what a call returns;
- :mod:`.files`: path expansion, formats, checksums, the SQL that reads a file;
- :mod:`.entry`: :func:`ingest`, the loop over the files and the handling of failures;
- :mod:`.load`: one file in one transaction (prepare, stage, insert, quarantine);
- :mod:`.batch`: typed batches of Parquet prediction files loaded by one statement;
- :mod:`.checks`: header and row-count checks, and why a reader refused a file;
- :mod:`.plan`: the column plan (types, checks, covariates);
- :mod:`.duplicates`: duplicate keys within a file, a batch and the store.
"""

from .duplicates import DUPLICATE_SEARCH_MARGIN
from .duplicates import _mark_duplicates as _mark_duplicates  # cited by benchmarks (the duplicate-check replay)
from .entry import ingest
from .files import WHOLE_ROW, expand_paths, file_sha256
from .plan import MAX_COVARIATES
from .results import Format, IngestReport, IngestResult, Status

__all__ = [
    "DUPLICATE_SEARCH_MARGIN",
    "MAX_COVARIATES",
    "WHOLE_ROW",
    "Format",
    "IngestReport",
    "IngestResult",
    "Status",
    "expand_paths",
    "file_sha256",
    "ingest",
]
