"""The transport error of the outcome model: how far a version's behaviour is carried, and how well.

Within a routing cell a version's served rows are a random sample of the
cell's inputs only while the routing holds still. A canary started late in
a window, or a rollback half-way through it, leaves the version with the
rows of part of the window; when the inputs trend over the window (seasons,
a launch, a campaign), its served mean is not its mean on the cell's
inputs. The estimators then carry the version's behaviour to the rest of
the cell's inputs with the outcome model (the doubly robust correction, or
the model alone where it served no row), and the model's error there is not
sampling noise: no bootstrap of the served rows sees it.

This module measures that error on the data and turns it into a standard
deviation for every ``mu`` the estimators carry:

* the **distance carried** ``d``: the length of the gap between the mean
  design vector of the cell's inputs and that of the rows whose behaviour
  is carried there (the version's own rows in the cell and window, else in
  the cell in the other window, else anywhere), less what random sampling
  alone leaves between the two;
* the **error per unit of distance** ``kappa``: measured out of sample on
  the estimators' own fit, cross-fitted by time block: each window is cut
  into ``BLOCKS`` equal stretches; holding out one stretch of one window at
  a time, the outcome models are fitted as the estimators fit them (both
  windows for a model output) on the other rows, and each version's
  behaviour is carried from its other rows in the same cell and window to
  the held-out stretch's served mean, as the doubly robust fill carries it
  to the rows it did not serve. ``kappa^2 = sum(error^2 - noise) /
  sum(distance^2)`` over those (stretch, cell, version) pairs.

A version that served a cell in one window only is carried across the
whole shift between the windows, further than any stretch: such carries
take the larger of ``kappa`` and ``kappa_across``, measured by holding out
a version's rows of one window and cell it served in both windows and
carrying its behaviour there from its rows of that cell in the other
window (:func:`_kappa_across`).

``sd[c, a, r, v] = kappa * d`` (``max(kappa, kappa_across) * d`` for a carry
from the other window). When neither kind of fold could be held out nothing
measures the error; the attribution then says so (``transport.measured`` is
false). The attribution adds the implied
variance of each component to its interval (docs/methods.md, "Transport
error").

An earlier measure fitted a version on one window and checked it on the
other; a single-window fit overstates the error of the models fitted on
both, and it made the intervals about four times wider than the errors
called for (benchmarks/results/experiments/transport_kappa_calibration.md).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .decompose import effects
from .models import fit_models
from .routed import Cells, _div
from .. import formatting as fmt
from .results import Note
from .sums import ModelSample

#: Rows a (window, cell, version) needs in the sample before its out-of-sample error counts.
MIN_ROWS = 30

#: Equal stretches of each window the cross-fit holds out one at a time.
BLOCKS = 4


@dataclass(frozen=True)
class Transport:
    """The transport error: ``kappa``, the pairs it was measured on, and ``sd[c, a, r, v]``."""

    kappa: float
    pairs: int
    measured: bool
    distance: np.ndarray    # [c, a, R, v]
    sd: np.ndarray          # [c, a, R, v]
    #: the error per unit of distance of a carry from the other window (model outputs), and its folds
    kappa_across: float = 0.0
    pairs_across: int = 0
    #: whether some carry took ``kappa_across`` (it exceeded ``kappa`` where a version was carried across windows)
    across_used: bool = False

    def as_dict(self) -> dict:
        """JSON-ready summary for the diagnostics' details."""
        return {"kappa": self.kappa, "pairs": self.pairs, "measured": self.measured,
                "kappa_across": self.kappa_across, "pairs_across": self.pairs_across,
                "largest_distance": float(self.distance.max()) if self.distance.size else 0.0}


def _block(sample: ModelSample) -> np.ndarray:
    """Each sampled row's time block in its window (``BLOCKS`` equal stretches)."""
    return np.clip((sample.pos * BLOCKS).astype(int), 0, BLOCKS - 1)


def _kappa(sample: ModelSample, parent: np.ndarray, n_versions: int, p: int, term_var: np.ndarray, *,
           model_output: bool, same_window: bool = False) -> tuple[float, int]:
    """Out-of-sample error per unit of distance of the estimators' own fit, cross-fitted by time block.

    Each fold holds out one time block of one window, fits the outcome
    models exactly as the estimators do (both windows, or per window for an
    outcome metric) on the other rows, and carries each version's behaviour
    from its other rows in the same cell and window (the doubly robust
    fill: the model at the block's mean design vector plus the mean
    residual of those rows) to the held-out block's served mean. The block
    stands in for the stretch of a window a version did not serve.

    ``same_window``: both periods are one window (explain of a single
    window), so every sampled row is there twice; a block is held out of
    both copies (else the fit would see the rows it is checked on), and
    one period is enough.
    """
    blk = _block(sample)
    region = parent[sample.r] if len(sample.r) else sample.r
    Z1 = np.column_stack([np.ones(len(sample.y)), sample.z])
    tv = float(term_var.sum())
    num = den = 0.0
    pairs = 0
    for a, k in itertools.product((0,) if same_window else (0, 1), range(BLOCKS)):
        out = (blk == k) if same_window else (sample.t == a) & (blk == k)
        if out.sum() < MIN_ROWS:
            continue
        keep = ~out
        fold = ModelSample(sample.t[keep], sample.v[keep], sample.r[keep], sample.y[keep], sample.z[keep])
        beta = fit_models(fold, n_versions, p, per_period=not model_output, parent=parent).beta
        for r, v in itertools.product(np.unique(region[out]), range(n_versions)):
            held = out & (sample.t == a) & (region == r) & (sample.v == v)
            rest = keep & (sample.t == a) & (region == r) & (sample.v == v)
            if held.sum() < MIN_ROWS or rest.sum() < MIN_ROWS:
                continue
            excess, gap = _carry_check(sample, Z1, held, rest, beta[a, v, r], tv)
            num += excess
            den += gap
            pairs += 1
    return _per_unit(num, den, pairs)


def _carry_check(sample: ModelSample, Z1: np.ndarray, held: np.ndarray, src: np.ndarray, b: np.ndarray,
                 tv: float, cov: np.ndarray | None = None) -> tuple[float, float]:
    """One fold's carry from the ``src`` rows to the ``held`` rows' served mean, as the doubly robust fill does it.

    The fill is the model ``b`` at the held rows' mean design vector plus the
    mean residual of the source rows. Returns the squared error less its
    sampling noise, and the squared distance carried less what sampling alone
    leaves between the two means (at least 0). The noise is both means'
    variance, plus the coefficients' own variance along the carry when
    ``cov`` is given.
    """
    resid = sample.y[src] - Z1[src] @ b
    err = float(sample.y[held].mean() - (Z1[held].mean(axis=0) @ b + resid.mean()))
    noise = float(sample.y[held].var(ddof=1) / held.sum() + resid.var(ddof=1) / src.sum())
    if cov is not None:
        dz = Z1[held].mean(axis=0) - Z1[src].mean(axis=0)
        noise += float((cov @ dz) @ dz)
    gap = float(((sample.z[held].mean(axis=0) - sample.z[src].mean(axis=0)) ** 2).sum())
    gap -= tv * (1 / held.sum() + 1 / src.sum())
    return err * err - noise, max(0.0, gap)


def _per_unit(num: float, den: float, pairs: int) -> tuple[float, int]:
    """``sqrt(num / den)`` (0 when nothing was measured) and the folds it rests on."""
    if not pairs or den <= 0:
        return 0.0, 0
    return float(np.sqrt(max(0.0, num) / den)), pairs


def _kappa_across(sample: ModelSample, parent: np.ndarray, n_versions: int, p: int,
                  term_var: np.ndarray) -> tuple[float, int]:
    """Out-of-sample error per unit of distance of a carry from the other window (model outputs).

    The fill of a version that served a routing cell in one window only is
    the model at the cell's inputs of the other window plus the mean residual
    of the version's rows there: it carries the behaviour across the whole
    shift between the windows, further than any time block inside a window.
    Each fold stands in for it with a (window, cell, version) the version did
    serve in both windows: all its rows of that window and cell are held
    out, the models are refitted as the estimators fit them (both windows)
    on the other rows, and the behaviour is carried from the version's rows
    of the same cell in the other window to the held-out served mean.
    """
    region = parent[sample.r] if len(sample.r) else sample.r
    Z1 = np.column_stack([np.ones(len(sample.y)), sample.z])
    tv = float(term_var.sum())
    num = den = 0.0
    pairs = 0
    for a, r, v in itertools.product((0, 1), np.unique(region), range(n_versions)):
        held = (sample.t == a) & (region == r) & (sample.v == v)
        src = (sample.t == 1 - a) & (region == r) & (sample.v == v)
        if held.sum() < MIN_ROWS or src.sum() < MIN_ROWS:
            continue
        # a version's models are fitted on its own rows only, so the fold refits version v alone
        keep = (sample.v == v) & ~held
        fold = ModelSample(sample.t[keep], np.zeros(int(keep.sum()), dtype=int), sample.r[keep], sample.y[keep],
                           sample.z[keep])
        fit = fit_models(fold, 1, p, per_period=False, parent=parent)
        root = fit.root[a, 0, r]
        excess, gap = _carry_check(sample, Z1, held, src, fit.beta[a, 0, r], tv, cov=root @ root.T)
        num += excess
        den += gap
        pairs += 1
    return _per_unit(num, den, pairs)


def measure(cells: Cells, sample: ModelSample, parent: np.ndarray, term_var: np.ndarray, *,
            model_output: bool, same_window: bool = False) -> Transport:
    """``kappa`` and the distance carried for every ``mu[c, a, r, v]`` of the (routing-cell) ``cells``.

    A carry inside the window (the version's own rows of the cell) takes the
    time-block ``kappa``; a carry from the version's rows of the cell in the
    other window takes the larger of it and the across-window
    ``kappa_across`` (model outputs; :func:`_kappa_across`). A carry from
    the version's rows anywhere (a cell it never served) keeps ``kappa``:
    no fold measures a carry across cells, and ``kappa_across`` is not
    stretched to distances it was not measured on. ``same_window``: the two
    periods are one window (nothing is carried across windows; see :func:`_kappa`).
    """
    V, p = cells.N.shape[2], sample.z.shape[1]
    kappa, pairs = _kappa(sample, parent, V, p, term_var, model_output=model_output, same_window=same_window)
    across, pairs_across = (_kappa_across(sample, parent, V, p, term_var) if model_output and not same_window
                            else (0.0, 0))
    N, Nin = cells.N, cells.Nin
    R, V = N.shape[1], N.shape[2]
    zcell = cells.zall                                        # [a, r, p]
    zs = _div(cells.SZ, N[..., None])                         # [t, r, v, p]
    tot = N.sum(axis=(0, 1))
    zany = _div(cells.SZ.sum(axis=(0, 1)), tot[:, None])      # [v, p]
    served = N > 0
    dist = np.zeros((2, 2, R, V))
    per_unit = np.full((2, 2, R, V), kappa)
    for c, a, r, v in itertools.product((0, 1), (0, 1), range(R), range(V)):
        if not tot[v]:
            continue
        if served[a, r, v] and (model_output or c == a):
            gap = float(((zcell[a, r] - zs[a, r, v]) ** 2).sum())
            # what a random share of the cell's rows would leave between the two means
            gap -= float(term_var.sum() * max(0.0, 1 / N[a, r, v] - 1 / Nin[a, r]))
        else:
            src = (1 - a) if model_output else c
            zsrc = zs[src, r, v] if served[src, r, v] else zany[v]
            gap = float(((zcell[a, r] - zsrc) ** 2).sum())
            if model_output and served[src, r, v]:
                per_unit[c, a, r, v] = max(kappa, across)
        dist[c, a, r, v] = np.sqrt(max(0.0, gap))
    used = bool(((per_unit > kappa) & (dist > 0)).any())
    return Transport(kappa, pairs, pairs > 0 or pairs_across > 0, dist, per_unit * dist, across, pairs_across,
                     used)


def component_sd(w: np.ndarray, Pi: np.ndarray, sd: np.ndarray, *, model_output: bool) -> np.ndarray:
    """Standard deviation of (data drift, version drift, residual) from independent errors of ``mu``.

    The components are linear in ``mu[c, a, r, v]`` through
    ``M(a, b, c) = sum_r w_a(r) sum_v Pi_b(v|r) mu_c(a, r, v)``; the errors
    are taken as independent across (window, cell, version). For a model
    output ``mu_0`` and ``mu_1`` are one quantity (a resolved version is a
    fixed function), so their gradients add before squaring.
    """
    coef = np.zeros((3, 2, 2, 2))
    for a, b, c in itertools.product((0, 1), repeat=3):
        unit = np.zeros((2, 2, 2))
        unit[a, b, c] = 1.0
        coef[:, a, b, c] = effects(unit)[:3]
    # gradient of each effect with respect to mu[c, a, r, v]
    G = np.einsum("kabc,ar,brv->kcarv", coef, w, Pi)
    G_dd, G_vd = G[0], G[1]
    grads = [G_dd, G_vd, -(G_dd + G_vd)]   # residual = observed total - data - version
    out = np.zeros(3)
    for i, g in enumerate(grads):
        if model_output:
            out[i] = float(np.sqrt((((g[0] + g[1]) * sd[0]) ** 2).sum()))
        else:
            out[i] = float(np.sqrt(((g * sd) ** 2).sum()))
    return out


def note(trans: Transport, carry: np.ndarray, scale: float, unit: str, observed: tuple[float, float]) -> Note | None:
    """The diagnostic line on the transport error, or None when nothing was carried.

    A warning when behaviour was carried but nothing measured ``kappa`` (the
    interval then lacks that error); an info line with the SD it added
    otherwise.
    """
    if not trans.distance.size or float(trans.distance.max()) <= 0:
        return None
    if not trans.measured:
        return Note("warning", "transport", (
            "the outcome models carry versions' behaviour to inputs they did not serve, and no version served "
            "enough rows on both sides of a time block (or in both windows of a cell) to measure how well that "
            "transports: the intervals leave that error out. More rows per version and window (a longer window) "
            "would measure it."))
    held = " and ".join(([f"{trans.pairs} held-out time blocks"] if trans.pairs else [])
                        + ([f"{trans.pairs_across} held-out cell-windows"] if trans.pairs_across else []))
    head = (f"the outcome models carry versions' behaviour to inputs they did not serve; their cross-fitted "
            f"error ({held} of served rows)")
    if float(np.max(carry[:2])) <= 0:
        return Note("info", "transport", f"{head} is within sampling noise, so the intervals add nothing for it.")
    show = fmt.Display(scale, unit, tuple(observed))
    sd = ", ".join(f"{name.replace('_', ' ')} ±{show.effect(float(x), signed=False)}"
                   for name, x in zip(("data_drift", "version_drift"), carry[:2], strict=True))
    return Note("info", "transport", (
        f"{head}, kappa {trans.kappa:.3g} per unit of design distance"
        + (f" ({trans.kappa_across:.3g} across windows)" if trans.across_used else "")
        + f", adds an SD of {sd} to the intervals."))
