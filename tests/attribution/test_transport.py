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
