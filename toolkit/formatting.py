"""How vdrift writes numbers: effects, levels, intervals, shares and confidence levels.

Every text the toolkit shows a person -- ``summary()``, ``_repr_html_()``,
the diagnostics' headline and notes, the CLI (which prints ``summary()``),
the ranked causes and the incident and weekly reports -- formats a metric
through this module, so the same number is written the same way everywhere.
JSON output is not formatted: it carries the raw values.

The rule
--------
A metric is shown in *display units*: ``value * scale``, where ``scale`` is
100 for a rate (a share of rows, e.g. ``rate:prediction=approved``,
``accuracy``) and 1 for a mean (``mean:score``).

* **Rates.** A level (the metric's value in a window) is a percentage with
  two decimals: ``85.38%``. An effect (a difference of two levels: a shift,
  a component of the split, a cause's impact) is in percentage points with
  two decimals and an explicit sign: ``-3.17 pt``.
* **Means.** Levels and effects are in the metric's own units, with as many
  decimals as give four significant digits of the metric's *size*, the
  largest absolute level observed in the two windows::

      decimals = clamp(3 - floor(log10(size)), 2, 10)

  A mean of size 0.5 shows an effect of 0.0042 as ``+0.0042`` and a level
  of 0.4812 as ``0.4812``; a mean of size 0.05 writes them ``+0.00420`` and
  ``0.04812``; a mean of size 120 writes ``+0.42`` and ``120.37``. All the
  numbers of one result use the same decimals, so its parts visibly add up.
* **Signs and zero.** Effects carry a sign. A value that rounds to zero at
  the display precision (negative zero included) is written ``+0.00``, never
  ``-0.00``; a value within floating-point noise of zero (below ``1e-12``
  of the metric's size) is zero.
* **Missing values.** ``None``, NaN and infinities are written ``n/a``.
* **Intervals.** ``[lo, hi]``: both bounds signed, with the decimals of the
  estimate and without the unit (the unit stands once, after the estimate
  the interval brackets): ``-3.17 pt [-3.47, -2.87]``. An interval with a
  missing bound is ``no interval``.
* **Confidence levels.** A level such as 0.9 is written ``90%``
  (:func:`level_label`); every "NN% interval(s)" text is built from the
  result's own level, never hard-coded. Only figures whose interval is
  fixed (the Wilson/normal bands of the metric-by-version chart are always
  95%) say 95%.
* **Shares** of rows or requests (not metric values) are percentages with
  one decimal: ``12.5%`` (:func:`share`).

:class:`Display` binds a metric's scale, unit and observed levels, so a
result object formats with ``display.effect(x)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

#: The unit of rate effects: percentage points.
RATE_UNIT = "pt"
#: Decimals of rate levels and effects (in percent / percentage points).
RATE_DECIMALS = 2
#: Bounds on the decimals of a mean metric.
MIN_DECIMALS, MAX_DECIMALS = 2, 10
#: Relative size under which a value is floating-point noise of an exact zero.
ZERO_NOISE = 1e-12
#: Text of a missing value.
MISSING = "n/a"
#: Text of an interval with a missing bound.
NO_INTERVAL = "no interval"

Number = float | int | None


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _size(observed: Iterable[Number]) -> float:
    """The metric's size: the largest finite absolute level (1 when there is none, or it is 0)."""
    sizes = [abs(float(o)) for o in observed if o is not None and _finite(float(o))]
    return max(sizes, default=1.0) or 1.0


def unit_for(is_rate: bool) -> str:
    """The effect unit of a metric: ``pt`` for a rate, empty for a mean.

    Parameters
    ----------
    is_rate
        Whether the metric is a share of rows (rates, accuracy).

    Returns
    -------
    str
        ``"pt"`` or ``""``.
    """
    return RATE_UNIT if is_rate else ""


def scale_for(is_rate: bool) -> float:
    """The display factor of a metric: 100 for a rate, 1 for a mean."""
    return 100.0 if is_rate else 1.0


def is_rate_unit(unit: str) -> bool:
    """Whether ``unit`` is the rate unit (``pt``)."""
    return unit == RATE_UNIT


def decimals(unit: str, observed: Iterable[Number] = ()) -> int:
    """Decimals of a metric's levels and effects in display units.

    Parameters
    ----------
    unit
        ``pt`` for a rate, empty for a mean.
    observed
        The metric's levels (raw units); their largest absolute value is the
        size a mean's decimals follow. Empty: size 1.

    Returns
    -------
    int
        2 for rates; ``clamp(3 - floor(log10(size)), 2, 10)`` for means.

    Examples
    --------
    >>> decimals("pt", (0.85,)), decimals("", (0.5,)), decimals("", (0.05,)), decimals("", (120.0,))
    (2, 4, 5, 2)
    """
    if is_rate_unit(unit):
        return RATE_DECIMALS
    d = 3 - math.floor(math.log10(_size(observed)))
    return int(min(MAX_DECIMALS, max(MIN_DECIMALS, d)))


def _number(v: float, d: int, *, signed: bool, size: float) -> str:
    if abs(v) < ZERO_NOISE * max(1.0, size):
        v = 0.0
    return fixed(v, d, signed=signed)


def fixed(value: float, decimals: int, *, signed: bool = True) -> str:
    """A display-unit value with ``decimals`` decimals; a value that rounds to zero is ``+0.00`` (never ``-0.00``).

    Parameters
    ----------
    value
        The value, already in display units (scaled).
    decimals
        Decimals to write.
    signed
        Write ``+`` before a non-negative value.

    Returns
    -------
    str
        ``+1.25``, ``-0.0042``, ``+0.00``; ``n/a`` when missing.
    """
    if value is None or not _finite(float(value)):
        return MISSING
    d = max(0, int(decimals))
    s = f"{float(value):.{d}f}"
    if float(s) == 0.0:  # rounds to zero (negative zero too)
        return ("+" if signed else "") + f"{0.0:.{d}f}"
    return "+" + s if signed and float(value) > 0 else s


def effect(x: Number, *, scale: float, unit: str, observed: Iterable[Number] = (), signed: bool = True,
           bare: bool = False) -> str:
    """An effect (a difference of two metric levels) in display units.

    Parameters
    ----------
    x
        The effect in raw metric units.
    scale, unit
        Display factor (100 for rates) and unit (``pt`` for rates).
    observed
        The metric's levels (raw units), for a mean's decimals.
    signed
        Write the sign (``+``/``-``); off for a magnitude (an SD).
    bare
        Leave out the unit.

    Returns
    -------
    str
        ``-3.17 pt`` (rate), ``+0.0042`` (mean of size 0.5), ``n/a`` (missing).
    """
    if x is None or not _finite(float(x)):
        return MISSING
    obs = tuple(observed)
    size = _size(obs) * scale
    s = _number(float(x) * scale, decimals(unit, obs), signed=signed, size=size)
    return s if bare or not unit else f"{s} {unit}"


def level(x: Number, *, scale: float, unit: str, observed: Iterable[Number] = ()) -> str:
    """A metric level (its value in a window) in display units.

    Parameters
    ----------
    x
        The level in raw metric units.
    scale, unit
        Display factor and effect unit of the metric.
    observed
        The metric's levels, for a mean's decimals (default: ``x`` alone).

    Returns
    -------
    str
        ``85.38%`` (rate), ``0.04812`` (mean of size 0.05), ``n/a`` (missing).
    """
    if x is None or not _finite(float(x)):
        return MISSING
    obs = tuple(observed) or (x,)
    s = _number(float(x) * scale, decimals(unit, obs), signed=False, size=_size(obs) * scale)
    return f"{s}%" if is_rate_unit(unit) else s


def interval(lo: Number, hi: Number, *, scale: float, unit: str, observed: Iterable[Number] = ()) -> str:
    """An interval ``[lo, hi]``: signed bounds with the effect's decimals, without the unit.

    Parameters
    ----------
    lo, hi
        The bounds in raw metric units.
    scale, unit, observed
        As for :func:`effect`.

    Returns
    -------
    str
        ``[-3.47, -2.87]``, or ``no interval`` when a bound is missing.
    """
    if lo is None or hi is None or not (_finite(float(lo)) and _finite(float(hi))):
        return NO_INTERVAL
    obs = tuple(observed)
    return (f"[{effect(lo, scale=scale, unit=unit, observed=obs, bare=True)}, "
            f"{effect(hi, scale=scale, unit=unit, observed=obs, bare=True)}]")


def level_label(level: float) -> str:
    """A confidence level as a percentage: ``0.9 -> "90%"``, ``0.999 -> "99.9%"``.

    Parameters
    ----------
    level
        The level, in (0, 1).

    Returns
    -------
    str
        The percentage with the decimals it needs (at most four).

    Raises
    ------
    ValueError
        If ``level`` is not a number in (0, 1).
    """
    if isinstance(level, bool) or not _finite(level) or not 0 < level < 1:
        raise ValueError(f"a confidence level is a number in (0, 1), got {level!r}")
    return f"{round(100 * float(level), 4):g}%"


def share(x: Number, digits: int = 1) -> str:
    """A share of rows or requests (not a metric value) as a percentage: ``0.125 -> "12.5%"``.

    Parameters
    ----------
    x
        The share, in [0, 1].
    digits
        Decimals of the percentage.

    Returns
    -------
    str
        The percentage, or ``n/a`` when missing.
    """
    if x is None or not _finite(float(x)):
        return MISSING
    return f"{100 * float(x):.{digits}f}%"


def unit_name(unit: str) -> str:
    """What the effects are measured in, in words: ``percentage points`` or ``metric units``."""
    return "percentage points" if is_rate_unit(unit) else "metric units"


def axis_unit(unit: str) -> str:
    """The unit of a chart axis of levels in display units: ``%`` for rates, ``unit`` otherwise."""
    return "%" if is_rate_unit(unit) else unit


def d3_format(unit: str, observed: Iterable[Number] = (), *, signed: bool = False) -> str:
    """The d3 number format of a chart tooltip showing display-unit values: ``+.2f``, ``.5f``."""
    return f"{'+' if signed else ''}.{decimals(unit, observed)}f"


class Displayed(Protocol):
    """What :meth:`Display.of` reads: a result's display factor, unit and observed levels."""

    @property
    def scale(self) -> float: ...  # noqa: D102

    @property
    def unit(self) -> str: ...  # noqa: D102

    @property
    def observed(self) -> tuple[float, ...]: ...  # noqa: D102


@dataclass(frozen=True)
class Display:
    """A metric's display rule bound to its scale, unit and observed levels.

    Attributes
    ----------
    scale
        Display factor (100 for rates, 1 for means).
    unit
        ``pt`` for rates, empty for means.
    observed
        The metric's levels (raw units) the decimals of a mean follow.
    """

    scale: float
    unit: str
    observed: tuple[float, ...] = ()

    @classmethod
    def of(cls, result: Displayed) -> Display:
        """The display of a result with ``scale``, ``unit`` and ``observed`` attributes."""
        return cls(float(result.scale), str(result.unit), tuple(float(o) for o in result.observed))

    @property
    def decimals(self) -> int:
        """Decimals of the levels and effects."""
        return decimals(self.unit, self.observed)

    def effect(self, x: Number, *, signed: bool = True, bare: bool = False) -> str:
        """:func:`effect` with this display."""
        return effect(x, scale=self.scale, unit=self.unit, observed=self.observed, signed=signed, bare=bare)

    def level(self, x: Number) -> str:
        """:func:`level` with this display."""
        return level(x, scale=self.scale, unit=self.unit, observed=self.observed)

    def interval(self, lo: Number, hi: Number) -> str:
        """:func:`interval` with this display."""
        return interval(lo, hi, scale=self.scale, unit=self.unit, observed=self.observed)

    def estimate(self, x: Number, lo: Number, hi: Number) -> str:
        """An effect and its interval: ``-3.17 pt [-3.47, -2.87]``; the effect alone when a bound is missing."""
        iv = self.interval(lo, hi)
        return self.effect(x) if iv == NO_INTERVAL else f"{self.effect(x)} {iv}"


__all__ = ["Display", "MISSING", "NO_INTERVAL", "RATE_UNIT", "axis_unit", "d3_format", "decimals", "effect",
           "fixed", "interval", "is_rate_unit", "level", "level_label", "scale_for", "share", "unit_for", "unit_name"]
