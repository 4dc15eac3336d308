"""vdrift: model version drift toolkit.

Public API (each mirrors a ``vdrift`` sub-command)::

    import toolkit
    store = toolkit.Store("vdrift.duckdb")
    store.ingest("predictions", ["logs/*.parquet"])           # vdrift ingest
    toolkit.attach(store, "lake/", partitioning="hive")        # vdrift attach predictions (in place)
    findings = toolkit.audit(store).findings                     # vdrift audit
    result = toolkit.attribute(store, "rate:prediction=approved",
                               "2026-11-02..2026-11-09",
                               "2026-11-09..2026-11-16")         # vdrift attribute
    causes = toolkit.explain(store, "rate:prediction=approved",
                             "2026-11-09..2026-11-16",
                             baseline="2026-11-02..2026-11-09")  # vdrift explain
    toolkit.render_report("incident", {...})                     # vdrift report
    toolkit.samples.generate("out/", ["all"])                    # vdrift samples

The analyses are imported on first use, so ``import toolkit`` stays light.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import InputError, NotApplicable, StoreError, VdriftError  # noqa: E402
from .store import Store  # noqa: E402

__all__ = ["Store", "attach", "audit", "attribute", "explain", "render_report", "checks", "samples", "instrument",
           "VdriftError", "InputError", "StoreError", "NotApplicable", "__version__"]


def __getattr__(name: str):
    import importlib

    if name == "attach":
        return importlib.import_module(".store.attach", __name__).attach
    if name == "attribute":
        return importlib.import_module(".attribution", __name__).attribute
    if name == "explain":
        return importlib.import_module(".causes", __name__).explain
    if name == "render_report":
        return importlib.import_module(".report", __name__).render
    if name in ("audit", "checks", "samples", "instrument", "attribution", "report", "causes"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
