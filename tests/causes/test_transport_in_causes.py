"""explain's impacts carry the attribution's transport error: it is added to the kept replicates of mu."""

from __future__ import annotations

import numpy as np

from toolkit.attribution import transport as tr
from toolkit.attribution.estimate import Behaviour, _carry_into_draws


def _setup(n: int = 4000) -> tuple[Behaviour, tr.Transport]:
    sd = np.zeros((2, 2, 2, 3))
    sd[:, 1, 0, 2] = 0.03  # one (window, cell, version) carried
    sd[:, 0, 1, 1] = 0.01
    keep = Behaviour(mu=np.zeros_like(sd), draws=[np.zeros_like(sd) for _ in range(n)])
    keep.draws[5][:] = np.nan  # a skipped replicate
    trans = tr.Transport(kappa=0.1, pairs=4, measured=True, distance=sd / 0.1, sd=sd)
    return keep, trans


def test_each_carried_mu_gets_an_error_of_its_sd_and_the_rest_none() -> None:
    keep, trans = _setup()
    _carry_into_draws(keep, trans, seed=0, model_output=False)
    d = np.stack([x for i, x in enumerate(keep.draws) if i != 5])
    spread = d.std(axis=0)
    np.testing.assert_allclose(spread, trans.sd, rtol=0.06, atol=1e-12)
    assert np.isnan(keep.draws[5]).all()
    # an outcome metric's two behaviours are two quantities: independent errors
    assert abs(np.corrcoef(d[:, 0, 1, 0, 2], d[:, 1, 1, 0, 2])[0, 1]) < 0.1


def test_a_model_output_shares_the_error_between_its_two_behaviours() -> None:
    keep, trans = _setup()
    _carry_into_draws(keep, trans, seed=0, model_output=True)
    d = np.stack([x for i, x in enumerate(keep.draws) if i != 5])
    np.testing.assert_array_equal(d[:, 0], d[:, 1])
    assert d[:, 0, 1, 0, 2].std() > 0.025


def test_nothing_carried_leaves_the_replicates_alone() -> None:
    keep, trans = _setup(10)
    zero = tr.Transport(kappa=0.0, pairs=4, measured=True, distance=trans.distance, sd=np.zeros_like(trans.sd))
    _carry_into_draws(keep, zero, seed=0, model_output=True)
    assert all(np.all(x == 0) for i, x in enumerate(keep.draws) if i != 5)


def test_a_skipped_replicate_is_left_out_not_read_as_a_cost_of_zero() -> None:
    from toolkit.causes.api import _settled

    draws = np.array([[0.10, np.nan, 0.20],
                      [np.nan, np.nan, np.nan],   # the attribution skipped this replicate
                      [0.12, np.nan, 0.18]])      # the middle row cannot be estimated in any replicate
    out = _settled(draws)
    assert np.isnan(out[1]).all()
    np.testing.assert_allclose(out[[0, 2]], [[0.10, 0.0, 0.20], [0.12, 0.0, 0.18]])
    totals = out.sum(axis=1)
    assert np.isnan(totals[1]) and np.nanvar(totals, ddof=1) < 1e-3
    assert np.all(_settled(np.full((2, 2), np.nan)) == 0.0)  # nothing estimable: no cost, no NaN
