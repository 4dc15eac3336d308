"""The simulated world's fraud truth and the scoring functions of each version.

Every version is a logistic model of the fraud probability with its own
coefficients and its own decision threshold (declined when the score reaches
the threshold), so the versions approve at clearly different rates on the
same inputs. Scores depend only on the inputs and the version: the feature
version a row was computed with does not change the score, so a model-output
metric has no residual (mechanism) effect by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .population import Population


@dataclass(frozen=True)
class Logistic:
    """A logistic score on the simulator's features.

    ``z = intercept + amount * (log(amount) - 3.8) + age * (log1p(age_days) - 5.5)
    + merchant[m] + channel[c]``; the score is ``1 / (1 + exp(-z))``.
    """

    intercept: float
    amount: float
    age: float
    merchant: tuple[float, float, float, float, float]
    channel: tuple[float, float, float]
    threshold: float = 0.5

    def logit(self, pop: Population) -> np.ndarray:
        """The model's log-odds of fraud for each row of ``pop``."""
        z = (
            self.intercept
            + self.amount * (np.log(pop.amount) - 3.8)
            + self.age * (np.log1p(pop.age_days) - 5.5)
        )
        return z + np.asarray(self.merchant)[pop.merchant] + np.asarray(self.channel)[pop.channel]

    def score(self, pop: Population) -> np.ndarray:
        """The model's fraud probability for each row of ``pop``."""
        return 1.0 / (1.0 + np.exp(-self.logit(pop)))


#: The fraud process of the simulated world (merchant order: grocery,
#: electronics, travel, gaming, fashion; channel order: web, app, pos).
FRAUD = Logistic(-3.35, 0.85, -0.55, (-0.45, 0.55, 0.30, 0.95, 0.0), (0.30, 0.0, -0.55))
#: With covariate_shift, a fraud ring targets gaming in the comparison week
#: (outcome drift that the model versions do not know about).
FRAUD_SHIFT_GAMING = 0.7

#: Scoring functions, in the order of :data:`~toolkit.samples.scenarios.VERSIONS`.
MODELS: tuple[Logistic, ...] = (
    # v1.4: older, flatter model with a strict threshold
    Logistic(-2.95, 0.60, -0.35, (-0.30, 0.40, 0.20, 0.60, 0.0), (0.20, 0.0, -0.30), threshold=0.075),
    # v1.5: the model in production at the start of the data
    Logistic(-3.30, 0.80, -0.50, (-0.40, 0.55, 0.30, 0.90, 0.0), (0.30, 0.0, -0.50), threshold=0.085),
    # v1.6: retrained on recent fraud, declines more
    Logistic(-3.05, 0.85, -0.55, (-0.40, 0.60, 0.35, 1.05, 0.0), (0.35, 0.0, -0.55), threshold=0.075),
    # v2.0: new architecture, steeper in amount, approves more
    Logistic(-3.60, 1.05, -0.65, (-0.50, 0.70, 0.40, 1.10, 0.05), (0.35, 0.0, -0.60), threshold=0.11),
)


def replay(pop: Population) -> tuple[np.ndarray, np.ndarray]:
    """Score every request with every version.

    Returns
    -------
    scores, approved
        ``(n, n_versions)`` arrays: the fraud score and whether the version
        approves the request.
    """
    # scores are logged with 6 decimals; decisions use the logged score
    scores = np.round(np.column_stack([m.score(pop) for m in MODELS]), 6)
    thresholds = np.array([m.threshold for m in MODELS])
    return scores, scores < thresholds


def fraud_probability(pop: Population, *, covariate_shift: bool) -> np.ndarray:
    """True probability that each request is fraudulent."""
    z = FRAUD.logit(pop)
    if covariate_shift:
        z = z + FRAUD_SHIFT_GAMING * ((pop.period == 1) & (pop.merchant == 3))
    return 1.0 / (1.0 + np.exp(-z))
