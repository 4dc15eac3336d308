"""Real-data replay cases: real records, routed to real model versions synthetically.

Each case under ``data/samples/real/<case>/`` is a committed *replay table*
(``replay.parquet``) built by ``data/samples/real/build.py`` from a public
data set that a pip package bundles: one row per real record, placed in the
baseline or comparison window in its real time order, with the covariates,
the real outcome and every model version's predicted label and score (the
versions are scikit-learn models trained on other time slices). ``case.json``
describes the source, target, versions, windows and the routing plan.

:func:`replay_case` routes the records to versions as the plan's deployment
events say (per region scope and time: a stuck canary, a 50/50 experiment by
a hash of the request_id, a deploy and rollback), logs only the serving
version's output, and computes the exact replay ground truth the simulator
computes (:class:`~toolkit.samples.truth.ReplayAccumulator`): because every
version's output is known for every record, ``M(a, b)`` is exact and data
and version drift are its two-factor Shapley values. The covariate shift
between the windows is real (winter vs summer flights; the same women 14
years later), and so is the version drift's size: only the routing is made up.

This module needs numpy and polars only (no scikit-learn).
"""

from .cases import CASES, DEFAULT_ROOT, PERIODS, SCENARIOS, case_names, load_case, metrics_of
from .registry import artifacts_frame, deployments_frame
from .replay import expected_sampling_noise, replay_case
from .routing import Plan, plan_of
from .write import as_simulation, load_case_store, write_case

__all__ = [
    "CASES", "DEFAULT_ROOT", "PERIODS", "SCENARIOS", "Plan", "artifacts_frame", "as_simulation", "case_names",
    "deployments_frame", "expected_sampling_noise", "load_case", "load_case_store", "metrics_of", "plan_of",
    "replay_case", "write_case",
]
