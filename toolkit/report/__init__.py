"""Papermill reports: parameterised notebooks rendered to offline HTML and figures.

Public API::

    from toolkit.report import render
    res = render("incident", {"store_path": "vdrift.duckdb",
                              "metric": "rate:prediction=approved",
                              "baseline": "2026-11-02..2026-11-09",
                              "comparison": "2026-11-09..2026-11-16"})
    print(res.html)

The notebooks in ``notebooks/`` only call :class:`IncidentReport` and
:class:`WeeklyReport` (after :func:`setup`); :func:`render` validates the
parameters, runs the notebook with papermill (timeout always set, this
environment's kernel), exports HTML without code and without any CDN, writes
every chart as PNG and SVG under ``figures/`` and updates ``index.html``.
"""

from __future__ import annotations

from .notebook import setup
from .params import KINDS, SPECS, ReportParams, validate
from .pipeline import ReportResult, render

__all__ = ["render", "ReportResult", "validate", "ReportParams", "SPECS", "KINDS", "setup",
           "IncidentReport", "WeeklyReport"]


def __getattr__(name: str):
    # The report classes import the analyses; load them on first use only.
    if name == "IncidentReport":
        from .incident import IncidentReport

        return IncidentReport
    if name == "WeeklyReport":
        from .weekly import WeeklyReport

        return WeeklyReport
    raise AttributeError(f"module 'toolkit.report' has no attribute {name!r}")
