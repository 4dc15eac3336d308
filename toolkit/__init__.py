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

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .errors import InputError, NotApplicable, StoreError, VdriftError  # noqa: E402

if TYPE_CHECKING:  # what __getattr__ returns, for type checkers and editors
    from . import attribution as attribution, causes as causes, report as report, store as store
    from . import audit, checks, instrument, samples
    from .attribution import attribute
    from .causes import explain
    from .engine.choose import Engine
    from .report import render as render_report
    from .store import Store
    from .store.attach import attach

__all__ = ["Store", "Engine", "attach", "audit", "attribute", "explain", "render_report", "checks", "samples",
           "instrument", "VdriftError", "InputError", "StoreError", "NotApplicable", "__version__"]

#: Public names imported on first use: (module, attribute), attribute None for the module itself.
#: Store is among them (and the ``store`` package, which ``import toolkit`` used to load): it imports
#: DuckDB and polars, which ``import toolkit`` does not.
_LAZY: dict[str, tuple[str, str | None]] = {
    "Store": (".store", "Store"),
    "Engine": (".engine.choose", "Engine"),
    "attach": (".store.attach", "attach"),
    "attribute": (".attribution", "attribute"),
    "explain": (".causes", "explain"),
    "render_report": (".report", "render"),
    **{name: (f".{name}", None) for name in ("audit", "checks", "samples", "instrument", "attribution", "report",
                                             "causes", "store")},
}


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
    module, attr = _LAZY[name]
    mod = importlib.import_module(module, __name__)
    return mod if attr is None else getattr(mod, attr)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
