"""vdrift: model version drift toolkit.

Public API::

    from toolkit import Store
    store = Store("vdrift.duckdb")
    store.ingest("predictions", ["logs/*.parquet"])
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import InputError, NotApplicable, StoreError, VdriftError  # noqa: E402
from .store import Store  # noqa: E402

__all__ = ["Store", "VdriftError", "InputError", "StoreError", "NotApplicable", "__version__"]
