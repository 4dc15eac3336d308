"""The DuckDB store: schema, ingestion with validation and quarantine."""

from .store import Store, opened
from .ingest import IngestResult, IngestReport

__all__ = ["Store", "opened", "IngestResult", "IngestReport"]
