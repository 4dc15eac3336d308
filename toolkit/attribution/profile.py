"""Profiles of the covariates: quantiles, minima, skewness and levels in a few scans.

The rows are counted per categorical level and per distinct value of each
numeric covariate; quantile edges (bit for bit DuckDB's ``quantile_cont``),
minima, skewness and the drift statistics all come from those counts, so the
rows are read a fixed number of times whatever the number of bins asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import polars as pl

from ..engine.keys import Dialect, finite_value_sql, text_type
from ..engine.run import Runner, runner_for
from ..errors import InputError
from ..sqlutil import quote_ident, table_columns
from ..timeutil import Window
from .metrics import VIEW, Metric
from .rows import MISSING, WherePairs, _filters, _is_numeric, _window_sql

# -- one pass per covariate: quantiles, minimum, skewness, levels ----------------

#: Quantile bins a profile serves by default: quintiles (the cell bins) and
#: deciles (the drift histogram and, from about 1000 rows per stratum, the
#: automatic matching bins).
PROFILE_BINS = (5, 10)
#: Numeric covariates with at most this many distinct values in the windows
#: (HyperLogLog estimate when there are more rows) are counted per distinct
#: value: their quantiles, minimum and skewness, and the drift statistics,
#: come from those counts. Above it, values are counted rounded to
#: :data:`~toolkit.attribution.rounded.ROUND_DIGITS` significant digits, plus the exact values of the few
#: buckets holding the quantiles (which stay exact); the drift's
#: Kolmogorov-Smirnov and Wasserstein statistics then use the rounded values.
EXACT_MAX_DISTINCT = 1_000_000


def _probs(ks: Sequence[int]) -> list[float]:
    """Sorted distinct interior probabilities ``i / k`` of quantile bins ``k``."""
    return sorted({i / k for k in ks for i in range(1, k)})


def quantiles_from_counts(x: np.ndarray, counts: np.ndarray, probs: Sequence[float]) -> list[float | None]:
    """``quantile_cont`` of values ``x`` repeated ``counts`` times, exactly as DuckDB computes it.

    The quantile at ``q`` interpolates between the order statistics at
    ``floor((n - 1) q)`` and ``ceil((n - 1) q)`` as ``lo * (1 - d) + hi * d``.
    """
    keep = counts > 0
    x, counts = x[keep], counts[keep]
    if not len(x):
        return [None] * len(probs)
    order = np.argsort(x, kind="stable")
    x, cum = x[order], np.cumsum(counts[order])
    n = int(cum[-1])
    out: list[float | None] = []
    for q in probs:
        rn = (n - 1) * q
        f, c = math.floor(rn), math.ceil(rn)
        lo = float(x[np.searchsorted(cum, f, side="right")])
        if f == c:
            out.append(lo)
            continue
        hi = float(x[np.searchsorted(cum, c, side="right")])
        d = rn - f
        out.append(lo * (1 - d) + hi * d)
    return out


def _min(values: pl.Series) -> float | None:
    """Minimum of a numeric column as a float (None when it is empty or all null)."""
    v = values.min()
    if v is None:
        return None
    if not isinstance(v, (int, float)):
        raise TypeError(f"column {values.name!r} is not numeric: its minimum is {v!r}")
    return float(v)


def _skewness(x: np.ndarray, counts: np.ndarray) -> float | None:
    """Sample skewness of ``x`` repeated ``counts`` times (DuckDB's ``skewness`` formula)."""
    n = float(counts.sum())
    if n <= 2:
        return None
    s1, s2, s3 = float(np.sum(counts * x)), float(np.sum(counts * x * x)), float(np.sum(counts * x ** 3))
    t = 1 / n
    div = math.sqrt(max(t * (s2 - s1 * s1 * t), 0.0) ** 3)
    if div == 0:
        return float("nan")
    return math.sqrt(n * (n - 1)) / (n - 2) * t * (s3 - 3 * s2 * s1 * t + 2 * s1 ** 3 * t * t) / div


@dataclass(frozen=True)
class NumericProfile:
    """Order statistics of one numeric covariate over the rows of both windows.

    Attributes
    ----------
    pooled
        Probability -> quantile over the rows that count for the metric,
        each row once (a row in an overlap of the windows counts once).
    rows
        The same over the rows of both windows (a row in an overlap counts
        twice, as in :func:`rows_sql`).
    min_all, skewness
        Minimum and skewness over every row in the windows (once each),
        whether or not it counts for the metric.
    min_rows
        Minimum over the rows of :func:`rows_sql`.
    distinct
        Number of distinct values over those rows (exact when ``counts`` is
        given, else a HyperLogLog estimate).
    counts
        The rows of :func:`rows_sql` per ``version``, ``period`` and value
        ``x`` (column ``c``), with ``at``: a value in the same quantile bins
        as those rows (``x`` itself when exact).
    digits
        None when ``x`` holds the exact values; else the significant digits
        they were rounded to (more than :data:`EXACT_MAX_DISTINCT` distinct values).
    """

    name: str
    pooled: Mapping[float, float | None]
    rows: Mapping[float, float | None]
    min_all: float | None
    min_rows: float | None
    skewness: float | None
    distinct: int
    counts: pl.DataFrame | None = None
    digits: int | None = None


@dataclass(frozen=True)
class Profile:
    """What building cells, matching and drift need to know of each covariate.

    A few scans replace the per-use queries: one counts the rows of every
    categorical level per (version, period), one counts the rows per
    distinct value of every numeric covariate with not too many of them
    (quantiles, minimum, skewness and drift statistics then come from the
    counts), and each remaining numeric covariate gets one ``quantile_cont``
    pass serving all the bins asked for.

    Attributes
    ----------
    numeric
        Name -> :class:`NumericProfile`.
    levels
        Name -> (level, rows) of a categorical covariate over every row in
        the windows (once each, NULL left out), most frequent first, ties by level.
    excluded
        Per period and resolved version (``period``, ``version``, ``excluded``,
        ``rows``): the rows in the window and those that do not count for the
        metric (for accuracy-type metrics: the rows without a label yet).
    level_counts
        Name -> rows of :func:`rows_sql` per ``version``, ``period`` and
        ``level`` (NULL as ``(missing)``), column ``c``.
    version_rows
        (period, version) -> rows that count for the metric (as :func:`rows_sql` yields them).
    moments
        Name -> (mean, standard deviation, any value missing) of a numeric
        covariate over the rows that count (NaN and infinities missing).
    """

    numeric: Mapping[str, NumericProfile]
    levels: Mapping[str, tuple[tuple[str, int], ...]]
    excluded: pl.DataFrame
    level_counts: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    version_rows: Mapping[tuple[int, str], int] = field(default_factory=dict)
    moments: Mapping[str, tuple[float, float, bool]] = field(default_factory=dict)

    def serves(self, name: str, k: int) -> bool:
        """Whether the quantiles of ``k`` bins of ``name`` are known."""
        p = self.numeric.get(name)
        return p is not None and all(i / k in p.pooled for i in range(1, k))

    def quantiles(self, name: str, k: int, *, rows: bool) -> list[float | None] | None:
        """The ``k - 1`` interior quantiles of ``name`` (None without values)."""
        p = self.numeric[name]
        table = p.rows if rows else p.pooled
        probs = [i / k for i in range(1, k)]
        if any(q not in table for q in probs):
            raise KeyError(f"the profile of {name!r} lacks the quantiles of {k} bins")
        vals = [table[q] for q in probs]
        return None if probs and all(v is None for v in vals) else vals

    def edges(self, name: str, k: int) -> list[float]:
        """Interior edges of ``k`` quantile bins over both windows (as :func:`quantile_edges`)."""
        if k <= 1:
            return []
        q = self.quantiles(name, k, rows=True)
        lo = self.numeric[name].min_rows
        if q is None or lo is None:  # no values (min_rows is None only then)
            return []
        return sorted({float(e) for e in q if e is not None and e > lo})


def _check(con: duckdb.DuckDBPyConnection, metric: Metric, covariates: Sequence[str]) -> dict[str, str]:
    """Check the metric and the covariates against the store; return the view's column types."""
    metric.check(con)
    cols = table_columns(con, VIEW)
    for name in covariates:
        if name not in cols:
            raise InputError(f"unknown covariate {name!r}; the predictions have: {', '.join(sorted(cols))}")
        if name in ("resolved_version", "model_version") or (metric.kind != "accuracy" and name == metric.column):
            raise InputError(f"{name!r} cannot be a covariate of metric {metric.spec!r}: drop it from --covariates")
    if len(set(covariates)) != len(covariates):
        raise InputError("a covariate is listed twice: list each once")
    return cols


def _profile_source(metric: Metric, baseline: Window, comparison: Window, select: Sequence[str],
                    where: WherePairs, include_shadow: bool, dialect: Dialect = "duckdb") -> tuple[str, list]:
    """Rows of both windows (the metric filter not applied) with ``period``, ``valid`` and ``dup``.

    ``valid``: the row counts for the metric; ``dup``: a comparison row that
    also lies in the baseline window (so ``NOT dup`` counts every row once).
    ``dialect``: the engine the text is for.
    """
    filt_sql, filt_params = _filters(where, include_shadow, dialect)
    if metric.dialect != dialect:
        metric = replace(metric, dialect=dialect)
    _, valid_sql, _ = metric.sql()
    extra = "".join(", " + s for s in select)
    parts, params = [], []
    for period, w in ((0, baseline), (1, comparison)):
        dup = "FALSE" if period == 0 else _window_sql()
        parts.append(f"SELECT {period} AS period, coalesce({valid_sql}, FALSE) AS valid, {dup} AS dup{extra} "
                     f"FROM {VIEW} WHERE {_window_sql()} AND {filt_sql}")
        params += ([] if period == 0 else [baseline.start, baseline.end]) + [w.start, w.end] + filt_params
    return " UNION ALL ".join(parts), params


def profile_covariates(
    con: duckdb.DuckDBPyConnection,
    metric: Metric,
    baseline: Window,
    comparison: Window,
    covariates: Sequence[str],
    *,
    where: WherePairs | None = None,
    include_shadow: bool = False,
    bins: Sequence[int] = PROFILE_BINS,
    exact_max_distinct: int = EXACT_MAX_DISTINCT,
    categorical: Sequence[str] = (),
    run: Runner | None = None,
) -> Profile:
    """Profile the covariates over the rows of both windows in a few scans.

    Parameters
    ----------
    covariates
        Covariate names; the column type decides numeric or categorical.
    bins
        Numbers of quantile bins to serve.
    exact_max_distinct
        Numeric covariates with at most this many distinct values are
        counted per value (see :data:`EXACT_MAX_DISTINCT`).
    categorical
        Numeric columns (integer codes) to profile as categorical levels.
    run
        Where the row passes run (default the store's DuckDB; ``con`` still
        serves the column types).
    """
    run = runner_for(con, run)
    cols = _check(con, metric, covariates)
    probs = _probs(bins)
    overlap = baseline.start < comparison.end and comparison.start < baseline.end
    categorical = [n for n in covariates if not _is_numeric(cols[n]) or n in categorical]
    numeric_names = [n for n in covariates if n not in categorical]
    scan = _Scan(run, metric, baseline, comparison, where or [], include_shadow)

    # 1. numeric covariates: counted per distinct value when there are not too many of them, else rounded
    # (the exact ones come first in the profile, in the order given, then the rounded ones)
    distinct, moments = _numeric_pass(scan, numeric_names, exact_max_distinct) if numeric_names else ({}, {})
    exact = [n for n in numeric_names if distinct[n] <= exact_max_distinct]

    # 2. one scan: rows per (version, period, valid, dup), per categorical level and per exact numeric value
    grouped = _count_rows(scan, categorical, exact)
    first = grouped.filter(pl.col("g__0") == 0) if categorical or exact else grouped
    levels, level_counts = _levels(grouped, categorical)
    numeric = {name: _exact_profile(name, grouped.filter((pl.col(f"g__{k}") == 0) & pl.col(f"x__{k}").is_not_null())
                                    .rename({f"x__{k}": "x"}).select("version", "period", "valid", "dup", "x", "c"),
                                    probs, overlap)
               for k, name in enumerate(exact, start=len(categorical))}
    coarse = [n for n in numeric_names if n not in numeric]
    if coarse:
        # imported here, not at the top: rounded.py builds this module's NumericProfile (and _profile_source)
        from .rounded import _profile_rounded

        numeric.update(_profile_rounded(run, metric, baseline, comparison, coarse, probs, overlap, distinct,
                                        scan.where, include_shadow))
    return Profile(numeric, levels, _excluded(first), level_counts, _version_rows(first), moments)


@dataclass(frozen=True)
class _Scan:
    """The rows one profile reads (engine, metric, windows, filters): every pass builds its source from it."""

    run: Runner
    metric: Metric
    baseline: Window
    comparison: Window
    where: WherePairs
    include_shadow: bool

    def source(self, select: Sequence[str]) -> tuple[str, list]:
        """:func:`_profile_source` of these rows with the columns ``select``, in the runner's dialect."""
        return _profile_source(self.metric, self.baseline, self.comparison, select, self.where,
                               self.include_shadow, self.run.dialect)


def _count_rows(scan: _Scan, categorical: Sequence[str], exact: Sequence[str]) -> pl.DataFrame:
    """Rows per (version, period, valid, dup), per categorical level and per exact numeric value, in one scan.

    One grouping set per covariate, categorical ones first: flag ``g__k`` 0
    in the rows of the k-th set, its level in ``c__k`` (text) or its value
    in ``x__k`` (a double). Without covariates a single grouping set. Any
    one set counts every row, so it also gives the totals.
    """
    dialect = scan.run.dialect
    keys = [quote_ident(f"c__{k}") for k in range(len(categorical))] + \
        [quote_ident(f"x__{k}") for k in range(len(categorical), len(categorical) + len(exact))]
    select = ["resolved_version AS version"] + \
        [f"CAST({quote_ident(n)} AS {text_type(dialect)}) AS {c}" for n, c in zip(categorical, keys, strict=False)] + \
        [f"CAST({quote_ident(n)} AS DOUBLE) AS {x}" for n, x in zip(exact, keys[len(categorical):], strict=True)]
    src, params = scan.source(select)
    sets = [f"(version, period, valid, dup, {c})" for c in keys] or ["(version, period, valid, dup)"]
    flags = [f"GROUPING({c}) AS {quote_ident(f'g__{k}')}" for k, c in enumerate(keys)]
    return scan.run.frame(
        f"SELECT {', '.join(flags + ['version', 'period', 'valid', 'dup'] + keys + ['count(*) AS c'])} "
        f"FROM ({src}) GROUP BY GROUPING SETS ({', '.join(sets)})", params,
    )


def _excluded(first: pl.DataFrame) -> pl.DataFrame:
    """Per period and version: the rows in the window and those that do not count for the metric."""
    return (first.group_by("period", "version")
            .agg(pl.col("c").filter(~pl.col("valid")).sum().alias("excluded"), pl.col("c").sum().alias("rows"))
            .select(pl.col("period").cast(pl.Int32), pl.col("version").cast(pl.Utf8),
                    pl.col("excluded").cast(pl.Int64), pl.col("rows").cast(pl.Int64))
            .sort("period", "version"))


def _levels(grouped: pl.DataFrame, categorical: Sequence[str]
            ) -> tuple[dict[str, tuple[tuple[str, int], ...]], dict[str, pl.DataFrame]]:
    """Each categorical covariate's levels (every row once, most frequent first) and its counts for drift.

    The levels count every row in the windows once (``NOT dup``, NULL left
    out); the drift counts only the rows that count for the metric, NULL as
    :data:`~toolkit.attribution.rows.MISSING`.
    """
    levels: dict[str, tuple[tuple[str, int], ...]] = {}
    level_counts: dict[str, pl.DataFrame] = {}
    for i, name in enumerate(categorical):
        g = grouped.filter(pl.col(f"g__{i}") == 0).rename({f"c__{i}": "level"})
        lv = g.filter(~pl.col("dup") & pl.col("level").is_not_null()).group_by("level").agg(pl.col("c").sum())
        levels[name] = tuple(sorted(((str(k), int(v)) for k, v in lv.iter_rows()), key=lambda kv: (-kv[1], kv[0])))
        level_counts[name] = (g.filter(pl.col("valid")).with_columns(pl.col("level").fill_null(MISSING))
                              .group_by(["version", "period", "level"]).agg(pl.col("c").sum()))
    return levels, level_counts


def _version_rows(first: pl.DataFrame) -> dict[tuple[int, str], int]:
    """(period, version) -> rows that count for the metric."""
    return {(int(t), str(v)): int(c) for t, v, c in
            first.filter(pl.col("valid")).group_by("period", "version").agg(pl.col("c").sum()).iter_rows()}


def _numeric_pass(scan: _Scan, names: Sequence[str], exact_max_distinct: int
                  ) -> tuple[dict[str, int], dict[str, tuple[float, float, bool]]]:
    """Distinct values and moments of the numeric covariates over the rows that count, in one scan.

    Distinct values: 0 for each when they are few. The scan counts the rows
    that count for the metric and estimates each covariate's distinct values
    (HyperLogLog). With at most ``exact_max_distinct`` rows no covariate can
    have more distinct values, so every one is counted exactly (0 here):
    the estimate decides only when there are more rows.

    Moments: per covariate its mean, standard deviation and whether a value
    is missing (NaN and infinities read as missing), which standardise the
    regression's linear terms (:func:`~toolkit.attribution.design.build_design`).
    """
    dialect = scan.run.dialect
    sel = []
    for i, n in enumerate(names):
        x = f"CAST({quote_ident(n)} AS DOUBLE)"
        sel += [f"{x} AS {quote_ident(f'x__{i}')}", f"{finite_value_sql(x, dialect)} AS {quote_ident(f'f__{i}')}"]
    src, params = scan.source(sel)
    aggs = ["count(*) FILTER (WHERE valid)"]
    for i in range(len(names)):
        x, f = quote_ident(f"x__{i}"), quote_ident(f"f__{i}")
        # DuckDB's stddev_pop raises on a (rounding-)negative variance of a constant column
        aggs += [f"approx_count_distinct({x}) FILTER (WHERE valid)", f"avg({f}) FILTER (WHERE valid)",
                 f"avg({f} * {f}) FILTER (WHERE valid)", f"count({f}) FILTER (WHERE valid)"]
    counted = scan.run.frame(f"SELECT {', '.join(aggs)} FROM ({src})", params)
    if not counted.height:  # an aggregate query always yields one row
        raise RuntimeError("approx_count_distinct returned no row")
    n_valid, *row = counted.row(0)
    n_valid = int(n_valid or 0)
    distinct, moments = {}, {}
    for i, n in enumerate(names):
        d, mean, sq, present = row[4 * i: 4 * i + 4]
        distinct[n] = 0 if n_valid <= exact_max_distinct else int(d or 0)
        moments[n] = _moments(mean, sq, n_valid - int(present or 0) > 0)
    return distinct, moments


def _moments(mean: float | None, sq: float | None, missing: bool) -> tuple[float, float, bool]:
    """(mean, standard deviation, any value missing) from the mean and mean square; SD 1 for a constant."""
    mean = float(mean) if mean is not None else 0.0
    var = max(0.0, float(sq) - mean * mean) if sq is not None else 0.0
    sd = var ** 0.5
    sd = sd if sd > 1e-12 * max(1.0, abs(mean)) else 1.0
    return _settled(mean), _settled(sd), missing


def _settled(x: float) -> float:
    """``x`` to 10 significant digits (the standardisation needs no more).

    A parallel scan sums the rows in a varying order; the last bits of a mean it leaves would otherwise move
    the standardised terms, and with them a row at a matching-stratum edge, from one store or run to the next.
    """
    return float(f"{x:.10g}")


def _exact_profile(name: str, g: pl.DataFrame, probs: Sequence[float], overlap: bool) -> NumericProfile:
    """One numeric covariate's profile from its rows per (version, period, valid, dup, value ``x``).

    ``pooled`` counts each row that counts for the metric once; ``rows``
    counts a row in both windows twice, so it differs only when the windows
    overlap. Minimum and skewness are over every row, once.
    """
    once = g.filter(~pl.col("dup")).group_by("x").agg(pl.col("c").sum(), pl.col("c").filter(pl.col("valid"))
                                                      .sum().alias("cv"))
    valid = g.filter(pl.col("valid"))
    per_x = valid.group_by("x").agg(pl.col("c").sum())
    pooled = dict(zip(probs, quantiles_from_counts(once["x"].to_numpy(), once["cv"].to_numpy(), probs),
                      strict=False))
    rows = dict(zip(probs, quantiles_from_counts(per_x["x"].to_numpy(), per_x["c"].to_numpy(), probs),
                    strict=False)) \
        if overlap else pooled
    return NumericProfile(
        name, pooled, rows,
        min_all=_min(once["x"]),
        min_rows=_min(per_x["x"]),
        skewness=_skewness(once["x"].to_numpy(), once["c"].to_numpy().astype(float)),
        distinct=per_x.height,
        counts=valid.group_by(["version", "period", "x"]).agg(pl.col("c").sum())
        .with_columns(pl.col("x").alias("at")),
    )
