"""Matched-cohort method: coarsened exact matching (CEM) between the periods.

Coarsening: numeric covariates are cut into bins whose number follows
Sturges' rule on the pooled rows (the R ``cem`` package's default), capped at
10 and lowered until strata average 20 rows per period, with quantile edges rather than cem's equal widths (metrics logs are
heavy-tailed, and equal widths then leave almost every row in one bin),
unless the user gives edges; categorical covariates are kept as they are.
A CEM stratum is matched when both periods have rows in it. Within matched
strata, data drift compares the period compositions (CEM weights), routing
and within-cell means are compared version by version; a (stratum, version)
cell seen in one period only cannot be compared and keeps its own
period's mean. Unmatched strata (support in one period only) are pure
composition change: their share is reported and it enters the data drift,
never dropped silently.

Numeric covariates still vary inside a CEM bin; as recommended after CEM
(Iacus, King and Porro 2012), the remaining imbalance inside strata is
adjusted by a model: the same regression-adjusted standardization as the
regression method (:mod:`toolkit.attribution.regression`), with main
effects only, fitted on the CEM cells.

Balance between the periods is reported before and after matching:
standardized mean differences, variance ratios (numeric covariates and each
level of a categorical one) and the multivariate L1 imbalance of Iacus, King
and Porro (2012) on the CEM grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .cells import CellArrays, Covariate
from .decompose import Factors, cell_factors


def sturges_bins(n_rows: int, max_bins: int = 20) -> int:
    """Number of equal-width bins by Sturges' rule, ``ceil(log2 n) + 1``, capped."""
    if n_rows <= 1:
        return 1
    return int(min(max_bins, math.ceil(math.log2(n_rows)) + 1))


@dataclass(frozen=True)
class MatchInfo:
    """What matching kept and how balanced the periods are.

    Attributes
    ----------
    strata_total, strata_matched
        CEM strata with any rows, and with rows in both periods.
    rows_total, rows_matched
        Rows per period (baseline, comparison) in all / matched strata.
    cells_unmatched
        Number of (stratum, version) cells seen in one period only, and
        their rows per period.
    l1_before, l1_after
        Multivariate L1 imbalance on the CEM grid before matching and after
        (CEM weights on matched strata; zero on the grid by construction).
    balance
        Tidy frame: covariate, level, stage (before/after), mean_baseline,
        mean_comparison, smd, variance_ratio.
    """

    strata_total: int
    strata_matched: int
    rows_total: tuple[int, int]
    rows_matched: tuple[int, int]
    cells_unmatched: int
    cells_unmatched_rows: tuple[int, int]
    l1_before: float
    l1_after: float
    balance: pl.DataFrame = field(repr=False)

    def to_dict(self) -> dict:
        return {
            "strata_total": self.strata_total, "strata_matched": self.strata_matched,
            "rows_total": list(self.rows_total), "rows_matched": list(self.rows_matched),
            "cells_unmatched": self.cells_unmatched, "cells_unmatched_rows": list(self.cells_unmatched_rows),
            "l1_before": self.l1_before, "l1_after": self.l1_after,
        }


def _wstats(w: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> tuple[float, float]:
    """Weighted mean and variance from per-stratum weights, sums and sums of squares."""
    n = float(np.sum(w))
    if n <= 0:
        return float("nan"), float("nan")
    m = float(np.sum(s1) / n)
    return m, max(float(np.sum(s2) / n) - m * m, 0.0)


def _smd(m0: float, v0: float, m1: float, v1: float) -> tuple[float, float]:
    pooled = math.sqrt((v0 + v1) / 2) if (v0 + v1) > 0 else 0.0
    smd = (m1 - m0) / pooled if pooled > 0 else (0.0 if m1 == m0 else float("inf"))
    ratio = v1 / v0 if v0 > 0 else (1.0 if v1 == 0 else float("inf"))
    return smd, ratio


def match(cells: CellArrays, covariates: tuple[Covariate, ...]) -> MatchInfo:
    """Match the periods on the CEM grid of ``cells`` and measure balance."""
    ns = cells.n.sum(axis=2)  # (2, S)
    has = ns > 0
    matched = has[0] & has[1]
    any_rows = has[0] | has[1]
    tot = ns.sum(axis=1)
    mrows = (ns * matched).sum(axis=1)
    one_sided = (cells.n > 0) != (cells.n[::-1] > 0)
    cu = one_sided[0] | one_sided[1]
    cu_rows = tuple(int(x) for x in (cells.n * cu[None]).sum(axis=(1, 2)))
    p = np.divide(ns, tot[:, None], out=np.zeros_like(ns), where=tot[:, None] > 0)
    l1_before = 0.5 * float(np.abs(p[0] - p[1]).sum())
    # CEM weights: baseline rows of a matched stratum reweighted to the comparison composition
    pm = np.divide(ns * matched, mrows[:, None], out=np.zeros_like(ns), where=mrows[:, None] > 0)
    w = np.divide(pm[1], pm[0], out=np.zeros_like(pm[0]), where=pm[0] > 0)
    wA = ns[0] * w  # effective baseline rows per stratum after weighting
    wB = ns[1] * matched
    l1_after = 0.5 * float(np.abs(np.divide(wA, wA.sum() or 1) - np.divide(wB, wB.sum() or 1)).sum())

    rows = []
    for k, name in enumerate(cells.numeric):
        sx = cells.sx[..., k].sum(axis=2)
        sxx = cells.sxx[..., k].sum(axis=2)
        for stage, wa, wb, ma, mb in (
            ("before", ns[0], ns[1], np.ones_like(w), np.ones_like(w)),
            ("after", wA, wB, w, matched.astype(float)),
        ):
            m0, v0 = _wstats(wa, sx[0] * ma, sxx[0] * ma)
            m1, v1 = _wstats(wb, sx[1] * mb, sxx[1] * mb)
            smd, ratio = _smd(m0, v0, m1, v1)
            rows.append((name, None, stage, m0, m1, smd, ratio))
    for cov in covariates:
        if cov.kind != "categorical":
            continue
        lv = cells.strata[cov.name].to_numpy()
        for level in sorted(set(lv.tolist())):
            ind = (lv == level).astype(float)
            for stage, wa, wb in (("before", ns[0], ns[1]), ("after", wA, wB)):
                m0, v0 = _wstats(wa, wa * ind, wa * ind)
                m1, v1 = _wstats(wb, wb * ind, wb * ind)
                smd, ratio = _smd(m0, v0, m1, v1)
                rows.append((cov.name, str(level), stage, m0, m1, smd, ratio))
    balance = pl.DataFrame(
        rows,
        schema={"covariate": pl.String, "level": pl.String, "stage": pl.String, "mean_baseline": pl.Float64,
                "mean_comparison": pl.Float64, "smd": pl.Float64, "variance_ratio": pl.Float64},
        orient="row",
    )
    return MatchInfo(
        int(any_rows.sum()), int(matched.sum()), (int(tot[0]), int(tot[1])), (int(mrows[0]), int(mrows[1])),
        int(cu.sum()), (cu_rows[0], cu_rows[1]), l1_before, l1_after, balance,
    )


def matched_factors(cells: CellArrays) -> Factors:
    """Factors of the matched method on the CEM grid without numeric covariates.

    Composition over all strata (unmatched strata are composition change),
    routing and within-cell means compared within matched strata; cells and
    strata one period lacks keep the other period's routing and mean, so
    they contribute nothing to version drift or residual.
    """
    return cell_factors(cells.n, cells.sy)
