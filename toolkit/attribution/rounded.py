"""The profile of a numeric covariate with very many distinct values, from values rounded in SQL.

Above :data:`~toolkit.attribution.profile.EXACT_MAX_DISTINCT` distinct
values, :func:`~toolkit.attribution.profile.profile_covariates` counts the
rows per value rounded to :data:`ROUND_DIGITS` significant digits
(:func:`round_sql`) and reads the exact values of only the few buckets that
hold the quantiles' order statistics (:func:`_needed_buckets`,
:func:`_order_stats`), so the quantiles and minima stay exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from ..engine.keys import Dialect
from ..engine.keys import finite_sql as keys_finite_sql
from ..engine.run import Runner
from ..sqlutil import quote_ident
from ..timeutil import Window
from .metrics import Metric
from .profile import NumericProfile, _min, _profile_source
from .rows import WherePairs

#: Significant digits of the values counted above :data:`~toolkit.attribution.profile.EXACT_MAX_DISTINCT`.
ROUND_DIGITS = 4


def round_sql(x: str, digits: int = ROUND_DIGITS, dialect: Dialect = "duckdb") -> str:
    """SQL of ``x`` rounded to ``digits`` significant digits.

    DuckDB's ``round(x, d)``: ``round(x * 10^d) / 10^d`` (``round(x / 10^-d) * 10^-d``
    for a negative ``d``), halves away from zero; zero and non-finite values
    kept. Monotone in ``x``. Spark's ``round`` takes only a constant scale,
    so for Spark the same arithmetic is written out (``round`` to an integer
    is half away from zero there too, and both engines' ``power(10, d)`` are
    exact), which gives the same buckets.
    """
    keep = f"{x} = 0 OR NOT {keys_finite_sql(x, dialect)}"
    d = f"({digits - 1} - CAST(floor(log10(abs({x}))) AS INTEGER))"
    if dialect == "duckdb":
        return f"CASE WHEN {keep} THEN {x} ELSE round({x}, {d}) END"
    return (f"CASE WHEN {keep} THEN {x} WHEN {d} >= 0 THEN round({x} * power(10, {d})) / power(10, {d}) "
            f"ELSE round({x} / power(10, -{d})) * power(10, -{d}) END")


def _order_stats(buckets: pl.DataFrame, exact: pl.DataFrame, probs: Sequence[float]) -> list[float | None]:
    """``quantile_cont`` from rows counted per rounded value (``r``, ``c``).

    The exact values (``r``, ``x``, ``c``) of the buckets that hold the order
    statistics place the quantiles inside them.
    """
    b = buckets.group_by("r").agg(pl.col("c").sum()).filter(pl.col("c") > 0).sort("r")
    if not b.height:
        return [None] * len(probs)
    r, cum = b["r"].to_numpy(), np.cumsum(b["c"].to_numpy())
    n = int(cum[-1])

    def stat(j: int) -> float:
        k = int(np.searchsorted(cum, j, side="right"))
        inside = exact.filter(pl.col("r") == r[k]).group_by("x").agg(pl.col("c").sum()).sort("x")
        offset = j - (int(cum[k - 1]) if k else 0)
        return float(inside["x"][int(np.searchsorted(np.cumsum(inside["c"].to_numpy()), offset, side="right"))])

    out: list[float | None] = []
    for q in probs:
        rn = (n - 1) * q
        f, c = math.floor(rn), math.ceil(rn)
        lo = stat(f)
        if f == c:
            out.append(lo)
        else:
            d = rn - f
            out.append(lo * (1 - d) + stat(c) * d)
    return out


def _needed_buckets(buckets: pl.DataFrame, probs: Sequence[float]) -> set[float]:
    """Rounded values whose buckets hold the order statistics of ``probs`` (and the smallest one)."""
    b = buckets.group_by("r").agg(pl.col("c").sum()).filter(pl.col("c") > 0).sort("r")
    if not b.height:
        return set()
    r, cum = b["r"].to_numpy(), np.cumsum(b["c"].to_numpy())
    n = int(cum[-1])
    js = {j for q in probs for j in (math.floor((n - 1) * q), math.ceil((n - 1) * q))}
    return {float(r[int(np.searchsorted(cum, j, side="right"))]) for j in js}


def _profile_rounded(run: Runner, metric: Metric, baseline: Window, comparison: Window,
                     names: Sequence[str], probs: Sequence[float], overlap: bool, distinct: Mapping[str, int],
                     where: WherePairs, include_shadow: bool) -> dict[str, NumericProfile]:
    """Profiles of numeric covariates with very many distinct values, in two scans.

    The first counts the rows per value rounded to :data:`ROUND_DIGITS`
    significant digits (with each bucket's exact minimum and power sums);
    the second reads the exact values of the few buckets that hold the
    order statistics of the quantiles. The quantiles and minima are exact,
    the skewness exact up to the order of summation; the drift's KS and
    Wasserstein use the rounded values.
    """
    dialect = run.dialect
    casts = [f"CAST({quote_ident(n)} AS DOUBLE)" for n in names]
    sel = ["resolved_version AS version"]
    for i, x in enumerate(casts):
        sel += [f"{x} AS {quote_ident(f'x__{i}')}", f"{round_sql(x, dialect=dialect)} AS {quote_ident(f'r__{i}')}"]
    src, params = _profile_source(metric, baseline, comparison, sel, where, include_shadow, dialect)
    keys = ["version", "period", "valid", "dup"]
    key_list = ", ".join(keys)
    flags = [f"GROUPING({quote_ident(f'r__{i}')}) AS {quote_ident(f'g__{i}')}" for i in range(len(names))]
    aggs = []
    for i in range(len(names)):
        x = quote_ident(f"x__{i}")
        aggs += [f"min({x}) AS {quote_ident(f'mn__{i}')}", f"sum({x}) AS {quote_ident(f's1__{i}')}",
                 f"sum({x} * {x}) AS {quote_ident(f's2__{i}')}", f"sum({x} * {x} * {x}) AS {quote_ident(f's3__{i}')}"]
    rcols = [quote_ident(f"r__{i}") for i in range(len(names))]
    first = run.frame(
        f"SELECT {', '.join(flags + keys + rcols + aggs)}, count(*) AS c FROM ({src}) "
        f"GROUP BY GROUPING SETS ({', '.join(f'({key_list}, {r})' for r in rcols)})", params,
    )
    per: list[pl.DataFrame] = []
    need: list[list[float]] = []
    for i in range(len(names)):
        g = (first.filter((pl.col(f"g__{i}") == 0) & pl.col(f"r__{i}").is_not_null())
             .select(keys + [pl.col(f"r__{i}").alias("r"), pl.col(f"mn__{i}").alias("mn"),
                             pl.col(f"s1__{i}").alias("s1"), pl.col(f"s2__{i}").alias("s2"),
                             pl.col(f"s3__{i}").alias("s3"), "c"]))
        per.append(g)
        once_valid = g.filter(pl.col("valid") & ~pl.col("dup"))
        valid = g.filter(pl.col("valid"))
        need.append(sorted(_needed_buckets(once_valid, probs) | _needed_buckets(valid, probs)))
    # exact values in the needed buckets, per set (an IN list of bound values: the same text on both engines)
    def in_need(i: int) -> str:
        if not need[i]:
            return "FALSE"
        return f"{quote_ident(f'r__{i}')} IN ({', '.join('?' for _ in need[i])})"
    xcols = [f"CASE WHEN {in_need(i)} THEN {quote_ident(f'x__{i}')} END "
             f"AS {quote_ident(f'e__{i}')}" for i in range(len(names))]
    ecols = [quote_ident(f"e__{i}") for i in range(len(names))]
    flags2 = [f"GROUPING({e}) AS {quote_ident(f'g__{i}')}" for i, e in enumerate(ecols)]
    second = run.frame(
        f"SELECT {', '.join(flags2 + keys + rcols + ecols)}, count(*) AS c FROM "
        f"(SELECT *, {', '.join(xcols)} FROM ({src})) "
        f"WHERE {' OR '.join(f'{e} IS NOT NULL' for e in ecols)} "
        f"GROUP BY GROUPING SETS ({', '.join(f'({key_list}, {r}, {e})' for r, e in zip(rcols, ecols, strict=False))})",
        [x for vals in need for x in vals] + params,
    )
    out: dict[str, NumericProfile] = {}
    for i, name in enumerate(names):
        g = per[i]
        e = (second.filter((pl.col(f"g__{i}") == 0) & pl.col(f"e__{i}").is_not_null())
             .select(keys + [pl.col(f"r__{i}").alias("r"), pl.col(f"e__{i}").alias("x"), "c"]))
        pooled = dict(zip(probs, _order_stats(g.filter(pl.col("valid") & ~pl.col("dup")),
                                              e.filter(pl.col("valid") & ~pl.col("dup")), probs), strict=False))
        rows = dict(zip(probs, _order_stats(g.filter(pl.col("valid")), e.filter(pl.col("valid")), probs),
                        strict=False)) \
            if overlap else pooled
        once = g.filter(~pl.col("dup"))
        valid = g.filter(pl.col("valid"))
        n = float(once["c"].sum())
        skew = None
        if n > 2:
            s1, s2, s3 = (float(once[s].sum()) for s in ("s1", "s2", "s3"))
            t = 1 / n
            div = math.sqrt(max(t * (s2 - s1 * s1 * t), 0.0) ** 3)
            skew = float("nan") if div == 0 else \
                math.sqrt(n * (n - 1)) / (n - 2) * t * (s3 - 3 * s2 * s1 * t + 2 * s1 ** 3 * t * t) / div
        # drift counts at the rounded values; ``at`` places each row in the histogram bins: a bucket
        # that holds no order statistic lies wholly on one side of every quantile, so its minimum does
        split = e.filter(pl.col("valid")).group_by(["version", "period", "r", "x"]).agg(pl.col("c").sum())
        whole = valid.filter(~pl.col("r").is_in(need[i])).group_by(["version", "period", "r"]).agg(
            pl.col("c").sum(), pl.col("mn").min().alias("at"))
        counts = pl.concat([whole.select("version", "period", pl.col("r").alias("x"), "c", "at"),
                            split.select("version", "period", pl.col("r").alias("x"), "c", pl.col("x").alias("at"))])
        out[name] = NumericProfile(
            name, pooled, rows,
            min_all=_min(once["mn"]),
            min_rows=_min(valid["mn"]),
            skewness=skew, distinct=distinct[name], counts=counts, digits=ROUND_DIGITS)
    return out


