"""The transport note: what the user reads about the outcome model's carried error."""

from __future__ import annotations

import numpy as np

from toolkit.attribution import transport as tr


def _trans(distance: float, kappa: float, measured: bool) -> tr.Transport:
    d = np.full((2, 2, 1, 2), distance)
    return tr.Transport(kappa=kappa, pairs=8 if measured else 0, measured=measured, distance=d, sd=kappa * d)


def test_nothing_carried_says_nothing() -> None:
    assert tr.note(_trans(0.0, 0.0, True), np.zeros(4), 100.0, "pt", (0.5, 0.4)) is None


def test_carried_but_unmeasured_is_a_warning_that_says_what_would_measure_it() -> None:
    n = tr.note(_trans(1.5, 0.0, False), np.zeros(4), 100.0, "pt", (0.5, 0.4))
    assert n is not None and n.level == "warning" and n.code == "transport"
    assert "leave that error out" in n.message and "longer window" in n.message


def test_measured_within_noise_adds_nothing() -> None:
    n = tr.note(_trans(1.5, 0.0, True), np.zeros(4), 100.0, "pt", (0.5, 0.4))
    assert n is not None and n.level == "info"
    assert "within sampling noise" in n.message and "8 held-out time blocks" in n.message


def test_measured_error_states_the_sd_it_adds_in_the_metric_unit() -> None:
    carry = np.array([0.004, 0.0021, 0.0, 0.0])
    n = tr.note(_trans(1.5, 0.01, True), carry, 100.0, "pt", (0.5, 0.4))
    assert n is not None and n.level == "info"
    assert "kappa 0.01" in n.message
    assert "data drift ±0.40 pt" in n.message and "version drift ±0.21 pt" in n.message


def test_the_across_window_measure_is_named_with_its_folds() -> None:
    d = np.full((2, 2, 1, 2), 1.5)
    t = tr.Transport(kappa=0.01, pairs=8, measured=True, distance=d, sd=0.02 * d, kappa_across=0.02, pairs_across=3,
                     across_used=True)
    n = tr.note(t, np.array([0.004, 0.0021, 0.0, 0.0]), 100.0, "pt", (0.5, 0.4))
    assert n is not None and n.level == "info"
    assert "8 held-out time blocks and 3 held-out cell-windows" in n.message
    assert "kappa 0.01 per unit of design distance (0.02 across windows)" in n.message


def _shifted_sample(f, n: int = 1500, seed: int = 0):
    """One version serving two cells in both windows; the input shifts by 2 SD between the windows."""
    from toolkit.attribution.sums import ModelSample

    rng = np.random.default_rng(seed)
    t = np.repeat([0, 0, 1, 1], n)
    r = np.tile(np.repeat([0, 1], n), 2)
    z = rng.normal(0.0, 1.0, 4 * n) + 2.0 * t + 0.5 * r
    y = f(z) + rng.normal(0.0, 0.1, 4 * n)
    return ModelSample(t, np.zeros(4 * n, dtype=int), r, y, z[:, None])


def test_kappa_across_sees_an_additive_model_carried_across_a_shift_it_cannot_follow() -> None:
    parent = np.array([0, 1])
    curved, folds = tr._kappa_across(_shifted_sample(lambda z: 0.05 * z * z), parent, 1, 1, np.array([1.0]))
    straight, _ = tr._kappa_across(_shifted_sample(lambda z: 0.05 * z), parent, 1, 1, np.array([1.0]))
    assert folds == 4  # (window, cell) of the one version, each held out once
    assert curved > 0.05  # the carried error per unit of distance of a curve fitted by a line
    assert straight < 0.2 * curved  # a line carries a line: what is left is noise


def test_measured_across_windows_only_is_not_a_warning() -> None:
    """No time block held out, but cell-windows were: the interval includes the error, and the note says so."""
    d = np.full((2, 2, 1, 2), 1.5)
    t = tr.Transport(kappa=0.0, pairs=0, measured=True, distance=d, sd=0.03 * d, kappa_across=0.03, pairs_across=4,
                     across_used=True)
    n = tr.note(t, np.array([0.004, 0.0021, 0.0, 0.0]), 100.0, "pt", (0.5, 0.4))
    assert n is not None and n.level == "info" and "leave that error out" not in n.message
    assert "(4 held-out cell-windows of served rows)" in n.message and "(0.03 across windows)" in n.message


def _two_version_sample(seed: int = 1):
    """v0 serves both cells in both windows; v1 serves cell 0 in the comparison window only."""
    from toolkit.attribution.sums import ModelSample

    rng = np.random.default_rng(seed)
    t, r, v = [], [], []
    for a, c, ver, n in ((0, 0, 0, 1200), (0, 1, 0, 1200), (1, 0, 0, 800), (1, 1, 0, 1200), (1, 0, 1, 400)):
        t += [a] * n
        r += [c] * n
        v += [ver] * n
    t, r, v = np.array(t), np.array(r), np.array(v)
    z = rng.normal(0.0, 1.0, len(t)) + 2.0 * t + 0.5 * r
    y = 0.05 * z * z + 0.1 * v + rng.normal(0.0, 0.1, len(t))
    return ModelSample(t, v, r, y, z[:, None], pos=rng.uniform(0.0, 1.0, len(t)))


def _cells_for(sample, V: int = 2):
    from toolkit.attribution.routed import Cells

    N, SY, SZ = np.zeros((2, 2, V)), np.zeros((2, 2, V)), np.zeros((2, 2, V, 1))
    np.add.at(N, (sample.t, sample.r, sample.v), 1.0)
    np.add.at(SY, (sample.t, sample.r, sample.v), sample.y)
    np.add.at(SZ, (sample.t, sample.r, sample.v), sample.z)
    return Cells(N, SY, SZ, N.sum(axis=2), SZ.sum(axis=2), np.array([0, 1]))


def test_measure_uses_kappa_across_for_carries_from_the_other_window_only() -> None:
    """v1 carried to the baseline of cell 0 from its comparison rows there takes max(kappa, kappa_across);
    v1 in cell 1, which it never served, keeps the time-block kappa."""
    sample = _two_version_sample()
    t = tr.measure(_cells_for(sample), sample, np.array([0, 1]), np.array([1.0]), model_output=True)
    assert t.measured and t.pairs_across == 4 and t.kappa_across > t.kappa
    assert t.across_used
    for c in (0, 1):
        assert t.distance[c, 0, 0, 1] > 0 and t.distance[c, 1, 1, 1] > 0
        np.testing.assert_allclose(t.sd[c, 0, 0, 1], t.kappa_across * t.distance[c, 0, 0, 1])
        np.testing.assert_allclose(t.sd[c, 1, 1, 1], t.kappa * t.distance[c, 1, 1, 1])


def test_one_window_explained_alone_holds_a_block_out_of_both_copies() -> None:
    """explain of one window passes it as both periods, so each sampled row is there twice.

    The inputs here are the row's time bin (8 bins, one indicator each) and the metric is a
    different level per bin: a block's indicators are learnt only from its own rows. Held out
    of one copy only, the fit still sees the other copy and carries the block without error;
    held out of both, the carry misses the block's level.
    """
    from toolkit.attribution.sums import ModelSample

    rng = np.random.default_rng(2)
    n = 4000
    pos = rng.uniform(0.0, 1.0, n)
    bins = np.minimum((pos * 8).astype(int), 7)
    z = np.eye(8)[bins][:, 1:]
    y = np.array([0.1, 0.5, 0.2, 0.6, 0.1, 0.4, 0.7, 0.3])[bins] + rng.normal(0.0, 0.05, n)
    twice = ModelSample(np.repeat([0, 1], n), np.zeros(2 * n, dtype=int), np.zeros(2 * n, dtype=int),
                        np.tile(y, 2), np.tile(z, (2, 1)), pos=np.tile(pos, 2))
    tv = z.var(axis=0)
    leaked, _ = tr._kappa(twice, np.array([0]), 1, 7, tv, model_output=True)
    held, folds = tr._kappa(twice, np.array([0]), 1, 7, tv, model_output=True, same_window=True)
    assert folds == tr.BLOCKS  # one period's blocks: the other period is the same rows
    assert held > 0.05 and leaked < 0.2 * held


def test_the_carried_error_widens_only_the_part_no_covariate_explains() -> None:
    from toolkit.attribution.estimate import _parts_frame
    from toolkit.attribution.routed import UNEXPLAINED_PART

    parts = {"routing cell mix": 0.01, "amount": -0.02, UNEXPLAINED_PART: 0.005}
    draws = np.random.default_rng(0).normal(0.0, 0.001, (200, 3)) + np.array(list(parts.values()))
    plain = _parts_frame(parts, draws, 1.96, 200, keep_rows=True)
    carried = _parts_frame(parts, draws, 1.96, 200, keep_rows=True, carried_sd=0.004)
    width = {f: dict(zip(x["part"], (x["ci_high"] - x["ci_low"]).to_list(), strict=True))
             for f, x in (("plain", plain), ("carried", carried))}
    for p in ("routing cell mix", "amount"):
        assert width["carried"][p] == width["plain"][p]
    sd_plain = width["plain"][UNEXPLAINED_PART] / (2 * 1.96)
    np.testing.assert_allclose(width["carried"][UNEXPLAINED_PART] / (2 * 1.96), np.hypot(sd_plain, 0.004))
