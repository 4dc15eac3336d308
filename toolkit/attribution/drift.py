"""Per-feature data drift between the periods, overall and per version.

All statistics come from SQL aggregates over the store:

* categorical covariates: level counts per period -> PSI, Jensen-Shannon
  divergence (base 2, in [0, 1]) and Pearson's chi-squared test;
* numeric covariates: counts in quantile bins of the pooled rows -> PSI and
  Jensen-Shannon; the exact two-sample Kolmogorov-Smirnov statistic and the
  1-Wasserstein distance from cumulative counts over distinct values (a
  window query; cost grows with distinct values, not rows).

PSI uses a 0.5 pseudo-count in empty bins so that it stays finite.
"""

from __future__ import annotations

from typing import Sequence

import duckdb
import numpy as np
import polars as pl
from scipy import special, stats

from ..sqlutil import quote_ident
from ..timeutil import Window
from .cells import MISSING, Covariate, Profile, profile_covariates, rows_sql
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
    """Jensen-Shannon divergence (base 2) of two count vectors."""
    pa, pb = a / a.sum(), b / b.sum()
    m = (pa + pb) / 2
    def kl(p: np.ndarray) -> float:
        nz = p > 0
        return float(np.sum(p[nz] * np.log2(p[nz] / m[nz])))
    return 0.5 * kl(pa) + 0.5 * kl(pb)


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


#: Above this many distinct values (HyperLogLog estimate) of a numeric covariate, the
#: Kolmogorov-Smirnov and Wasserstein statistics are computed on values rounded to
#: :data:`ROUND_DIGITS` significant digits (the ``resolution`` column says so).
EXACT_MAX_DISTINCT = 1_000_000
ROUND_DIGITS = 4


def _rounded(x: str, digits: int) -> str:
    """SQL of ``x`` rounded to ``digits`` significant digits (zero and non-finite values kept)."""
    return (f"CASE WHEN {x} = 0 OR NOT isfinite({x}) THEN {x} "
            f"ELSE round({x}, {digits - 1} - CAST(floor(log10(abs({x}))) AS INTEGER)) END")


def _cdf_stats(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """KS statistic and 1-Wasserstein distance from counts ``a``, ``b`` at sorted distinct values ``x``."""
    fa = np.cumsum(a) / a.sum()
    fb = np.cumsum(b) / b.sum()
    gap = np.abs(fa - fb)
    return float(gap.max()), float(np.sum(gap[:-1] * np.diff(x)))


def feature_drift(
    con: duckdb.DuckDBPyConnection,
    metric: Metric,
    baseline: Window,
    comparison: Window,
    covariates: Sequence[Covariate],
    *,
    where: list[tuple[str, str]] | None = None,
    include_shadow: bool = False,
    n_bins: int = 10,
    profile: Profile | None = None,
    exact_max_distinct: int = EXACT_MAX_DISTINCT,
) -> pl.DataFrame:
    """Drift statistics of every covariate, overall and per resolved version.

    One scan of the rows counts every covariate per (version, period, value)
    (GROUPING SETS); the ``(all versions)`` counts are sums of those groups.

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
        rows serving ``n_bins`` (scanned here when None).
    exact_max_distinct
        Numeric covariates with more distinct values get KS and Wasserstein
        on values rounded to :data:`ROUND_DIGITS` significant digits.

    Returns
    -------
    polars.DataFrame
        One row per (feature, group) where group is ``(all versions)`` or a
        version: counts, psi, js_divergence, chi2, chi2_pvalue, ks, ks_pvalue,
        wasserstein (NaN where not applicable, e.g. a version absent from a
        period) and ``resolution``: ``exact``, or for a numeric covariate
        with very many distinct values the rounding its KS and Wasserstein
        were computed at (e.g. ``4 significant digits``; the KS statistic is
        then exact at the rounded values and the Wasserstein distance off by
        at most half a rounding step).
    """
    numeric = [c for c in covariates if c.kind == "numeric"]
    if numeric and (profile is None or not all(profile.serves(c.name, n_bins) for c in numeric)):
        profile = profile_covariates(con, metric, baseline, comparison, [c.name for c in numeric], where=where,
                                     include_shadow=include_shadow, bins=[n_bins])
    select: list[str] = []
    select_params: list = []
    sets: list[str] = []
    plan: list[tuple[Covariate, str, str, str | None, str]] = []  # cov, grouping flag, key col, value col, resolution
    for i, cov in enumerate(covariates):
        q = quote_ident(cov.name)
        g = quote_ident(f"g__{i}")
        key = quote_ident(f"k__{i}")
        if cov.kind == "numeric":
            x = f"CAST({q} AS DOUBLE)"
            edges = profile.quantiles(cov.name, n_bins, rows=True) if n_bins > 1 else []
            if edges is None:  # no values in the windows
                edges = []
            # histogram bin: how many pooled deciles lie at or below the value (ties kept)
            terms = " + ".join(["0"] + ["CAST(" + x + " >= ? AS INTEGER)" for e in edges if e is not None])
            select.append(f"CASE WHEN {x} IS NULL THEN NULL ELSE {terms} END AS {key}")
            select_params += [e for e in edges if e is not None]
            val = quote_ident(f"v__{i}")
            exact = profile.numeric[cov.name].distinct <= exact_max_distinct
            select.append(f"{x if exact else _rounded(x, ROUND_DIGITS)} AS {val}")
            sets.append(f"(version, period, {key}, {val})")
            plan.append((cov, f"GROUPING({val}) AS {g}", key, val,
                         "exact" if exact else f"{ROUND_DIGITS} significant digits"))
        else:
            select.append(f"coalesce(CAST({q} AS VARCHAR), ?) AS {key}")
            select_params.append(MISSING)
            sets.append(f"(version, period, {key})")
            plan.append((cov, f"GROUPING({key}) AS {g}", key, None, "exact"))
    if not plan:
        return pl.DataFrame(schema=_SCHEMA)
    base, params = rows_sql(metric, baseline, comparison, where=where, include_shadow=include_shadow,
                            select=select, select_params=select_params)
    cols = ", ".join(quote_ident(f"k__{i}") if p[3] is None else f"{quote_ident(f'k__{i}')}, {p[3]}"
                     for i, p in enumerate(plan))
    flags = ", ".join(p[1] for p in plan)
    counts = con.execute(
        f"SELECT {flags}, version, period, {cols}, count(*) AS c FROM ({base}) "
        f"GROUP BY GROUPING SETS ({', '.join(sets)})", params,
    ).pl()

    out: list[dict] = []
    for i, (cov, _, _, val, resolution) in enumerate(plan):
        key = f"k__{i}"
        sub = counts.filter(pl.col(f"g__{i}") == 0).filter(pl.col(key).is_not_null())
        cols_i = ["version", "period", key] + ([val.strip('"')] if val is not None else [])
        sub = sub.select(cols_i + ["c"]).rename({key: "bin"})
        if val is not None:
            sub = sub.rename({val.strip('"'): "x"})
        versions = sorted(sub["version"].unique().to_list())
        for grp in [ALL] + versions:
            g = sub if grp == ALL else sub.filter(pl.col("version") == grp)
            h = (g.group_by("bin")
                 .agg(pl.col("c").filter(pl.col("period") == 0).sum().alias("a"),
                      pl.col("c").filter(pl.col("period") == 1).sum().alias("b"))
                 .sort("bin"))
            a = h["a"].to_numpy().astype(float)
            b = h["b"].to_numpy().astype(float)
            row = {"feature": cov.name, "kind": cov.kind, "group": grp,
                   "n_baseline": int(a.sum()), "n_comparison": int(b.sum())}
            row.update(_counts_stats(a, b))
            ks = w1 = ksp = float("nan")
            if val is not None and a.sum() > 0 and b.sum() > 0:
                cdf = (g.group_by("x")
                       .agg(pl.col("c").filter(pl.col("period") == 0).sum().alias("a"),
                            pl.col("c").filter(pl.col("period") == 1).sum().alias("b"))
                       .sort("x"))
                ks, w1 = _cdf_stats(cdf["x"].to_numpy(), cdf["a"].to_numpy(), cdf["b"].to_numpy())
                ne = a.sum() * b.sum() / (a.sum() + b.sum())
                ksp = float(special.kolmogorov(np.sqrt(ne) * ks))
            row.update({"ks": ks, "ks_pvalue": ksp, "wasserstein": w1, "resolution": resolution})
            out.append(row)
    return pl.DataFrame(out, schema=_SCHEMA) if out else pl.DataFrame(schema=_SCHEMA)
