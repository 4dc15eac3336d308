"""Diagnostics of an attribution: a short ranked list, one line per problem.

:func:`assess` turns the support, routing and agreement figures into
:class:`~toolkit.attribution.results.Note` objects (warnings first, the
largest effect first); :func:`refusal` says when a split cannot be
estimated at all; :func:`headline` writes the one-sentence answer, with the
caveat in front when the support is thin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from .. import formatting as fmt
from ..store.attach.excluded import sentence as excluded_sentence
from .metrics import Metric
from .sums import segment_label
from .results import Level, Note

if TYPE_CHECKING:
    from .estimate import Inputs
    from .design import Design
    from .sums import CellSums

#: Share of the counterfactual traffic resting on the outcome model above which the headline warns.
EXTRAPOLATION_WARN = 0.2
#: ... and above which, with a thin model, the split is refused.
EXTRAPOLATION_REFUSE = 0.5
#: Rows a version's outcome model needs per term before it may carry the counterfactual alone.
ROWS_PER_TERM = 5
#: Standardised difference between a version's served inputs and its cell's inputs that counts as targeting.
SMD_TARGETING = 0.1
Z_TARGETING = 5.0
#: A version's covariate-adjusted mean moving by this many standard errors, and by at least
#: 1 pt (rates) or CHANGE_SHARE of the metric, between the windows counts as a behaviour change.
Z_CHANGE = 5.0
CHANGE_SHARE = 0.02
Z_CHANGE_WARN = 20.0


Ranked = tuple[int, float, Note]


def assess(m: Metric, frame: pl.DataFrame, support: dict, dependence: list, design: Design,
           sums: CellSums, inp: Inputs, observed: tuple[float, float], n_boot: int,
           match_on: list[str], change: list | None = None,
           transport: tuple[Note, float] | None = None) -> tuple[list[Note], dict]:
    """Notes (ranked) and the machine-readable details behind them.

    ``transport``: the transport note and the SD it adds as a share of the
    observed shift (:func:`toolkit.attribution.transport.note`), ranked with
    the others: a warning among the warnings, an info line by its size.
    """
    scale, unit = m.scale(), m.unit
    details: dict = {"support": support, "routing_by": list(inp.routing_by), "cells": list(sums.cells),
                     "versions": list(sums.versions), "matching_covariates": match_on,
                     "terms": [t.name for t in design.terms]}
    ext = support["extrapolated_share"]
    worst = max(ext.values()) if ext else 0.0
    change = change or []
    details["routing_dependence"] = _dependence_details(dependence, design, sums)
    details["behaviour_change"] = [{"cell": sums.regions[r], "version": sums.versions[v], "change": d, "z": z}
                                   for d, z, r, v in change]
    candidates: list[Ranked | None] = [
        _extrapolation_note(support, worst),
        _cells_without_traffic_note(support),
        _routing_dependence_note(dependence, design, sums),
        _behaviour_change_note(change, sums, scale, unit, observed),
    ]
    if n_boot > 1 and len(set(frame["method"])) > 1:
        gaps = _method_gaps(frame)
        details["disagreement"] = [{"component": c, "methods": [a, b], "gap": g} for g, c, a, b in gaps]
        candidates.append(_disagreement_note(gaps, scale, unit, observed))
    details["excluded_rows"] = {"baseline": inp.excluded[0], "comparison": inp.excluded[1]}
    if m.needs_label:  # labels arrive late: how much of each version's traffic is still unlabelled
        details["unlabeled"] = [
            {"window": ("baseline", "comparison")[t], "version": v, "rows": rows, "unlabeled": e,
             "share": e / rows if rows else None}
            for t, v, rows, e in inp.excluded_by_version]
    if inp.attached_excluded is not None:
        details["attached_excluded"] = inp.attached_excluded.as_dict(["baseline", "comparison"])
    candidates += [
        _attached_excluded_note(inp),
        _excluded_rows_note(m, inp),
        _windows_note(inp),
        _exact_note(sums, inp, worst),
        _single_version_note(sums),
        _routing_cells_note(inp),
    ]
    if transport is not None:
        candidates.append((0 if transport[0].level == "warning" else 2, transport[1], transport[0]))
    ranked = [c for c in candidates if c is not None]
    ranked.sort(key=lambda x: (x[0], -x[1]))
    return [n for _, _, n in ranked], details


def _extrapolation_note(support: dict, worst: float) -> Ranked | None:
    """Counterfactual traffic resting on the outcome model rather than on served rows."""
    if not worst > 0:
        return None
    ext = support["extrapolated_share"]
    top = support["extrapolations"][:3]
    where = "; ".join(
        f"{e['version']} did not serve {fmt.share(e['unserved_share'], 0)} of {e['cell']}'s {e['window']} inputs"
        + (f" ({e['outside'][0]['covariate']}: {fmt.share(e['outside'][0]['share'], 0)} of those inputs "
           f"outside the {e['outside'][0]['served_range'][0]:.4g}..{e['outside'][0]['served_range'][1]:.4g} "
           f"{e['version']} served)" if e["outside"] else "")
        for e in top)
    level: Level = "warning" if worst > EXTRAPOLATION_WARN or any(e["outside"] for e in top) else "info"
    per = ", ".join(f"{k} {fmt.share(v, 0)}" for k, v in ext.items())
    return (0 if level == "warning" else 2, worst, Note(
        level, "extrapolation",
        f"{per} of the counterfactual traffic rests on the outcome model, not on served rows: {where}. "
        "Trust the split as far as the model carries it; the methods' spread shows how far"))


def _cells_without_traffic_note(support: dict) -> Ranked | None:
    """Routing cells with no traffic in one of the windows."""
    if not support["cells_without_traffic"]:
        return None
    cells = ", ".join(f"{c['cell']} ({c['window']})" for c in support["cells_without_traffic"][:4])
    share = max(c["share_other_window"] for c in support["cells_without_traffic"])
    return (0 if share > 0.05 else 2, share, Note(
        "warning" if share > 0.05 else "info", "cells_without_traffic",
        f"routing cells with no traffic in one window: {cells}; their routing is unobserved there and is "
        "held fixed, so they add no version drift"))


def _dependence_details(dependence: list, design: Design, sums: CellSums) -> list[dict]:
    return [
        {"smd": d[0], "z": d[1], "window": ["baseline", "comparison"][d[2]], "cell": segment_label(sums.cells[d[3]]),
         "version": sums.versions[d[4]], "term": design.terms[d[5]].name} for d in dependence]


def _routing_dependence_note(dependence: list, design: Design, sums: CellSums) -> Ranked | None:
    """Served rows that differ from their cell's inputs: routing seems to depend on the inputs."""
    sig = [d for d in dependence if abs(d[0]) > SMD_TARGETING and abs(d[1]) > Z_TARGETING]
    if not sig:
        return None
    d = max(sig, key=lambda x: abs(x[0]))
    return (0, abs(d[0]), Note(
        "warning", "routing_dependence",
        f"inside routing cell {segment_label(sums.cells[d[3]])} ({['baseline', 'comparison'][d[2]]}), the rows "
        f"{sums.versions[d[4]]} served differ from the cell's inputs in {design.terms[d[5]].name} "
        f"(standardised difference {d[0]:+.2f}, {len(sig)} such cases): routing seems to depend on the "
        "inputs; if the deployment routes by a segment column, add it with --routing-by"))


def _behaviour_change_note(change: list, sums: CellSums, scale: float, unit: str,
                           observed: tuple[float, float]) -> Ranked | None:
    """The same resolved version behaving differently on comparable inputs."""
    flagged = [c for c in change if abs(c[1]) > Z_CHANGE and abs(c[0]) * scale >= (1.0 if unit else 0.0)
               and abs(c[0]) > CHANGE_SHARE * max(abs(observed[0]), abs(observed[1]), 1e-12)]
    if not flagged:
        return None
    d, z, r, v = max(flagged, key=lambda c: abs(c[0]))
    # a misspecified outcome model moves the residuals of a drifting input too (z of 8-10 seen on
    # the demo and a real case with no hidden change): only a very clear change is a warning
    strong = abs(z) > Z_CHANGE_WARN
    return (0 if strong else 2, abs(d), Note(
        "warning" if strong else "info", "behaviour_change",
        f"same resolved version behaved differently: {sums.versions[v]} in {sums.regions[r]} gives "
        f"{fmt.effect(d, scale=scale, unit=unit, observed=observed)} on comparable inputs in the comparison "
        f"window (z = {z:.1f}, "
        f"{len(flagged)} such pairs); possible hidden artifact or preprocessing change. The split books it "
        "as data drift; check the artifact and feature pipeline of that version"))


def _method_gaps(frame: pl.DataFrame) -> list[tuple[float, str, str, str]]:
    """Pairs of methods whose estimates differ by more than their combined half-intervals."""
    gaps = []
    for comp in ("data_drift", "version_drift"):
        sub = frame.filter(pl.col("component") == comp)
        est = dict(zip(sub["method"], sub["estimate"], strict=False))
        half = dict(zip(sub["method"], (sub["ci_high"] - sub["ci_low"]) / 2, strict=False))
        names = list(est)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                gap = abs(est[a] - est[b])
                if gap > np.hypot(half[a], half[b]):
                    gaps.append((gap, comp, a, b))
    return gaps


def _disagreement_note(gaps: list[tuple[float, str, str, str]], scale: float, unit: str,
                       observed: tuple[float, float]) -> Ranked | None:
    """The methods disagreeing beyond their intervals."""
    if not gaps:
        return None
    g, comp, a, b = max(gaps)
    comps = sorted({c for _, c, _, _ in gaps})
    return (1, g, Note(
        "warning", "disagreement",
        f"the methods disagree beyond their intervals on {' and '.join(c.replace('_', ' ') for c in comps)} "
        f"(largest: {comp.replace('_', ' ')}, {a} vs {b}, "
        f"{fmt.effect(g, scale=scale, unit=unit, observed=observed)} apart): "
        "the covariates do not explain the inputs' shift well enough for all three; the regression "
        "split uses the most of them"))


def _attached_excluded_note(inp: Inputs) -> Ranked | None:
    """Rows of an attached source that are not valid: left out of the windows, never silently."""
    ex = inp.attached_excluded
    if ex is None or not ex.total:
        return None
    return (1, float(ex.total), Note("warning", "attached_excluded", excluded_sentence(ex, "the attribution")))


def _excluded_rows_note(m: Metric, inp: Inputs) -> Ranked | None:
    """Rows left out (unlabelled or otherwise excluded by the metric)."""
    n_excl = inp.excluded
    if not sum(n_excl):
        return None
    what = m.excluded_reason
    text = f"{n_excl[0]:,} baseline and {n_excl[1]:,} comparison rows {what} and are not counted"
    if m.needs_label:
        text += "; still unlabelled: " + "; ".join(
            f"{name} " + ", ".join(f"{v} {fmt.share(e / rows, 0)} of {rows:,}"
                                   for tt, v, rows, e in inp.excluded_by_version if tt == t and rows)
            for t, name in ((0, "baseline"), (1, "comparison")))
    return (1 if m.needs_label else 2, float(sum(n_excl)), Note(
        "warning" if m.needs_label else "info", "excluded_rows", text))


def _windows_note(inp: Inputs) -> Ranked | None:
    """Overlapping windows."""
    A, B = inp.sel.baseline, inp.sel.comparison
    if not (A.start < B.end and B.start < A.end):
        return None
    return (1, 1.0, Note("warning", "windows", f"the windows {A} and {B} overlap: rows in the overlap count in both"))


def _exact_note(sums: CellSums, inp: Inputs, worst: float) -> Ranked | None:
    """One version per routing cell at a time and nothing modelled: the split is exact."""
    per_cell = (sums.n.sum(axis=-1) > 0).sum(axis=2)
    if not (per_cell.max(initial=0) <= 1 and worst == 0 and inp.sel is not None):
        return None
    return (2, 0.0, Note(
        "info", "exact",
        "every routing cell was served by one version at a time and no behaviour had to be modelled: the "
        "split is exact for this traffic (conditional intervals then have no width); --interval population "
        "gives the uncertainty about the inputs behind it"))


def _single_version_note(sums: CellSums) -> Ranked | None:
    if len(sums.versions) != 1:
        return None
    return (2, 0.0, Note("info", "single_version",
                         f"all traffic was served by {sums.versions[0]}: version drift is zero by construction"))


def _routing_cells_note(inp: Inputs) -> Ranked | None:
    if inp.routing_by:
        return None
    return (2, 0.0, Note("info", "routing_cells",
                         "the rows carry no region: all traffic is one routing cell (add the scope "
                         "column with --routing-by if the deployments route by another column)"))


def refusal(support: dict, methods: tuple[str, ...]) -> str | None:
    """A message when the counterfactual rests mostly on models fitted on too few rows."""
    thin = []
    for e in support["extrapolations"]:
        rows = support["model_rows"].get(e["version"], 0)
        thin.append((e, rows))
    ext = max(support["extrapolated_share"].values()) if support["extrapolated_share"] else 0.0
    if ext <= EXTRAPOLATION_REFUSE:
        return None
    n_terms = max(1, int(support.get("n_terms", 1)))
    bad = [(e, r) for e, r in thin if r < max(50, ROWS_PER_TERM * n_terms)]
    if not bad:
        return None
    e, r = bad[0]
    return (f"cannot split this shift: {fmt.share(ext, 0)} of the counterfactual traffic needs {e['version']}'s "
            f"behaviour on inputs it never served ({e['cell']}, {e['window']} window), and its outcome model "
            f"rests on {r} rows; give fewer covariates (--covariates) or windows in which {e['version']} served "
            "the same routing cells")


def headline(m: Metric, frame: pl.DataFrame, method: str, observed: tuple[float, float], level: float,
             notes: list[Note]) -> str:
    """One sentence for the primary method, with the support caveat first when it matters."""
    comp = {r["component"]: r for r in frame.filter(pl.col("method") == method).iter_rows(named=True)}
    total = observed[1] - observed[0]
    word = "drop" if total < 0 else "rise" if total > 0 else "change"
    show = fmt.Display(m.scale(), m.unit, observed)

    def rng(c: str) -> str:
        r = comp[c]
        return show.estimate(r["estimate"], r["ci_low"], r["ci_high"])

    text = (f"Of the {show.effect(total)} {word} in {m.label}, {rng('data_drift')} is data "
            f"drift, {rng('version_drift')} version drift and {rng('residual')} residual "
            f"({method} method, {fmt.level_label(level)} intervals).")
    caveat = [n for n in notes if n.level == "warning" and n.code in ("extrapolation", "routing_dependence",
                                                                        "cells_without_traffic")]
    if caveat:
        text = "CAUTION, thin support: " + caveat[0].message.split(":")[0] + ". " + text
    return text
