"""Causes: what each serving problem cost, where and when (``vdrift explain``).

:func:`explain` prices the rows that were served off-intent (the
counterfactual: served as the deployment history intended), splits that
cost and the attribution's version drift exactly by audit finding, adds the
data drift by feature and the residual, and ranks the causes
(docs/causes.md).
"""

from .api import explain
from .results import CAUSE_SCHEMA, ExplainResult

__all__ = ["explain", "ExplainResult", "CAUSE_SCHEMA"]
