"""Attribution: split a metric shift into data drift, version drift and residual.

Public API::

    from toolkit.attribution import attribute
    res = attribute("vdrift.duckdb", "rate:prediction=approved",
                    "2026-11-02..2026-11-09", "2026-11-09..2026-11-16")
    print(res.summary())

Methods (same result type): ``regression`` (GLM on cells, regression-adjusted
standardization), ``matched`` (coarsened exact matching) and
``standardization`` (Kitagawa / Das Gupta over stratum x version cells).
Published procedures: :func:`kitagawa`, :func:`das_gupta_cross_classified`,
:func:`das_gupta_factors`, :func:`oaxaca_blinder`.
"""

from .api import attribute
from .drift import feature_drift
from .metrics import Metric, parse_metric
from .oaxaca import OaxacaResult, oaxaca_blinder
from .results import AttributionResult, Diagnostics, Note
from .standardize import RateDecomposition, das_gupta_cross_classified, das_gupta_factors, kitagawa

__all__ = [
    "attribute", "AttributionResult", "Diagnostics", "Note", "Metric", "parse_metric", "feature_drift",
    "oaxaca_blinder", "OaxacaResult", "kitagawa", "das_gupta_cross_classified", "das_gupta_factors",
    "RateDecomposition",
]
