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
from .cells import MISSING, Covariate, rows_sql
from .metrics import Metric

ALL = "(all versions)"

_SCHEMA = {
    "feature": pl.String, "kind": pl.String, "group": pl.String, "n_baseline": pl.Int64,
    "n_comparison": pl.Int64, "psi": pl.Float64, "js_divergence": pl.Float64, "chi2": pl.Float64,
    "chi2_pvalue": pl.Float64, "ks": pl.Float64, "ks_pvalue": pl.Float64, "wasserstein": pl.Float64,
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
) -> pl.DataFrame:
    """Drift statistics of every covariate, overall and per resolved version.

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

    Returns
    -------
    polars.DataFrame
        One row per (feature, group) where group is ``(all versions)`` or a
        version: counts, psi, js_divergence, chi2, chi2_pvalue, ks, ks_pvalue,
        wasserstein (NaN where not applicable, e.g. a version absent from a period).
    """
    out: list[dict] = []
    for cov in covariates:
        q = quote_ident(cov.name)
        if cov.kind == "numeric":
            expr = [f"CAST({q} AS DOUBLE) AS x"]
        else:
            expr = [f"coalesce(CAST({q} AS VARCHAR), ?) AS x"]
        base, params = rows_sql(metric, baseline, comparison, where=where, include_shadow=include_shadow,
                                select=expr, select_params=[MISSING] if cov.kind != "numeric" else [])
        grouped = (
            f"WITH r AS ({base}), g AS (SELECT ? AS grp, period, x FROM r "
            f"UNION ALL SELECT version AS grp, period, x FROM r) "
        )
        gparams = params + [ALL]
        if cov.kind == "numeric":
            probs = [i / n_bins for i in range(1, n_bins)]
            hist = con.execute(
                grouped + ", e AS (SELECT quantile_cont(x, ?::DOUBLE[]) AS q FROM r WHERE x IS NOT NULL) "
                "SELECT grp, period, len(list_filter(e.q, lambda z: z <= x)) AS bin, count(*) AS c "
                "FROM g, e WHERE x IS NOT NULL GROUP BY ALL",
                gparams + [probs],
            ).pl()
            cdf = con.execute(
                grouped + ", h AS (SELECT grp, x, count(*) FILTER (WHERE period = 0) AS a, "
                "count(*) FILTER (WHERE period = 1) AS b FROM g WHERE x IS NOT NULL GROUP BY grp, x), "
                "c AS (SELECT grp, x, "
                "sum(a) OVER w / sum(a) OVER (PARTITION BY grp) AS fa, "
                "sum(b) OVER w / sum(b) OVER (PARTITION BY grp) AS fb, "
                "lead(x) OVER (PARTITION BY grp ORDER BY x) - x AS dx FROM h "
                "WINDOW w AS (PARTITION BY grp ORDER BY x ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) "
                "SELECT grp, max(abs(fa - fb)) AS ks, sum(abs(fa - fb) * coalesce(dx, 0)) AS w1 "
                "FROM c GROUP BY grp",
                gparams,
            ).pl()
            cdf_map = {r["grp"]: r for r in cdf.iter_rows(named=True)}
            key = "bin"
        else:
            hist = con.execute(
                grouped + "SELECT grp, period, x AS bin, count(*) AS c FROM g GROUP BY ALL", gparams
            ).pl()
            cdf_map = {}
            key = "bin"
        groups = [ALL] + sorted(g for g in hist["grp"].unique().to_list() if g != ALL)
        for grp in groups:
            h = (
                hist.filter(pl.col("grp") == grp)
                .group_by(key)
                .agg(pl.col("c").filter(pl.col("period") == 0).sum().alias("a"),
                     pl.col("c").filter(pl.col("period") == 1).sum().alias("b"))
                .sort(key)
            )
            a = h["a"].to_numpy().astype(float)
            b = h["b"].to_numpy().astype(float)
            row = {"feature": cov.name, "kind": cov.kind, "group": grp,
                   "n_baseline": int(a.sum()), "n_comparison": int(b.sum())}
            row.update(_counts_stats(a, b))
            ks = w1 = ksp = float("nan")
            if cov.kind == "numeric" and grp in cdf_map and a.sum() > 0 and b.sum() > 0:
                ks = float(cdf_map[grp]["ks"])
                w1 = float(cdf_map[grp]["w1"])
                ne = a.sum() * b.sum() / (a.sum() + b.sum())
                ksp = float(special.kolmogorov(np.sqrt(ne) * ks))
            row.update({"ks": ks, "ks_pvalue": ksp, "wasserstein": w1})
            out.append(row)
    return pl.DataFrame(out, schema=_SCHEMA) if out else pl.DataFrame(schema=_SCHEMA)
