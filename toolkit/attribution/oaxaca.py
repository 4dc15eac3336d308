"""Classic linear Oaxaca-Blinder decomposition (two-fold pooled and three-fold).

Implemented here with weighted least squares so that it runs on rows or on
aggregated cells (a cell mean with weight ``n`` gives the same coefficients as
its ``n`` rows when the regressors are constant within the cell).

Conventions follow Jann (2008) and Stata's ``oaxaca``: group 1 is the group
with the higher mean when ``swap`` is true; three-fold
``gap = E + C + I`` with endowments ``E = (x1 - x2) b2``, coefficients
``C = x2 (b1 - b2)``, interaction ``I = (x1 - x2)(b1 - b2)``; pooled two-fold
with the coefficients of a pooled regression that includes the group
indicator (Jann's ``pooled`` option): explained ``(x1 - x2) b*``,
unexplained ``x1 (b1 - b*) + x2 (b* - b2)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import html
import json

import numpy as np
import polars as pl

from ..errors import InputError


@dataclass(frozen=True)
class OaxacaResult:
    """Linear Oaxaca-Blinder decomposition of a mean gap between two groups.

    Attributes
    ----------
    groups
        Labels of group 1 (first) and group 2; ``gap = mean_1 - mean_2``.
    means
        Mean outcome of each group.
    endowment, coefficient, interaction
        Three-fold effects.
    explained, unexplained
        Pooled two-fold effects.
    detail
        Per-regressor contributions: columns ``term``, ``endowment``,
        ``coefficient``, ``interaction``, ``explained``, ``unexplained``.
    """

    groups: tuple[str, str]
    means: tuple[float, float]
    endowment: float
    coefficient: float
    interaction: float
    explained: float
    unexplained: float
    detail: pl.DataFrame = field(repr=False)

    def __post_init__(self) -> None:
        gap = self.gap
        tol = 1e-7 * max(1.0, abs(gap))
        if abs(self.endowment + self.coefficient + self.interaction - gap) > tol:
            raise ValueError("three-fold effects do not add up to the gap")
        if abs(self.explained + self.unexplained - gap) > tol:
            raise ValueError("two-fold effects do not add up to the gap")

    @property
    def gap(self) -> float:
        """The gap between the groups' means."""
        return self.means[0] - self.means[1]

    def to_frame(self) -> pl.DataFrame:
        """Tidy frame: decomposition (threefold/twofold), component, estimate."""
        rows = [
            ("threefold", "endowment", self.endowment),
            ("threefold", "coefficient", self.coefficient),
            ("threefold", "interaction", self.interaction),
            ("twofold_pooled", "explained", self.explained),
            ("twofold_pooled", "unexplained", self.unexplained),
            ("gap", "gap", self.gap),
        ]
        return pl.DataFrame(rows, schema=["decomposition", "component", "estimate"], orient="row")

    def summary(self) -> str:
        """Text: the decomposition and its parts."""
        g1, g2 = self.groups
        lines = [
            f"Oaxaca-Blinder: {g1} mean {self.means[0]:.6g} - {g2} mean {self.means[1]:.6g} = gap {self.gap:.6g}",
            f"  three-fold: endowment {self.endowment:.6g}, coefficient {self.coefficient:.6g}, "
            f"interaction {self.interaction:.6g}",
            f"  pooled two-fold: explained {self.explained:.6g}, unexplained {self.unexplained:.6g}",
        ]
        return "\n".join(lines)

    def to_json(self) -> str:
        """The result as JSON text."""
        return json.dumps({
            "groups": list(self.groups), "means": list(self.means), "gap": self.gap,
            "threefold": {"endowment": self.endowment, "coefficient": self.coefficient,
                          "interaction": self.interaction},
            "twofold_pooled": {"explained": self.explained, "unexplained": self.unexplained},
            "detail": self.detail.to_dicts(),
        })

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(str(d))}</td><td>{html.escape(str(c))}</td><td>{e:.6g}</td></tr>"
            for d, c, e in self.to_frame().iter_rows()
        )
        return ("<table><thead><tr><th>decomposition</th><th>component</th><th>estimate</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>")


def _wls(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    sw = np.sqrt(w)
    beta, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    return beta


def oaxaca_blinder(
    y: np.ndarray,
    X: np.ndarray,
    group: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    names: list[str] | None = None,
    add_constant: bool = True,
    swap: bool = True,
    order: tuple | None = None,
) -> OaxacaResult:
    """Two-fold (pooled) and three-fold linear Oaxaca-Blinder decomposition.

    Parameters
    ----------
    y
        Outcome per row (or cell mean).
    X
        Regressors, shape (rows, k), without the group indicator.
    group
        Group of each row; exactly two distinct values.
    weights
        Frequency weights (cell sizes); default 1 per row.
    names
        Names of the columns of ``X`` (for the detailed decomposition).
    add_constant
        Append an intercept column to ``X``.
    swap
        Put the group with the higher mean first (as Stata's ``oaxaca``);
        otherwise group 1 is the first of the sorted group labels.
    order
        Explicit (group 1, group 2) labels; overrides ``swap``.
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    group = np.asarray(group)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    if not (len(y) == len(X) == len(group) == len(w)):
        raise InputError("y, X, group and weights must have the same number of rows")
    labels = np.unique(group)
    if labels.size != 2:
        raise InputError(f"Oaxaca-Blinder needs exactly two groups, got {labels.size}")
    names = list(names) if names is not None else [f"x{i}" for i in range(X.shape[1])]
    if add_constant:
        X = np.column_stack([X, np.ones(len(y))])
        names = names + ["const"]
    g1, g2 = labels[0], labels[1]

    def mean_y(g: object) -> float:
        m = group == g
        return float(np.sum(w[m] * y[m]) / np.sum(w[m]))

    if order is not None:
        if set(order) != set(labels.tolist()) or len(order) != 2:
            raise InputError(f"order {order!r} must name the two groups {labels.tolist()!r}")
        g1, g2 = order
    elif swap and mean_y(g1) < mean_y(g2):
        g1, g2 = g2, g1
    m1, m2 = group == g1, group == g2
    b1 = _wls(X[m1], y[m1], w[m1])
    b2 = _wls(X[m2], y[m2], w[m2])
    x1 = np.average(X[m1], axis=0, weights=w[m1])
    x2 = np.average(X[m2], axis=0, weights=w[m2])
    # pooled model with the group indicator, whose coefficient is then dropped
    ind = (group == g1).astype(float)
    bp = _wls(np.column_stack([X, ind]), y, w)[:-1]
    endow = (x1 - x2) * b2
    coef = x2 * (b1 - b2)
    inter = (x1 - x2) * (b1 - b2)
    expl = (x1 - x2) * bp
    unexpl = x1 * (b1 - bp) + x2 * (bp - b2)
    detail = pl.DataFrame({
        "term": names, "endowment": endow, "coefficient": coef, "interaction": inter,
        "explained": expl, "unexplained": unexpl,
    })
    return OaxacaResult(
        (str(g1), str(g2)), (mean_y(g1), mean_y(g2)),
        float(endow.sum()), float(coef.sum()), float(inter.sum()),
        float(expl.sum()), float(unexpl.sum()), detail,
    )
