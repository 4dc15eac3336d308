"""The DuckDB store: schema, ingestion with validation and quarantine."""

from .store import Store
from .ingest import IngestResult, IngestReport

__all__ = ["Store", "IngestResult", "IngestReport"]
