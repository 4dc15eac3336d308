"""Per-feature data drift between the periods, overall and per version.

All statistics come from SQL aggregates over the store:

* categorical covariates: level counts per period -> PSI, Jensen-Shannon
  divergence (base 2, in [0, 1]) and Pearson's chi-squared test;
* numeric covariates: counts in quantile bins of the pooled rows -> PSI and
  Jensen-Shannon; the exact two-sample Kolmogorov-Smirnov statistic and the
  1-Wasserstein distance from cumulative counts over distinct values.

The counts per (version, period, value) are read once (most come with the
profile of :func:`~toolkit.attribution.cells.profile_covariates`); the
``(all versions)`` counts are their sums. A numeric covariate with more than
:data:`~toolkit.attribution.profile.EXACT_MAX_DISTINCT` distinct values is
counted at 4 significant digits for KS and Wasserstein (the ``resolution``
column says so), which keeps the counts small whatever the number of rows.

PSI uses a 0.5 pseudo-count in empty bins so that it stays finite.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import polars as pl
from scipy import special, stats
from scipy.spatial import distance

from ..timeutil import Window
from .profile import EXACT_MAX_DISTINCT, Profile, profile_covariates
from .rows import Covariate, WherePairs
from .metrics import Metric

ALL = "(all versions)"

_SCHEMA = {
    "feature": pl.String, "kind": pl.String, "group": pl.String, "n_baseline": pl.Int64,
    "n_comparison": pl.Int64, "psi": pl.Float64, "js_divergence": pl.Float64, "chi2": pl.Float64,
    "chi2_pvalue": pl.Float64, "ks": pl.Float64, "ks_pvalue": pl.Float64, "wasserstein": pl.Float64,
    "resolution": pl.String,
}


def psi(a: np.ndarray, b: np.ndarray) -> float:
    """Population stability index of count vectors ``a`` (baseline) and ``b``."""
    a = np.where(a > 0, a, 0.5).astype(float)
    b = np.where(b > 0, b, 0.5).astype(float)
    pa, pb = a / a.sum(), b / b.sum()
    return float(np.sum((pb - pa) * np.log(pb / pa)))


def js_divergence(a: np.ndarray, b: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two count vectors.

    :func:`scipy.spatial.distance.jensenshannon` returns the Jensen-Shannon
    *distance*, the square root of the divergence, so it is squared here.
    """
    return float(distance.jensenshannon(a, b, base=2) ** 2)


def _counts_stats(a: np.ndarray, b: np.ndarray) -> dict:
    out = {"psi": float("nan"), "js_divergence": float("nan"), "chi2": float("nan"), "chi2_pvalue": float("nan")}
    if a.sum() == 0 or b.sum() == 0:
        return out
    out["psi"] = psi(a, b)
    out["js_divergence"] = js_divergence(a, b)
    keep = (a + b) > 0
    if keep.sum() >= 2:
        table = np.vstack([a[keep], b[keep]])
        chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
        out["chi2"], out["chi2_pvalue"] = float(chi2), float(p)
    else:
        out["chi2"], out["chi2_pvalue"] = 0.0, 1.0
    return out


def _cdf_stats(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """KS statistic and 1-Wasserstein distance from counts ``a``, ``b`` at sorted distinct values ``x``."""
    gap = np.abs(np.cumsum(a) / a.sum() - np.cumsum(b) / b.sum())
    return float(gap.max()), float(stats.wasserstein_distance(x, x, a, b))


def feature_drift(
    con: duckdb.DuckDBPyConnection,
    metric: Metric,
    baseline: Window,
    comparison: Window,
    covariates: Sequence[Covariate],
    *,
    where: WherePairs | None = None,
    include_shadow: bool = False,
    n_bins: int = 10,
    profile: Profile | None = None,
    exact_max_distinct: int = EXACT_MAX_DISTINCT,
) -> pl.DataFrame:
    """Drift statistics of every covariate, overall and per resolved version.

    Counts per (version, period, value) come from the profile; the ``(all
    versions)`` counts are sums of the per-version ones.

    Parameters
    ----------
    con
        Store connection.
    metric, baseline, comparison, where, include_shadow
        The same row selection as the attribution.
    covariates
        Covariates (raw values are used, not the attribution bins).
    n_bins
        Quantile bins (pooled) for PSI and Jensen-Shannon of numeric covariates.
    profile
        A :func:`~toolkit.attribution.cells.profile_covariates` of the same
        rows serving ``n_bins`` (made here when None).
    exact_max_distinct
        When the profile is made here: numeric covariates with more distinct
        values get KS and Wasserstein on values rounded to :data:`~toolkit.attribution.rounded.ROUND_DIGITS`
        significant digits.

    Returns
    -------
    polars.DataFrame
        One row per (feature, group) where group is ``(all versions)`` or a
        version: counts, psi, js_divergence, chi2, chi2_pvalue, ks, ks_pvalue,
        wasserstein (NaN where not applicable, e.g. a version absent from a
        period) and ``resolution``: ``exact``, or for a numeric covariate
        with very many distinct values the rounding its KS and Wasserstein
        were computed at (``4 significant digits``: the KS statistic is then
        exact for the rounded values and the Wasserstein distance off by at
        most half a rounding step, 0.05% of the value).
    """
    names = [c.name for c in covariates]
    if not names:
        return pl.DataFrame(schema=_SCHEMA)
    if profile is None or not _serves(profile, covariates, n_bins):
        profile = profile_covariates(con, metric, baseline, comparison, names, where=where,
                                     include_shadow=include_shadow, bins=[n_bins],
                                     exact_max_distinct=exact_max_distinct)
    counts = {cov.name: _binned_counts(profile, cov, n_bins) for cov in covariates}
    out: list[dict] = []
    for cov in covariates:
        sub = counts[cov.name]
        digits = profile.numeric[cov.name].digits if cov.kind == "numeric" else None
        resolution = "exact" if digits is None else f"{digits} significant digits"
        for grp in [ALL] + sorted(sub["version"].unique().to_list()):
            g = sub if grp == ALL else sub.filter(pl.col("version") == grp)
            out.append(_group_row(cov, grp, g) | {"resolution": resolution})
    return pl.DataFrame(out, schema=_SCHEMA) if out else pl.DataFrame(schema=_SCHEMA)


def _serves(profile: Profile, covariates: Sequence[Covariate], n_bins: int) -> bool:
    """Whether ``profile`` has what the statistics need: the ``n_bins`` quantiles and the level counts."""
    return (all(profile.serves(c.name, n_bins) for c in covariates if c.kind == "numeric")
            and all(c.name in profile.level_counts for c in covariates if c.kind != "numeric"))


def _binned_counts(profile: Profile, cov: Covariate, n_bins: int) -> pl.DataFrame:
    """Rows per (version, period, ``bin``) of one covariate (numeric ones also per value ``x``).

    A categorical covariate's bins are its levels; a numeric one's are the
    ``n_bins`` quantile bins of the pooled rows: how many pooled quantiles
    lie at or below the value (ties kept), placed by the profile's ``at``.
    """
    if cov.kind != "numeric":
        return profile.level_counts[cov.name].rename({"level": "bin"})
    p = profile.numeric[cov.name]
    if p.counts is None:  # profile_covariates always counts the values
        raise ValueError(f"the profile of {cov.name!r} has no value counts")
    edges = [e for e in (profile.quantiles(cov.name, n_bins, rows=True) or []) if e is not None]
    at = p.counts["at"].to_numpy()
    return p.counts.with_columns(
        pl.Series("bin", np.searchsorted(np.asarray(edges, dtype=float), at, side="right"), dtype=pl.Int64))


def _by_period(g: pl.DataFrame, key: str) -> pl.DataFrame:
    """Baseline (``a``) and comparison (``b``) rows per value of ``key``, sorted by it."""
    return (g.group_by(key)
            .agg(pl.col("c").filter(pl.col("period") == 0).sum().alias("a"),
                 pl.col("c").filter(pl.col("period") == 1).sum().alias("b"))
            .sort(key))


def _group_row(cov: Covariate, grp: str, g: pl.DataFrame) -> dict:
    """The drift statistics of one covariate in one group (all versions, or one version) from its counts ``g``.

    KS and Wasserstein only for a numeric covariate with rows in both
    periods (NaN otherwise), from the counts per value.
    """
    h = _by_period(g, "bin")
    a = h["a"].to_numpy().astype(float)
    b = h["b"].to_numpy().astype(float)
    row = {"feature": cov.name, "kind": cov.kind, "group": grp,
           "n_baseline": int(a.sum()), "n_comparison": int(b.sum())}
    row.update(_counts_stats(a, b))
    ks = w1 = ksp = float("nan")
    if cov.kind == "numeric" and a.sum() > 0 and b.sum() > 0:
        cdf = _by_period(g, "x")
        ks, w1 = _cdf_stats(cdf["x"].to_numpy(), cdf["a"].to_numpy(), cdf["b"].to_numpy())
        ne = a.sum() * b.sum() / (a.sum() + b.sum())
        ksp = float(special.kolmogorov(np.sqrt(ne) * ks))
    row.update({"ks": ks, "ks_pvalue": ksp, "wasserstein": w1})
    return row
