"""Diagnostics of an attribution: support, confounding, small cells, agreement.

Every function reads cell arrays or the tidy estimate frame and returns
machine-readable figures plus :class:`~toolkit.attribution.results.Note`
objects written for the analyst.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy import stats

from .cells import CellArrays, Covariate
from .results import COMPONENTS, Note

SMALL_CELL = 10


def positivity(cells: CellArrays) -> tuple[dict, list[Note]]:
    """Strata and (stratum, version) cells one period lacks, and their row shares."""
    n = cells.n
    ns = n.sum(axis=2)
    tot = n.sum(axis=(1, 2))
    one_stratum = (ns > 0) & (ns[::-1] == 0)  # [t, s]: stratum seen in t only
    cell_only = (n > 0) & (n[::-1] == 0)  # [t, s, v]: cell seen in t only
    cell_only_in_shared = cell_only & ~one_stratum[..., None]
    share_strata = [(ns[t] * one_stratum[t]).sum() / tot[t] if tot[t] else 0.0 for t in (0, 1)]
    share_cells = [(n[t] * cell_only_in_shared[t]).sum() / tot[t] if tot[t] else 0.0 for t in (0, 1)]
    vt = n.sum(axis=1) > 0  # [t, v]
    only_b = [cells.versions[j] for j in range(len(cells.versions)) if vt[1, j] and not vt[0, j]]
    only_a = [cells.versions[j] for j in range(len(cells.versions)) if vt[0, j] and not vt[1, j]]
    details = {
        "strata": int((ns.sum(axis=0) > 0).sum()),
        "strata_only_baseline": int(one_stratum[0].sum()),
        "strata_only_comparison": int(one_stratum[1].sum()),
        "row_share_in_one_sided_strata": [float(x) for x in share_strata],
        "cells_only_baseline": int(cell_only_in_shared[0].sum()),
        "cells_only_comparison": int(cell_only_in_shared[1].sum()),
        "row_share_in_one_sided_cells": [float(x) for x in share_cells],
        "versions_only_baseline": only_a,
        "versions_only_comparison": only_b,
    }
    notes: list[Note] = []
    if only_b or only_a:
        parts = []
        if only_b:
            parts.append(f"{', '.join(only_b)} served only in the comparison window")
        if only_a:
            parts.append(f"{', '.join(only_a)} served only in the baseline window")
        notes.append(Note("info", "positivity",
                          f"{'; '.join(parts)}: its behaviour in the other window is unobserved, so it is "
                          "taken to be the same (a resolved version is a fixed artifact); version drift "
                          "carries its share, the residual only reflects cells seen in both windows"))
    if max(share_strata) > 0:
        level = "warning" if max(share_strata) > 0.05 else "info"
        notes.append(Note(level, "positivity",
                          f"{details['strata_only_baseline']} strata have rows only in the baseline and "
                          f"{details['strata_only_comparison']} only in the comparison "
                          f"({100 * share_strata[0]:.1f}% / {100 * share_strata[1]:.1f}% of rows); their "
                          "routing is unobserved in the other window and is held fixed, so they count as "
                          "data drift. Coarser bins or fewer covariates give more support"))
    if max(share_cells) > 0:
        level = "warning" if max(share_cells) > 0.05 else "info"
        notes.append(Note(level, "positivity",
                          f"{details['cells_only_baseline'] + details['cells_only_comparison']} "
                          "(stratum, version) cells are seen in one window only "
                          f"({100 * share_cells[0]:.1f}% / {100 * share_cells[1]:.1f}% of rows): their "
                          "within-cell mean is borrowed from the window that saw them"))
    return details, notes


def cramers_v(table: np.ndarray) -> float:
    """Cramer's V of a contingency table (empty rows and columns dropped)."""
    t = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2:
        return 0.0
    chi2 = stats.chi2_contingency(t, correction=False)[0]
    n = t.sum()
    return float(math.sqrt(chi2 / (n * (min(t.shape) - 1))))


def confounding(cells: CellArrays, covariates: tuple[Covariate, ...]) -> tuple[dict, list[Note]]:
    """How strongly the version depends on the covariates (Cramer's V per period)."""
    out: dict = {"stratum": [], "per_covariate": {}}
    for t in (0, 1):
        out["stratum"].append(cramers_v(cells.n[t]))
    for cov in covariates:
        lv = cells.strata[cov.name].to_numpy()
        levels = sorted(set(lv.tolist()))
        vals = []
        for t in (0, 1):
            tab = np.vstack([cells.n[t][lv == L].sum(axis=0) for L in levels])
            vals.append(cramers_v(tab))
        out["per_covariate"][cov.name] = vals
    notes: list[Note] = []
    strong = {k: max(v) for k, v in out["per_covariate"].items() if max(v) >= 0.3}
    if strong:
        names = ", ".join(f"{k} (V={v:.2f})" for k, v in sorted(strong.items(), key=lambda kv: -kv[1]))
        notes.append(Note("warning", "confounding",
                          f"the version is strongly associated with {names}: a raw comparison of versions "
                          "would mix version and data effects; the methods adjust for these covariates, "
                          "but only within the support they share"))
    elif max(out["stratum"]) > 0:
        notes.append(Note("info", "confounding",
                          f"association of version with the strata: Cramer's V {out['stratum'][0]:.2f} "
                          f"(baseline), {out['stratum'][1]:.2f} (comparison)"))
    return out, notes


def small_cells(cells: CellArrays, threshold: int = SMALL_CELL) -> tuple[dict, list[Note]]:
    """Non-empty cells with fewer than ``threshold`` rows, and their share of rows."""
    n = cells.n
    nz = n > 0
    small = nz & (n < threshold)
    share = float(n[small].sum() / n.sum()) if n.sum() else 0.0
    details = {"threshold": threshold, "cells": int(nz.sum()), "small_cells": int(small.sum()),
               "row_share": share}
    notes: list[Note] = []
    if small.any():
        level = "warning" if share > 0.05 else "info"
        notes.append(Note(level, "small_cells",
                          f"{int(small.sum())} of {int(nz.sum())} cells have fewer than {threshold} rows "
                          f"({100 * share:.1f}% of rows); their means are noisy: use fewer bins or covariates "
                          "if intervals are wide"))
    return details, notes


def binning(covariates: tuple[Covariate, ...], matched: tuple[Covariate, ...] | None) -> tuple[dict, list[Note]]:
    """Bins used for numeric covariates by the stratified methods and by matching."""
    details: dict = {"strata": {}, "matching": {}}
    for c in covariates:
        if c.kind == "numeric":
            details["strata"][c.name] = list(c.edges)
        elif c.kept_levels is not None:
            details["strata"][c.name] = {"kept_levels": list(c.kept_levels)}
    for c in matched or ():
        if c.kind == "numeric":
            details["matching"][c.name] = list(c.edges)
    notes: list[Note] = []
    numeric = [c for c in covariates if c.kind == "numeric"]
    if numeric:
        desc = "; ".join(f"{c.name}: {len(c.edges) + 1} quantile bins" for c in numeric)
        notes.append(Note("info", "binning",
                          f"numeric covariates are binned ({desc}; edges in details). Standardization cannot "
                          "see shifts inside a bin, which then show up as residual; the regression and "
                          "matched methods model the within-bin means and move them to data drift"))
    for c in covariates:
        if c.kept_levels is not None:
            notes.append(Note("info", "binning",
                              f"{c.name} has more than {len(c.kept_levels) + 1} levels: the rarest are "
                              "lumped into '(other)'"))
    return details, notes


def disagreement(frame: pl.DataFrame) -> tuple[list[dict], list[Note]]:
    """Pairs of methods whose intervals for a component do not overlap."""
    rows = []
    methods = frame["method"].unique(maintain_order=True).to_list()
    for comp in COMPONENTS:
        sub = {r["method"]: r for r in frame.filter(pl.col("component") == comp).iter_rows(named=True)}
        for i, a in enumerate(methods):
            for b in methods[i + 1:]:
                ra, rb = sub[a], sub[b]
                if ra["ci_high"] < rb["ci_low"] or rb["ci_high"] < ra["ci_low"]:
                    rows.append({"component": comp, "methods": [a, b],
                                 "estimates": [ra["estimate"], rb["estimate"]]})
    notes = [
        Note("warning", "disagreement",
             f"{r['methods'][0]} and {r['methods'][1]} disagree on {r['component'].replace('_', ' ')} beyond "
             "their intervals: the binning or the support differs between them; prefer the regression when "
             "numeric covariates shift within bins, matching when support is thin")
        for r in rows
    ]
    return rows, notes


def residual_flag(frame: pl.DataFrame, *, is_model_output: bool, level: float = 1.0) -> tuple[dict, list[Note]]:
    """Flag a residual whose interval excludes zero (beyond floating-point noise of ``level``)."""
    tol = 1e-9 * max(1.0, abs(level))
    res = frame.filter(pl.col("component") == "residual")
    flagged = [r["method"] for r in res.iter_rows(named=True) if r["ci_low"] > tol or r["ci_high"] < -tol]
    notes: list[Note] = []
    if flagged:
        if is_model_output:
            notes.append(Note("warning", "residual",
                              f"residual beyond its interval ({', '.join(flagged)}): same resolved version "
                              "behaved differently: possible hidden artifact or preprocessing change (or a "
                              "covariate shift inside bins / an unmeasured input; compare the regression)"))
        else:
            notes.append(Note("info", "residual",
                              f"residual beyond its interval ({', '.join(flagged)}): the relation between "
                              "inputs and outcome changed (concept drift) for the same versions"))
    return {"methods_flagged": flagged}, notes


def headline(label: str, unit: str, scale: float, total: float, frame: pl.DataFrame, method: str,
             level: float = 1.0) -> str:
    """Plain-language headline for one method (``level``: size of the metric, sets the decimals of means)."""
    dec = 1 if unit else int(min(10, max(2, 3 - math.floor(math.log10(abs(level) or 1.0)))))
    tiny = 1e-12 * max(1.0, abs(level) * scale)

    def num(x: float) -> str:
        v = 0.0 if abs(x * scale) < tiny else x * scale
        return f"{v:+.{dec}f}"

    def fmt(x: float) -> str:
        return f"{num(x)} {unit}".rstrip()

    def rng(x: float, lo: float, hi: float) -> str:
        return f"{fmt(x)} [{num(lo)}, {num(hi)}]"

    comp = {r["component"]: r for r in frame.filter(pl.col("method") == method).iter_rows(named=True)}
    word = "drop" if total < 0 else "rise" if total > 0 else "change"
    d, v, r = comp["data_drift"], comp["version_drift"], comp["residual"]
    return (f"Of the {fmt(total)} {word} in {label}, {rng(d['estimate'], d['ci_low'], d['ci_high'])} is data "
            f"drift, {rng(v['estimate'], v['ci_low'], v['ci_high'])} version drift and "
            f"{rng(r['estimate'], r['ci_low'], r['ci_high'])} residual ({method} method, 95% intervals).")
