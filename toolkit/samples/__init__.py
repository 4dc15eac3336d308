"""Sample scenarios: a seeded simulator of a fraud-approval service with replay ground truth.

``simulate`` returns logs, deployment history, artifact registry and ground
truth in memory; ``generate`` writes them to a directory. Scenarios (each
combinable; ``all`` = the first five): canary, rollback, config_mismatch,
experiment, covariate_shift, clean.
"""

from .results import GroundTruth, Problem, ReplayEffects
from .scenarios import ALL, FORMATS, PROBLEM_KINDS, SCENARIOS
from .simulate import Simulation, simulate
from .writers import generate
from .load import load_simulation

__all__ = [
    "load_simulation",
    "generate",
    "simulate",
    "Simulation",
    "GroundTruth",
    "Problem",
    "ReplayEffects",
    "SCENARIOS",
    "ALL",
    "FORMATS",
    "PROBLEM_KINDS",
]
