"""The estimand on routing cells, and its three estimators.

Notation (docs/methods.md): periods ``a, b, c`` in {0 baseline, 1
comparison}, routing cells ``r`` (the deployment scope: which version
answers is decided there, independently of the request's inputs), resolved
versions ``v``.

    M(a, b, c) = sum_r w_a(r) sum_v Pi_b(v | r) mu_c(a, r, v)

``w_a(r)`` is the share of period a's rows in cell r, ``Pi_b(v | r)`` the
share of cell r's rows of period b that v served, and ``mu_c(a, r, v)`` the
mean metric version v would give (with period c's behaviour) on period a's
inputs in cell r. Data drift, version drift and the mechanism effect are the
Shapley values of switching a, b and c from 0 to 1.

Within a routing cell the rows v served are a random sample of the cell's
inputs, so where v served (a, r) their mean estimates ``mu_a(a, r, v)``
without a model. The three methods differ in how they fill the rest:

* ``regression``: a linear outcome model per version and routing cell (all
  rows the version served, both periods for a model output, per period for
  an outcome metric; each cell's slopes shrunk towards the version's pooled
  ones), evaluated on the cell's mean design vector, plus the mean residual
  of the version's own rows in the same cell (augmented, doubly robust);
* ``matched``: the version's rows in the same matching stratum (bins of the
  covariates that moved most) of the same routing cell, from the same period
  if any, else the other period, else any cell, bias-corrected by the model
  for the imbalance left inside the stratum; the model alone only for strata
  the version never served;
* ``standardization``: Das Gupta's rates per (cell, version), raw where the
  version's rows are balanced on the covariates against the cell's inputs,
  covariate-adjusted where they are not (routing that followed time while
  the inputs trended); a rate the period lacks comes from the outcome model.

Every estimator works on the additive sums of :mod:`toolkit.attribution.sums`;
the outcome models they evaluate are fitted by :mod:`toolkit.attribution.models`.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

from .sums import CellSums

#: The data-drift part the shift of the traffic between routing cells carries.
ROUTING_MIX_PART = "routing cell mix"

#: The data-drift part no single covariate's shift explains (interactions, non-linearity, the models' carried error).
UNEXPLAINED_PART = "not explained by single covariates"

#: Shapley weight of each (routing state, mechanism state) pair in the data effect.
DATA_WEIGHTS = {(0, 0): 1 / 3, (1, 0): 1 / 6, (0, 1): 1 / 6, (1, 1): 1 / 3}


def add_up(out: np.ndarray, parent: np.ndarray, x: np.ndarray) -> None:
    """``out[:, parent[j]] += x[:, j]`` for every fine cell ``j`` (the fine cells of a parent add up)."""
    for i in range(out.shape[0]):
        np.add.at(out[i], parent, x[i])


def _cell_beta(beta: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """beta[c, v, r, :] of each fine cell's routing cell -> [c, v, k, :]."""
    return beta[:, :, parent]


@dataclass(frozen=True)
class Cells:
    """The sums of one replicate reduced over groups: served side and input side.

    ``N, SY, SZ`` are per (t, r, v) (the rows each version served);
    ``Nin, Zin`` per (t, r) (every input of the cell: held fixed by the
    conditional bootstrap). The matched method's stratum sums carry an
    extra axis ``s`` after ``v``.
    """

    N: np.ndarray
    SY: np.ndarray
    SZ: np.ndarray
    Nin: np.ndarray
    Zin: np.ndarray
    parent: np.ndarray
    Ns: np.ndarray | None = None
    SYs: np.ndarray | None = None
    SZs: np.ndarray | None = None
    Nsin: np.ndarray | None = None
    Zsin: np.ndarray | None = None

    @property
    def w(self) -> np.ndarray:
        """w[a, r]: each cell's share of window a's inputs."""
        tot = self.Nin.sum(axis=1, keepdims=True)
        return np.divide(self.Nin, tot, out=np.zeros_like(self.Nin), where=tot > 0)

    @property
    def zall(self) -> np.ndarray:
        """The mean design vector of each cell's inputs, per window."""
        return _div(self.Zin, self.Nin[..., None])

    @property
    def n_regions(self) -> int:
        """Number of routing cells."""
        return int(self.parent.max()) + 1 if len(self.parent) else 0

    def up(self, a: np.ndarray) -> np.ndarray:
        """Sum a fine-cell array (cell on axis 1) into its routing cells."""
        out = np.zeros(a.shape[:1] + (self.n_regions,) + a.shape[2:])
        add_up(out, self.parent, a)
        return out

    def regional(self) -> Cells:
        """The same sums on the routing cells (segments merged)."""
        R = self.n_regions
        return Cells(self.up(self.N), self.up(self.SY), self.up(self.SZ), self.up(self.Nin), self.up(self.Zin),
                     np.arange(R))

    def routing(self) -> tuple[np.ndarray, np.ndarray]:
        """Pi[b, k, v] of each fine cell's routing cell, and where period b had no row in a routing cell.

        Routing is compared between the windows at the routing cell (the
        scope); a routing cell one window lacks keeps the other's routing.
        """
        Nr = self.up(self.N)
        tot = Nr.sum(axis=2, keepdims=True)
        Pi = _div(Nr, tot)
        missing = tot[..., 0] == 0
        for b in (0, 1):
            rows = missing[b] & ~missing[1 - b]
            Pi[b, rows] = Pi[1 - b, rows]
        return Pi[:, self.parent], (missing & ~missing[::-1])

    def observed(self) -> tuple[float, float]:
        """The metric of each window: cell means weighted by the cells' (input) shares.

        Equal to the plain mean of the rows when nothing is reweighted; in a
        conditional replicate the cells keep their inputs' shares.
        """
        cell_mean = _div(self.SY.sum(axis=2), self.N.sum(axis=2))
        m = (self.w * cell_mean).sum(axis=1)
        return float(m[0]), float(m[1])


def reduce(sums: CellSums, weights: np.ndarray | None, msums: CellSums | None,
           input_weights: np.ndarray | None) -> Cells:
    """Weighted sums over the replicate groups (``weights`` of shape (t, r, v, g) or None)."""
    def red(a: np.ndarray, w: np.ndarray | None, strata: bool) -> np.ndarray:
        if w is None:
            return a.sum(axis=-1) if a.ndim == (5 if strata else 4) else a.sum(axis=-2)
        if strata:
            ww = w[:, :, :, None, :]
        else:
            ww = w
        if a.ndim == ww.ndim:
            return (a * ww).sum(axis=-1)
        return (a * ww[..., None]).sum(axis=-2)

    N, SY, SZ = red(sums.n, weights, False), red(sums.sy, weights, False), red(sums.sz, weights, False)
    Nin = red(sums.n, input_weights, False).sum(axis=2)
    Zin = red(sums.sz, input_weights, False).sum(axis=2)
    parent = sums.parent
    if msums is None:
        return Cells(N, SY, SZ, Nin, Zin, parent)
    Ns, SYs, SZs = red(msums.n, weights, True), red(msums.sy, weights, True), red(msums.sz, weights, True)
    Nsin = red(msums.n, input_weights, True).sum(axis=2)
    Zsin = red(msums.sz, input_weights, True).sum(axis=2)
    return Cells(N, SY, SZ, Nin, Zin, parent, Ns, SYs, SZs, Nsin, Zsin)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape)), where=b > 0)


@dataclass(frozen=True)
class Fill:
    """``mu[c, a, r, v]`` and ``model[c, a, r, v]``, the share of it resting on the outcome model."""

    mu: np.ndarray
    model: np.ndarray


def _predict(beta: np.ndarray, z: np.ndarray) -> np.ndarray:
    """beta[c, v, k, :] . [1, z[a, k, :]] -> [c, a, k, v]."""
    return np.einsum("cvkp,akp->cakv", beta[..., 1:], z) + np.moveaxis(beta[..., 0], 1, 2)[:, None]


def regression_fill(cells: Cells, beta: np.ndarray, *, model_output: bool) -> Fill:
    """Outcome model on the cell's inputs plus the mean residual of the version's own rows.

    The residual comes from the version's rows in the same segment when it
    served it, else from its rows in the other segments of the routing cell
    (same window), else in the routing cell in the other window (model
    outputs only: a version is the same function in both), else none.
    """
    bk = _cell_beta(beta, cells.parent)                      # [c, v, k, p+1]
    pred = _predict(bk, cells.zall)                          # [c, a, k, v]
    fit_sum = (np.einsum("cvkp,tkvp->ctkv", bk[..., 1:], cells.SZ)
               + np.moveaxis(bk[..., 0], 1, 2)[:, None] * cells.N[None])
    res_sum = cells.SY[None] - fit_sum                       # [c, t, k, v]: sum of residuals
    resid = _div(res_sum, cells.N[None])
    res_reg = _div(cells.up(res_sum.reshape((-1,) + res_sum.shape[2:])).reshape(
        res_sum.shape[:2] + (cells.n_regions,) + res_sum.shape[3:]), cells.up(cells.N)[None])
    n_reg = cells.up(cells.N)
    served = cells.N > 0
    reg_served = (n_reg > 0)[:, cells.parent]                # [t, k, v]
    res_reg_k = res_reg[:, :, cells.parent]                  # [c, t, k, v]
    corr = np.zeros_like(pred)
    model = np.zeros_like(pred)
    for c, a in itertools.product((0, 1), repeat=2):
        if model_output or c == a:
            alt = (np.where(reg_served[1 - a], res_reg_k[c, 1 - a], 0.0) if model_output
                   else np.zeros_like(resid[c, a]))
            corr[c, a] = np.where(served[a], resid[c, a], np.where(reg_served[a], res_reg_k[c, a], alt))
        else:
            corr[c, a] = np.where(reg_served[c], res_reg_k[c, c], 0.0)
        model[c, a] = (~served[a]).astype(float)
    return Fill(pred + corr, model)


def standardization_fill(cells: Cells, fallback: Fill, *, model_output: bool,
                         adjust: np.ndarray | None = None) -> Fill:
    """Das Gupta rates per (segment, version), with gaps filled without a model.

    ``adjust[t, k, v]`` marks served rates that are not the version's rate
    on the cell's inputs because its rows are not a random share of them
    (routing that followed time while the inputs trended, see
    :func:`imbalanced`): those take the covariate-adjusted rate of
    ``fallback`` (the regression's) instead of the raw one.

    A version missing from a segment gets its rate over the routing cell's
    segments it served plus the segment's offset shared by the versions
    serving both; a version missing from the routing cell in a window gets
    the outcome model's rate (``fallback``). An earlier model-free fill, the
    other window's rate plus the change the versions serving both windows
    share (parallel drift), was 0.5-0.9 pt off on the real-data cases:
    versions respond differently to a large input shift.
    """
    if adjust is not None and adjust.any():
        own = np.stack([fallback.mu[t, t] for t in (0, 1)]) * cells.N
        cells = dataclasses.replace(cells, SY=np.where(adjust, own, cells.SY))
    reg = cells.regional()
    rate_r = _div(reg.SY, reg.N)                              # [t, R, v]
    served_r = reg.N > 0
    R, V = rate_r.shape[1:]
    fb_r = np.zeros((2, R, V))
    add_up(fb_r, cells.parent, fallback.mu[[0, 1], [0, 1]] * cells.w[..., None])
    wr = reg.w
    fb_r = _div(fb_r, wr[..., None])
    full_r = np.zeros((2, R, V))
    model_r = np.zeros((2, R, V))
    for t in (0, 1):
        full_r[t] = np.where(served_r[t], rate_r[t], fb_r[t])
        model_r[t] = (~served_r[t]).astype(float)
    rate = _div(cells.SY, cells.N)                            # [t, k, v]
    served = cells.N > 0
    K = rate.shape[1]
    full = np.zeros((2, K, V))
    used_model = np.zeros((2, K, V))
    for t in (0, 1):
        base = full_r[t][cells.parent]                        # [k, v]
        both = served[t] & served_r[t][cells.parent]
        omega = np.where(both, cells.N[t], 0.0)
        off = _div((omega * (rate[t] - base)).sum(axis=1), omega.sum(axis=1))
        full[t] = np.where(served[t], rate[t], base + off[:, None])
        used_model[t] = np.where(served[t], 0.0, model_r[t][cells.parent])
    mu = np.zeros((2, 2, K, V))
    model = np.zeros((2, 2, K, V))
    for c, a in itertools.product((0, 1), repeat=2):
        src = a if model_output else c
        if model_output or c == a:
            mu[c, a], model[c, a] = full[src], used_model[src]
        else:
            # another window's behaviour on this segment's inputs: its routing cell rate, no within-cell adjustment
            mu[c, a], model[c, a] = full_r[src][cells.parent], model_r[src][cells.parent]
    return Fill(mu, model)


def matched_fill(cells: Cells, beta: np.ndarray, *, model_output: bool) -> Fill:
    """Bias-corrected cohort means inside each segment; the model alone only for strata never served.

    In each matching stratum the cohort is the version's rows in the same
    segment, else the routing cell's other segments, else (model outputs)
    the routing cell in the other window, else any cell of the window. The
    cohort's mean is corrected by the outcome model for what still differs
    between the cohort's inputs and the stratum's (Abadie and Imbens' bias
    correction of matching): coarse strata then leave no imbalance behind.
    """
    assert cells.Ns is not None and cells.SYs is not None and cells.Nsin is not None and cells.Zsin is not None
    assert cells.SZs is not None
    Ns, SYs, SZs = cells.Ns, cells.SYs, cells.SZs            # [t, k, v, s], SZs [t, k, v, s, p]
    ws = _div(cells.Nsin, cells.Nin[..., None])              # [a, k, s]
    zs = _div(cells.Zsin, cells.Nsin[..., None])             # [a, k, s, p]
    ybar = _div(SYs, Ns)
    zbar = _div(SZs, Ns[..., None])
    n_reg, sy_reg = cells.up(Ns), cells.up(SYs)              # [t, R, v, s]
    y_reg = _div(sy_reg, n_reg)[:, cells.parent]
    z_reg = _div(cells.up(SZs), n_reg[..., None])[:, cells.parent]
    n_reg_k = n_reg[:, cells.parent]
    any_cell = Ns.sum(axis=1)                                # [t, v, s]
    ybar_any = _div(SYs.sum(axis=1), any_cell)
    z_any = _div(SZs.sum(axis=1), any_cell[..., None])
    bk = _cell_beta(beta, cells.parent)
    slope = bk[..., 1:]                                      # [c, v, k, p]
    pred = (np.einsum("cvkp,aksp->cakvs", slope, zs)
            + np.moveaxis(bk[..., 0], 1, 2)[:, None, :, :, None])
    K, V, S = Ns.shape[1:]
    mu = np.zeros((2, 2, K, V))
    model = np.zeros((2, 2, K, V))
    for c, a in itertools.product((0, 1), repeat=2):
        if model_output:
            order = [(a, "seg"), (a, "reg"), (1 - a, "reg"), (a, "any"), (1 - a, "any")]
        elif c == a:
            order = [(a, "seg"), (a, "reg"), (a, "any")]
        else:
            order = [(c, "reg"), (c, "any")]
        m = pred[c, a].copy()
        filled = np.zeros((K, V, S), dtype=bool)
        target = np.einsum("vkp,ksp->kvs", slope[c], zs[a])
        for t, level in order:
            if level == "seg":
                avail, val, zc = Ns[t] > 0, ybar[t], zbar[t]
            elif level == "reg":
                avail, val, zc = n_reg_k[t] > 0, y_reg[t], z_reg[t]
            else:
                avail = np.broadcast_to(any_cell[t][None] > 0, (K, V, S))
                val = np.broadcast_to(ybar_any[t][None], (K, V, S))
                zc = np.broadcast_to(z_any[t][None], (K,) + z_any.shape[1:])
            corrected = val + target - np.einsum("vkp,kvsp->kvs", slope[c], zc)
            take = avail & ~filled
            m = np.where(take, corrected, m)
            filled |= take
        mu[c, a] = np.einsum("ks,kvs->kv", ws[a], m)
        model[c, a] = np.einsum("ks,kvs->kv", ws[a], (~filled).astype(float))
    return Fill(mu, model)


def regionalize(cells: Cells, fill: Fill) -> Fill:
    """Fine-cell ``mu`` averaged over each routing cell's segments by their share of its inputs."""
    w = cells.w                                               # [a, k]
    wr = cells.up(w)                                          # [a, R]
    share = _div(w, wr[:, cells.parent])                      # [a, k]: w(k | R)
    R = cells.n_regions
    out = []
    for x in (fill.mu, fill.model):
        y = np.zeros(x.shape[:2] + (R,) + x.shape[3:])
        for a in (0, 1):
            add_up(y[:, a], cells.parent, x[:, a] * share[a][None, :, None])
        out.append(y)
    return Fill(out[0], out[1])


def m_table(cells: Cells, fill: Fill) -> np.ndarray:
    """M[a, b, c] for all eight combinations."""
    Pi, _ = cells.routing()
    w = cells.w
    out = np.empty((2, 2, 2))
    for a, b, c in itertools.product((0, 1), repeat=3):
        out[a, b, c] = float(np.einsum("r,rv,rv->", w[a], Pi[b], fill.mu[c, a]))
    return out


def extrapolated_weight(cells: Cells, fill: Fill) -> float:
    """Share of the counterfactual traffic (M(A,B) and M(B,A)) whose behaviour rests on the model."""
    Pi, _ = cells.routing()
    w = cells.w
    tot = 0.0
    for a in (0, 1):
        b = 1 - a
        tot += float(np.einsum("r,rv,rv->", w[a], Pi[b], fill.model[a, a]))
    return tot / 2


def data_drift_parts(cells: Cells, fill: Fill, beta: np.ndarray, groups: dict[str, list[int]]) -> dict[str, float]:
    """Exact split of the regression's data drift: routing-cell mix, each covariate, the rest.

    ``M(1,b,c) - M(0,b,c) = sum_r sum_v Pi_b(v|r) [(w_1 - w_0) mean(mu) + mean(w) (mu_1 - mu_0)]``
    and ``mu_1 - mu_0 = beta_v . (zbar_1,r - zbar_0,r) + (residual terms)``: the first
    term is the routing-cell mix, the model term splits by covariate, the
    residual terms are what no single covariate's shift explains.
    """
    Pi, _ = cells.routing()
    w = cells.w
    dz = cells.zall[1] - cells.zall[0]                       # [r, p]
    wbar = (w[0] + w[1]) / 2
    out = {ROUTING_MIX_PART: 0.0, **{g: 0.0 for g in groups}}
    total = 0.0
    for (b, c), om in DATA_WEIGHTS.items():
        mu0, mu1 = fill.mu[c, 0], fill.mu[c, 1]
        total += om * float(np.einsum("rv,rv->", Pi[b], w[1][:, None] * mu1 - w[0][:, None] * mu0))
        out[ROUTING_MIX_PART] += om * float(np.einsum("r,rv,rv->", w[1] - w[0], Pi[b], (mu0 + mu1) / 2))
        for g, idx in groups.items():
            contrib = np.einsum("vrp,rp->rv", beta[c][:, :, [1 + j for j in idx]], dz[:, idx])
            out[g] += om * float(np.einsum("r,rv,rv->", wbar, Pi[b], contrib))
    out[UNEXPLAINED_PART] = total - sum(out.values())
    return out


def routing_dependence(cells: Cells, sd: np.ndarray,
                       min_rows: int = 30) -> list[tuple[float, float, int, int, int, int]]:
    """Standardised differences between a version's served inputs and its cell's inputs.

    Returns (smd, z, t, r, v, term) for every served (t, r, v) with at least
    ``min_rows`` rows in a cell several versions share.
    """
    Pi = _div(cells.N, cells.N.sum(axis=2, keepdims=True))   # shares inside the segment
    zv = _div(cells.SZ, cells.N[..., None])
    out = []
    for t, r, v in zip(*np.nonzero(cells.N >= min_rows), strict=False):
        if (cells.N[t, r] > 0).sum() < 2 or Pi[t, r, v] >= 1:
            continue
        d = zv[t, r, v] - cells.zall[t, r]
        smd = np.divide(d, sd, out=np.zeros_like(d), where=sd > 0)
        se = np.sqrt((1 - Pi[t, r, v]) / cells.N[t, r, v])
        j = int(np.argmax(np.abs(smd))) if len(smd) else 0
        if len(smd):
            out.append((float(smd[j]), float(smd[j] / se), int(t), int(r), int(v), j))
    return out


#: |z| of a served-versus-cell difference in any design term beyond which a cell's served rows are not
#: taken as a random share of its inputs (many terms are tested at once: about 3.5 is the largest of
#: a hundred null z values).
IMBALANCE_Z = 5.0


def imbalanced(cells: Cells, sd: np.ndarray, *, z_limit: float | None = None, min_rows: int = 30) -> np.ndarray:
    """Served (t, k, v) whose rows differ from their cell's inputs beyond chance in some design term."""
    out = np.zeros(cells.N.shape, dtype=bool)
    Pi = _div(cells.N, cells.N.sum(axis=2, keepdims=True))
    zv = _div(cells.SZ, cells.N[..., None])
    for t, r, v in zip(*np.nonzero(cells.N >= min_rows), strict=False):
        if Pi[t, r, v] >= 1 or not len(sd):
            continue
        d = zv[t, r, v] - cells.zall[t, r]
        smd = np.divide(d, sd, out=np.zeros_like(d), where=sd > 0)
        se = np.sqrt((1 - Pi[t, r, v]) / cells.N[t, r, v])
        out[t, r, v] = bool(np.abs(smd / se).max() > (IMBALANCE_Z if z_limit is None else z_limit))
    return out


def behaviour_change(cells: Cells, beta: np.ndarray, sample_sd: np.ndarray) -> list[tuple[float, float, int, int]]:
    """Same version, same routing cell, both windows: the change of its mean residual.

    For a model output a resolved version is a fixed function, so once the
    outcome model accounts for the inputs its residuals should not move
    between the windows. Returns (change, z, routing cell, version) per
    pair served in both windows; ``sample_sd[v]`` is the residual SD.
    """
    reg = cells.regional()
    fit = np.einsum("vrp,trvp->trv", beta[0][..., 1:], reg.SZ) + beta[0][..., 0].T[None] * reg.N
    e = _div(reg.SY - fit, reg.N)
    out = []
    for r, v in zip(*np.nonzero((reg.N[0] > 0) & (reg.N[1] > 0)), strict=False):
        d = float(e[1, r, v] - e[0, r, v])
        se = float(sample_sd[v] * np.sqrt(1 / reg.N[0, r, v] + 1 / reg.N[1, r, v]))
        out.append((d, d / se if se > 0 else 0.0, int(r), int(v)))
    return out
