"""SQL aggregations from prediction rows to cells.

A cell is (period x stratum x resolved version) with the count ``n``, the sum
of the metric ``sy`` and of its square ``syy``, and for every numeric
covariate the sum and sum of squares of its raw values. Every estimator in
this package works on these cells, so its cost grows with the number of
cells, not rows (DESIGN.md section 5).

The rows are read a fixed, small number of times: :func:`profile_covariates`
counts the rows per categorical level and per distinct value of each numeric
covariate (bin edges, transforms and drift statistics come from those
counts), and :func:`build_cell_tables` aggregates the cells of every binning
(strata, matching) in one GROUP BY on their common refinement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import duckdb
import numpy as np
import polars as pl

from ..errors import InputError, NotApplicable
from ..sqlutil import quote_ident, table_columns
from ..timeutil import Window
from .metrics import VIEW, Metric

CovKind = Literal["categorical", "numeric"]

_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")
#: Columns that are never covariates (identity, version, metric plumbing).
_RESERVED = {"request_id", "ts", "model_version", "resolved_version", "version_status", "artifact_hash",
             "ingest_id", "prediction", "outcome", "score", "component", "entity_id", "instance_id",
             "expected_feature_version"}
MISSING = "(missing)"
OTHER = "(other)"


@dataclass(frozen=True)
class Covariate:
    """A covariate as used for stratification.

    Parameters
    ----------
    name
        Column of ``predictions_resolved``.
    kind
        ``numeric`` columns are binned at ``edges`` (quantiles of the pooled
        windows); ``categorical`` columns keep their values, except that
        levels beyond ``max_levels`` are lumped into ``(other)``.
    edges
        Interior bin edges of a numeric covariate (bin i is
        ``[edges[i-1], edges[i])``).
    kept_levels
        For a categorical covariate with too many levels, the levels kept.
    transform
        Scale on which the regression method models a numeric covariate:
        ``log1p`` for non-negative covariates with pooled skewness above 1
        (amounts, ages, counts), else ``identity``.
    """

    name: str
    kind: CovKind
    edges: tuple[float, ...] = ()
    kept_levels: tuple[str, ...] | None = None
    transform: Literal["identity", "log1p"] = "identity"

    def bin_labels(self) -> list[str]:
        """Labels of the numeric bins, in order."""
        e = self.edges
        if not e:
            return ["(-inf, inf)"]
        out = [f"(-inf, {e[0]:.4g})"]
        out += [f"[{a:.4g}, {b:.4g})" for a, b in zip(e[:-1], e[1:])]
        out.append(f"[{e[-1]:.4g}, inf)")
        return out


@dataclass(frozen=True)
class CellTable:
    """Cells of one attribution query.

    Attributes
    ----------
    frame
        One row per (period, stratum, version): ``period`` (0 baseline,
        1 comparison), one column per covariate holding its level or bin
        label, ``version``, ``n``, ``sy``, ``syy`` and ``sx__<cov>``,
        ``sxx__<cov>`` (sums of the raw values and their squares) and
        ``su__<cov>`` (sum of the value on the model scale: ``log(1 + x)``
        for non-negative right-skewed covariates, else ``x``) for numeric
        covariates.
    covariates
        The covariates and their bins.
    excluded
        Rows in the windows that do not count for the metric, per period
        and reason (``metric undefined``: NULL or a value that failed the cast).
    """

    frame: pl.DataFrame
    covariates: tuple[Covariate, ...]
    metric: Metric
    baseline: Window
    comparison: Window
    excluded: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.covariates]

    def arrays(self) -> "CellArrays":
        """Dense arrays indexed (period, stratum, version)."""
        return CellArrays.from_table(self)


@dataclass(frozen=True)
class CellArrays:
    """Dense (period, stratum, version) arrays of a :class:`CellTable`.

    Attributes
    ----------
    n, sy, syy
        Shape (2, S, V).
    strata
        Frame with one row per stratum (covariate level columns), in index order.
    versions
        Version labels, in index order.
    sx, sxx
        Shape (2, S, V, K) sums of the K numeric covariates.
    su
        Shape (2, S, V, K) sums of their values on the model scale
        (:attr:`Covariate.transform`).
    numeric
        Names of the K numeric covariates.
    """

    n: np.ndarray
    sy: np.ndarray
    syy: np.ndarray
    strata: pl.DataFrame
    versions: tuple[str, ...]
    sx: np.ndarray
    sxx: np.ndarray
    numeric: tuple[str, ...]
    su: np.ndarray | None = None

    @classmethod
    def from_table(cls, table: CellTable) -> "CellArrays":
        f = table.frame
        names = table.names
        if names:
            strata = f.select(names).unique(maintain_order=False).sort(names)
            strata = strata.with_row_index("_s")
            f = f.join(strata, on=names, how="left", nulls_equal=True)
        else:
            strata = pl.DataFrame({"_s": [0]}, schema={"_s": pl.UInt32})
            f = f.with_columns(pl.lit(0, dtype=pl.UInt32).alias("_s"))
        versions = tuple(sorted(f["version"].unique().to_list()))
        vidx = {v: i for i, v in enumerate(versions)}
        numeric = tuple(c.name for c in table.covariates if c.kind == "numeric")
        S, V, K = strata.height, len(versions), len(numeric)
        n = np.zeros((2, S, V))
        sy = np.zeros((2, S, V))
        syy = np.zeros((2, S, V))
        sx = np.zeros((2, S, V, K))
        sxx = np.zeros((2, S, V, K))
        su = np.zeros((2, S, V, K))
        t = f["period"].to_numpy().astype(int)
        s = f["_s"].to_numpy().astype(int)
        v = np.array([vidx[x] for x in f["version"].to_list()], dtype=int)
        np.add.at(n, (t, s, v), f["n"].to_numpy().astype(float))
        np.add.at(sy, (t, s, v), f["sy"].to_numpy().astype(float))
        np.add.at(syy, (t, s, v), f["syy"].to_numpy().astype(float))
        for k, name in enumerate(numeric):
            np.add.at(sx[..., k], (t, s, v), f[f"sx__{name}"].fill_null(0).to_numpy().astype(float))
            np.add.at(sxx[..., k], (t, s, v), f[f"sxx__{name}"].fill_null(0).to_numpy().astype(float))
            np.add.at(su[..., k], (t, s, v), f[f"su__{name}"].fill_null(0).to_numpy().astype(float))
        return cls(n, sy, syy, strata.drop("_s"), versions, sx, sxx, numeric, su)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n.shape[1], self.n.shape[2]


# -- building ------------------------------------------------------------------

def _window_sql(alias_ts: str = '"ts"') -> str:
    return f"({alias_ts} >= ? AND {alias_ts} < ?)"


def normalise_where(where: "Mapping[str, object] | Sequence[str] | None",
                    con: duckdb.DuckDBPyConnection) -> list[tuple[str, "str | tuple[str, ...]"]]:
    """Turn ``{"region": "eu"}``, ``{"region": ["eu", "us"]}`` or ``["region=eu"]`` into checked pairs.

    A list of values matches any of them; values are compared as text.
    """
    if where is None:
        return []
    pairs: list[tuple[str, "str | tuple[str, ...]"]] = []
    if isinstance(where, Mapping):
        for k, v in where.items():
            if isinstance(v, (list, tuple, set, frozenset)):
                vals = tuple(sorted(str(x) for x in v)) if isinstance(v, (set, frozenset)) else tuple(str(x) for x in v)
                if not vals:
                    raise InputError(f"filter {k!r} has an empty list of values: give at least one")
                pairs.append((str(k), vals))
            elif v is None or isinstance(v, (dict, bytes)):
                raise InputError(f"filter {k!r}: give a value or a list of values, got {type(v).__name__}")
            else:
                pairs.append((str(k), str(v)))
    elif isinstance(where, (str, list, tuple)):
        if isinstance(where, str):
            where = [where]
        for item in where:
            col, eq, val = str(item).partition("=")
            if not eq or not col:
                raise InputError(f"cannot read filter {item!r}: write it as column=value, e.g. region=eu")
            pairs.append((col.strip(), val))
    else:
        raise InputError(f"where must be a mapping such as {{'region': 'eu'}} or a list of 'column=value', "
                         f"got {type(where).__name__}")
    cols = table_columns(con, VIEW)
    for col, _ in pairs:
        if col not in cols:
            raise InputError(f"unknown filter column {col!r}; the predictions have: {', '.join(sorted(cols))}")
    return pairs


def default_covariates(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every declared covariate column plus ``region`` when any row has one."""
    names = [r[0] for r in con.execute("SELECT name FROM covariates ORDER BY name").fetchall()]
    cols = table_columns(con, VIEW)
    names = [n for n in names if n in cols and n not in _RESERVED]
    has_region = con.execute(f"SELECT EXISTS (SELECT 1 FROM {VIEW} WHERE region IS NOT NULL)").fetchone()[0]
    if has_region and "region" not in names:
        names.append("region")
    return names


def _filters(pairs: "Sequence[tuple[str, str | tuple[str, ...]]]", include_shadow: bool) -> tuple[str, list]:
    parts, params = [], []
    if not include_shadow:
        parts.append("coalesce(\"component\", 'online') <> 'shadow'")
    for col, val in pairs:
        if isinstance(val, tuple):
            parts.append(f"CAST({quote_ident(col)} AS VARCHAR) IN ({', '.join('?' for _ in val)})")
            params += list(val)
        else:
            parts.append(f"CAST({quote_ident(col)} AS VARCHAR) = ?")
            params.append(val)
    return (" AND ".join(parts) if parts else "TRUE"), params


def rows_sql(
    metric: Metric,
    baseline: Window,
    comparison: Window,
    *,
    where: list[tuple[str, str]] | None = None,
    include_shadow: bool = False,
    select: Sequence[str] = (),
    select_params: Sequence = (),
) -> tuple[str, list]:
    """SQL of the rows of both windows that count for the metric.

    Yields ``period`` (0 baseline, 1 comparison; rows in an overlap appear in
    both), ``version`` (the resolved version), ``y`` (the metric value) and
    the extra ``select`` expressions (built from quoted identifiers only;
    their ``?`` take ``select_params``).
    """
    filt_sql, filt_params = _filters(where or [], include_shadow)
    value_sql, valid_sql, value_params = metric.sql()
    extra = (", " + ", ".join(select)) if select else ""
    one = (
        f"SELECT ? AS period, resolved_version AS version, {value_sql} AS y{extra} "
        f"FROM {VIEW} WHERE {_window_sql()} AND {valid_sql} AND {filt_sql}"
    )
    params: list = []
    for period, w in ((0, baseline), (1, comparison)):
        params += [period] + list(value_params) + list(select_params) + [w.start, w.end] + filt_params
    return f"{one} UNION ALL {one}", params


def numeric_range(con: duckdb.DuckDBPyConnection, metric: Metric, baseline: Window, comparison: Window,
                  name: str, *, where: list[tuple[str, str]] | None = None,
                  include_shadow: bool = False) -> tuple[float | None, float | None, int]:
    """(min, max, count) of a numeric covariate over the rows of both windows."""
    sql, params = rows_sql(metric, baseline, comparison, where=where, include_shadow=include_shadow,
                           select=[f"CAST({quote_ident(name)} AS DOUBLE) AS x"])
    row = con.execute(f"SELECT min(x), max(x), count(x) FROM ({sql})", params).fetchone()
    return row[0], row[1], int(row[2])


def quantile_edges(con: duckdb.DuckDBPyConnection, metric: Metric, baseline: Window, comparison: Window,
                   name: str, k: int, *, where: list[tuple[str, str]] | None = None,
                   include_shadow: bool = False, profile: "Profile | None" = None) -> list[float]:
    """Interior edges of ``k`` quantile bins of a numeric covariate over both windows (ties merged).

    With a ``profile`` of the same rows that serves ``k`` bins, no query is run.
    """
    if k <= 1:
        return []
    if profile is not None and profile.serves(name, k):
        return profile.edges(name, k)
    sql, params = rows_sql(metric, baseline, comparison, where=where, include_shadow=include_shadow,
                           select=[f"CAST({quote_ident(name)} AS DOUBLE) AS x"])
    row = con.execute(f"SELECT quantile_cont(x, ?::DOUBLE[]), min(x) FROM ({sql})",
                      [[i / k for i in range(1, k)]] + params).fetchone()
    if row[0] is None:
        return []
    return sorted({float(e) for e in row[0] if e is not None and e > row[1]})


# -- one pass per covariate: quantiles, minimum, skewness, levels ----------------

#: Quantile bins a profile serves by default: quintiles (the cell bins) and
#: deciles (the drift histogram and, from about 1000 rows per stratum, the
#: automatic matching bins).
PROFILE_BINS = (5, 10)
#: Numeric covariates with at most this many distinct values in the windows
#: (HyperLogLog estimate when there are more rows) are counted per distinct
#: value: their quantiles, minimum and skewness, and the drift statistics,
#: come from those counts. Above it, values are counted rounded to
#: :data:`ROUND_DIGITS` significant digits, plus the exact values of the few
#: buckets holding the quantiles (which stay exact); the drift's
#: Kolmogorov-Smirnov and Wasserstein statistics then use the rounded values.
EXACT_MAX_DISTINCT = 1_000_000
#: Significant digits of the values counted above :data:`EXACT_MAX_DISTINCT`.
ROUND_DIGITS = 4


def _probs(ks: "Sequence[int]") -> list[float]:
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
        Per period (``period``, ``excluded``, ``rows``): the rows in the
        window and those that do not count for the metric.
    level_counts
        Name -> rows of :func:`rows_sql` per ``version``, ``period`` and
        ``level`` (NULL as ``(missing)``), column ``c``.
    """

    numeric: Mapping[str, NumericProfile]
    levels: Mapping[str, tuple[tuple[str, int], ...]]
    excluded: pl.DataFrame
    level_counts: Mapping[str, pl.DataFrame] = field(default_factory=dict)

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
        if q is None:
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


def profile_bins(bins: "int | Mapping[str, Sequence[float]]",
                 matched_bins: "int | Mapping[str, Sequence[float]] | None" = None) -> list[int]:
    """Quantile bins an attribution reads from its profile: the strata's, the drift deciles, matching's."""
    out = {int(bins) if not isinstance(bins, Mapping) else 5, 10}
    if matched_bins is not None and not isinstance(matched_bins, Mapping):
        out.add(int(matched_bins))
    return sorted(out)


def matching_edges(con: duckdb.DuckDBPyConnection, metric: Metric, baseline: Window, comparison: Window,
                   profile: Profile, matched_bins: "int | Mapping[str, Sequence[float]] | None", k_auto: int, *,
                   where: list[tuple[str, str]] | None = None, include_shadow: bool = False) -> dict[str, list[float]]:
    """Interior edges of the matching bins of every numeric covariate of ``profile``.

    Given edges win; else ``matched_bins`` quantile bins when it is a
    number, else ``k_auto`` (quantiles over both windows, as :func:`quantile_edges`).
    """
    out: dict[str, list[float]] = {}
    for name in profile.numeric:
        if isinstance(matched_bins, Mapping) and name in matched_bins:
            out[name] = sorted(float(e) for e in matched_bins[name])
            continue
        k = int(matched_bins) if matched_bins is not None and not isinstance(matched_bins, Mapping) else k_auto
        out[name] = quantile_edges(con, metric, baseline, comparison, name, k, where=where,
                                   include_shadow=include_shadow, profile=profile)
    return out


def _profile_source(metric: Metric, baseline: Window, comparison: Window, select: Sequence[str],
                    where: list[tuple[str, str]], include_shadow: bool) -> tuple[str, list]:
    """Rows of both windows (the metric filter not applied) with ``period``, ``valid`` and ``dup``.

    ``valid``: the row counts for the metric; ``dup``: a comparison row that
    also lies in the baseline window (so ``NOT dup`` counts every row once).
    """
    filt_sql, filt_params = _filters(where, include_shadow)
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
    where: list[tuple[str, str]] | None = None,
    include_shadow: bool = False,
    bins: "Sequence[int]" = PROFILE_BINS,
    exact_max_distinct: int = EXACT_MAX_DISTINCT,
    categorical: Sequence[str] = (),
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
    """
    where = where or []
    cols = _check(con, metric, covariates)
    probs = _probs(bins)
    overlap = baseline.start < comparison.end and comparison.start < baseline.end
    categorical = [n for n in covariates if not _is_numeric(cols[n]) or n in categorical]
    numeric_names = [n for n in covariates if n not in categorical]

    # 1. rows per (version, period, counts?, overlap duplicate) and every categorical level
    cat = [quote_ident(f"c__{i}") for i in range(len(categorical))]
    select = ["resolved_version AS version"] + [f"CAST({quote_ident(n)} AS VARCHAR) AS {c}"
                                                 for n, c in zip(categorical, cat)]
    src, params = _profile_source(metric, baseline, comparison, select, where, include_shadow)
    sets = [f"(version, period, valid, dup, {c})" for c in cat] or ["(version, period, valid, dup)"]
    flags = [f"GROUPING({c}) AS {quote_ident(f'g__{i}')}" for i, c in enumerate(cat)]
    grouped = con.execute(
        f"SELECT {', '.join(flags + ['version', 'period', 'valid', 'dup'] + cat + ['count(*) AS c'])} "
        f"FROM ({src}) GROUP BY GROUPING SETS ({', '.join(sets)})", params,
    ).pl()
    first = grouped.filter(pl.col("g__0") == 0) if cat else grouped
    excluded = pl.DataFrame(
        {"period": [0, 1],
         "excluded": [int(first.filter((pl.col("period") == t) & ~pl.col("valid"))["c"].sum()) for t in (0, 1)],
         "rows": [int(first.filter(pl.col("period") == t)["c"].sum()) for t in (0, 1)]},
        schema={"period": pl.Int32, "excluded": pl.Int64, "rows": pl.Int64})
    levels: dict[str, tuple[tuple[str, int], ...]] = {}
    level_counts: dict[str, pl.DataFrame] = {}
    for i, name in enumerate(categorical):
        g = grouped.filter(pl.col(f"g__{i}") == 0).rename({f"c__{i}": "level"})
        lv = g.filter(~pl.col("dup") & pl.col("level").is_not_null()).group_by("level").agg(pl.col("c").sum())
        levels[name] = tuple(sorted(((str(k), int(v)) for k, v in lv.iter_rows()), key=lambda kv: (-kv[1], kv[0])))
        level_counts[name] = (g.filter(pl.col("valid")).with_columns(pl.col("level").fill_null(MISSING))
                              .group_by(["version", "period", "level"]).agg(pl.col("c").sum()))

    # 2. numeric covariates: per distinct value when there are not too many of them
    n_valid = int(first.filter(pl.col("valid"))["c"].sum())
    distinct = {n: 0 for n in numeric_names}
    if numeric_names and n_valid > exact_max_distinct:
        sel = [f"CAST({quote_ident(n)} AS DOUBLE) AS {quote_ident(f'x__{i}')}" for i, n in enumerate(numeric_names)]
        src, params = _profile_source(metric, baseline, comparison, sel, where, include_shadow)
        row = con.execute("SELECT " + ", ".join(f"approx_count_distinct({quote_ident(f'x__{i}')}) FILTER (WHERE valid)"
                                                for i in range(len(numeric_names))) + f" FROM ({src})", params).fetchone()
        distinct = {n: int(d or 0) for n, d in zip(numeric_names, row)}
    exact = [n for n in numeric_names if distinct[n] <= exact_max_distinct]
    numeric: dict[str, NumericProfile] = {}
    if exact:
        xs = [quote_ident(f"x__{i}") for i in range(len(exact))]
        sel = ["resolved_version AS version"] + [f"CAST({quote_ident(n)} AS DOUBLE) AS {x}" for n, x in zip(exact, xs)]
        src, params = _profile_source(metric, baseline, comparison, sel, where, include_shadow)
        flags = [f"GROUPING({x}) AS {quote_ident(f'g__{i}')}" for i, x in enumerate(xs)]
        grouped = con.execute(
            f"SELECT {', '.join(flags + ['version', 'period', 'valid', 'dup'] + xs + ['count(*) AS c'])} FROM ({src}) "
            f"GROUP BY GROUPING SETS ({', '.join(f'(version, period, valid, dup, {x})' for x in xs)})", params,
        ).pl()
        for i, name in enumerate(exact):
            g = grouped.filter((pl.col(f"g__{i}") == 0) & pl.col(f"x__{i}").is_not_null()).rename({f"x__{i}": "x"})
            g = g.select("version", "period", "valid", "dup", "x", "c")
            once = g.filter(~pl.col("dup")).group_by("x").agg(pl.col("c").sum(), pl.col("c").filter(pl.col("valid"))
                                                              .sum().alias("cv"))
            valid = g.filter(pl.col("valid"))
            per_x = valid.group_by("x").agg(pl.col("c").sum())
            pooled = dict(zip(probs, quantiles_from_counts(once["x"].to_numpy(), once["cv"].to_numpy(), probs)))
            rows = dict(zip(probs, quantiles_from_counts(per_x["x"].to_numpy(), per_x["c"].to_numpy(), probs))) \
                if overlap else pooled
            numeric[name] = NumericProfile(
                name, pooled, rows,
                min_all=float(once["x"].min()) if once.height else None,
                min_rows=float(per_x["x"].min()) if per_x.height else None,
                skewness=_skewness(once["x"].to_numpy(), once["c"].to_numpy().astype(float)),
                distinct=per_x.height,
                counts=valid.group_by(["version", "period", "x"]).agg(pl.col("c").sum())
                .with_columns(pl.col("x").alias("at")),
            )
    coarse = [n for n in numeric_names if n not in numeric]
    if coarse:
        numeric.update(_profile_rounded(con, metric, baseline, comparison, coarse, probs, overlap, distinct,
                                        where, include_shadow))
    return Profile(numeric, levels, excluded, level_counts)


def round_sql(x: str, digits: int = ROUND_DIGITS) -> str:
    """SQL of ``x`` rounded to ``digits`` significant digits (DuckDB's ``round``: halves of the
    scaled value away from zero; zero and non-finite values kept). Monotone in ``x``."""
    return (f"CASE WHEN {x} = 0 OR NOT isfinite({x}) THEN {x} "
            f"ELSE round({x}, {digits - 1} - CAST(floor(log10(abs({x}))) AS INTEGER)) END")


def _order_stats(buckets: pl.DataFrame, exact: pl.DataFrame, probs: Sequence[float]) -> list[float | None]:
    """``quantile_cont`` from rows counted per rounded value (``r``, ``c``), with the exact
    values (``r``, ``x``, ``c``) of the buckets that hold the order statistics."""
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


def _profile_rounded(con: duckdb.DuckDBPyConnection, metric: Metric, baseline: Window, comparison: Window,
                     names: Sequence[str], probs: Sequence[float], overlap: bool, distinct: Mapping[str, int],
                     where: list[tuple[str, str]], include_shadow: bool) -> dict[str, NumericProfile]:
    """Profiles of numeric covariates with very many distinct values, in two scans.

    The first counts the rows per value rounded to :data:`ROUND_DIGITS`
    significant digits (with each bucket's exact minimum and power sums);
    the second reads the exact values of the few buckets that hold the
    order statistics of the quantiles. The quantiles and minima are exact,
    the skewness exact up to the order of summation; the drift's KS and
    Wasserstein use the rounded values.
    """
    casts = [f"CAST({quote_ident(n)} AS DOUBLE)" for n in names]
    sel = ["resolved_version AS version"]
    for i, x in enumerate(casts):
        sel += [f"{x} AS {quote_ident(f'x__{i}')}", f"{round_sql(x)} AS {quote_ident(f'r__{i}')}"]
    src, params = _profile_source(metric, baseline, comparison, sel, where, include_shadow)
    keys = ["version", "period", "valid", "dup"]
    key_list = ", ".join(keys)
    flags = [f"GROUPING({quote_ident(f'r__{i}')}) AS {quote_ident(f'g__{i}')}" for i in range(len(names))]
    aggs = []
    for i in range(len(names)):
        x = quote_ident(f"x__{i}")
        aggs += [f"min({x}) AS {quote_ident(f'mn__{i}')}", f"sum({x}) AS {quote_ident(f's1__{i}')}",
                 f"sum({x} * {x}) AS {quote_ident(f's2__{i}')}", f"sum({x} * {x} * {x}) AS {quote_ident(f's3__{i}')}"]
    rcols = [quote_ident(f"r__{i}") for i in range(len(names))]
    first = con.execute(
        f"SELECT {', '.join(flags + keys + rcols + aggs)}, count(*) AS c FROM ({src}) "
        f"GROUP BY GROUPING SETS ({', '.join(f'({key_list}, {r})' for r in rcols)})", params,
    ).pl()
    per: list[pl.DataFrame] = []
    need: list[list[float]] = []
    for i in range(len(names)):
        g = (first.filter((pl.col(f"g__{i}") == 0) & pl.col(f"r__{i}").is_not_null())
             .select(keys + [pl.col(f"r__{i}").alias("r"), pl.col(f"mn__{i}").alias("mn"), pl.col(f"s1__{i}").alias("s1"),
                             pl.col(f"s2__{i}").alias("s2"), pl.col(f"s3__{i}").alias("s3"), "c"]))
        per.append(g)
        pooled = g.filter(pl.col("valid") & ~pl.col("dup"))
        valid = g.filter(pl.col("valid"))
        need.append(sorted(_needed_buckets(pooled, probs) | _needed_buckets(valid, probs)))
    # exact values in the needed buckets, per set
    xcols = [f"CASE WHEN list_contains(?::DOUBLE[], {quote_ident(f'r__{i}')}) THEN {quote_ident(f'x__{i}')} END "
             f"AS {quote_ident(f'e__{i}')}" for i in range(len(names))]
    ecols = [quote_ident(f"e__{i}") for i in range(len(names))]
    flags2 = [f"GROUPING({e}) AS {quote_ident(f'g__{i}')}" for i, e in enumerate(ecols)]
    second = con.execute(
        f"SELECT {', '.join(flags2 + keys + rcols + ecols)}, count(*) AS c FROM "
        f"(SELECT *, {', '.join(xcols)} FROM ({src})) "
        f"WHERE {' OR '.join(f'{e} IS NOT NULL' for e in ecols)} "
        f"GROUP BY GROUPING SETS ({', '.join(f'({key_list}, {r}, {e})' for r, e in zip(rcols, ecols))})",
        need + params,
    ).pl()
    out: dict[str, NumericProfile] = {}
    for i, name in enumerate(names):
        g = per[i]
        e = (second.filter((pl.col(f"g__{i}") == 0) & pl.col(f"e__{i}").is_not_null())
             .select(keys + [pl.col(f"r__{i}").alias("r"), pl.col(f"e__{i}").alias("x"), "c"]))
        pooled = dict(zip(probs, _order_stats(g.filter(pl.col("valid") & ~pl.col("dup")),
                                              e.filter(pl.col("valid") & ~pl.col("dup")), probs)))
        rows = dict(zip(probs, _order_stats(g.filter(pl.col("valid")), e.filter(pl.col("valid")), probs))) \
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
            min_all=float(once["mn"].min()) if once.height else None,
            min_rows=float(valid["mn"].min()) if valid.height else None,
            skewness=skew, distinct=distinct[name], counts=counts, digits=ROUND_DIGITS)
    return out


def _is_numeric(typ: str) -> bool:
    typ = typ.upper()
    return typ.startswith(_NUMERIC_TYPES) or typ.startswith("DECIMAL")


def build_cells(
    con: duckdb.DuckDBPyConnection,
    metric: Metric,
    baseline: Window,
    comparison: Window,
    covariates: Sequence[str],
    *,
    where: list[tuple[str, str]] | None = None,
    bins: int | Mapping[str, Sequence[float]] = 5,
    include_shadow: bool = False,
    max_levels: int = 30,
    profile: Profile | None = None,
) -> CellTable:
    """Aggregate the rows of both windows into cells with one SQL query.

    Parameters
    ----------
    con
        Connection to a store.
    metric
        What to measure.
    baseline, comparison
        Half-open windows of periods A and B (rows in an overlap count in both).
    covariates
        Columns to stratify on; numeric ones are binned.
    where
        Checked (column, value) filters.
    bins
        Number of quantile bins for every numeric covariate (edges from the
        pooled windows), or a mapping covariate -> interior edges.
    include_shadow
        Keep ``component = 'shadow'`` rows (excluded by default: they did not
        answer traffic).
    max_levels
        Categorical covariates with more levels keep the most frequent
        ``max_levels - 1`` and lump the rest into ``(other)``.
    profile
        A :func:`profile_covariates` of the same rows and covariates (scanned
        here when None or when it lacks the quantiles ``bins`` asks for).
    """
    return build_cell_tables(con, metric, baseline, comparison, covariates, where=where, bins=[bins],
                             include_shadow=include_shadow, max_levels=max_levels, profile=profile)[0]


def build_cell_tables(
    con: duckdb.DuckDBPyConnection,
    metric: Metric,
    baseline: Window,
    comparison: Window,
    covariates: Sequence[str],
    *,
    where: list[tuple[str, str]] | None = None,
    bins: "Sequence[int | Mapping[str, Sequence[float]]]" = (5,),
    include_shadow: bool = False,
    max_levels: int = 30,
    profile: Profile | None = None,
) -> tuple[CellTable, ...]:
    """Cells of the same rows under several binnings of the numeric covariates, in one scan.

    Every entry of ``bins`` (as in :func:`build_cells`) gives one
    :class:`CellTable`. The query groups the rows once by the bins of
    every binning together and each table sums its own bins from those
    groups, so the rows are read, projected and hashed once. Bins are
    computed as integers in SQL and labelled afterwards.
    """
    cols = _check(con, metric, covariates)
    if not bins:
        raise InputError("give at least one binning")
    where = where or []
    numeric_names = [n for n in covariates if _is_numeric(cols[n])]
    ks: set[int] = set()
    for b in bins:
        k = int(b) if not isinstance(b, Mapping) else 5
        if k < 1:
            raise InputError(f"bins must be at least 1, got {k}")
        if any(not (isinstance(b, Mapping) and n in b) for n in numeric_names):
            ks.add(k)
    if profile is None or not all(n in profile.numeric for n in numeric_names) \
            or not all(profile.serves(n, k) for n in numeric_names for k in ks) \
            or not all(n in profile.levels for n in covariates if n not in numeric_names):
        profile = profile_covariates(con, metric, baseline, comparison, covariates, where=where,
                                     include_shadow=include_shadow, bins=sorted(ks))
    specs_list = [_specs(covariates, numeric_names, profile, b, max_levels) for b in bins]
    specs = specs_list[0]

    fine = {c.name: sorted({e for sp in specs_list for e in sp[i].edges})
            for i, c in enumerate(specs) if c.kind == "numeric"}
    select_parts: list[str] = []
    select_params: list = []
    agg_parts: list[str] = []
    rank_parts: list[str] = []
    for i, c in enumerate(specs):
        q = quote_ident(c.name)
        if c.kind == "numeric":
            x = f"CAST({q} AS DOUBLE)"
            # fine bin: how many edges of any binning lie at or below the value (-1: missing); a
            # value above every edge (or NaN, which DuckDB sorts last) is in the last bin
            edges = fine[c.name]
            chain = "".join(f" WHEN {x} < ? THEN {j}" for j in range(len(edges)))
            select_parts.append(f"CASE WHEN {q} IS NULL THEN -1{chain} ELSE {len(edges)} END "
                                f"AS {quote_ident(f'f__{i}')}")
            select_params += edges
            select_parts.append(f"{x} AS {quote_ident(f'x__{i}')}")
            xi = quote_ident(f"x__{i}")
            ui = quote_ident(f"u__{i}")
            if c.transform == "log1p":
                rank_parts.append(f"ln(1 + greatest({xi}, 0)) AS {ui}")
            else:
                rank_parts.append(f"{xi} AS {ui}")
            agg_parts.append(f"sum({xi}) AS {quote_ident('sx__' + c.name)}")
            agg_parts.append(f"sum({xi} * {xi}) AS {quote_ident('sxx__' + c.name)}")
            agg_parts.append(f"sum({ui}) AS {quote_ident('su__' + c.name)}")
        elif c.kept_levels is not None:
            select_parts.append(
                f"CASE WHEN {q} IS NULL THEN ? WHEN list_contains(?::VARCHAR[], CAST({q} AS VARCHAR)) "
                f"THEN CAST({q} AS VARCHAR) ELSE ? END AS {quote_ident(f'c__{i}')}"
            )
            select_params += [MISSING, list(c.kept_levels), OTHER]
        else:
            select_parts.append(f"coalesce(CAST({q} AS VARCHAR), ?) AS {quote_ident(f'c__{i}')}")
            select_params += [MISSING]
    rows, params = rows_sql(metric, baseline, comparison, where=where, include_shadow=include_shadow,
                            select=select_parts, select_params=select_params)

    # one GROUP BY on the fine bins (the common refinement of every binning: cheaper than
    # GROUPING SETS, which hash the rows once per set); each table then sums its own bins
    n_sets = len(specs_list) if numeric_names else 1
    keys = [quote_ident(f"f__{i}" if c.kind == "numeric" else f"c__{i}") for i, c in enumerate(specs)]
    aggs = ", ".join(["count(*) AS n", "sum(y) AS sy", "sum(y * y) AS syy"] + agg_parts)
    group_cols = ", ".join(["period"] + keys + ["version"])
    sql = (
        f"WITH rows AS ({rows}), ranked AS (SELECT *{''.join(', ' + r for r in rank_parts)} FROM rows) "
        f"SELECT {group_cols}, {aggs} FROM ranked GROUP BY {group_cols}"
    )
    grouped = con.execute(sql, params).pl()
    excluded = profile.excluded
    for period, name, w in ((0, "baseline", baseline), (1, "comparison", comparison)):
        if grouped.filter(pl.col("period") == period).height == 0:
            raw = int(excluded.filter(pl.col("period") == period)["rows"][0])
            hint = (
                f" ({raw} rows are in the window but none has a usable value for {metric.spec!r})" if raw else ""
            )
            raise NotApplicable(
                f"the {name} window {w} holds no rows for metric {metric.spec!r}{hint}; "
                "check the window, the --where filters and the metric column"
            )
    names = [c.name for c in specs]
    sums = ["n", "sy", "syy"] + [f"{s}__{c.name}" for c in specs if c.kind == "numeric" for s in ("sx", "sxx", "su")]
    tables = []
    for t, sp in enumerate(specs_list):
        label_cols = []
        for i, c in enumerate(sp):
            col = keys[i].strip('"')
            if c.kind == "numeric":
                # fine bin f starts at fine edge f - 1: this binning's bin counts its edges up to there
                f_edges = fine[c.name]
                labels = [MISSING] + c.bin_labels()
                own = [0] + [sum(e <= lo for e in c.edges) for lo in f_edges]
                label_cols.append(pl.col(col).replace_strict(list(range(-1, len(f_edges) + 1)),
                                                             [labels[0]] + [labels[1 + b] for b in own],
                                                             return_dtype=pl.String).alias(c.name))
            else:
                label_cols.append(pl.col(col).alias(c.name))
        frame = grouped.select([pl.col("period").cast(pl.Int8)] + label_cols + [pl.col("version")]
                               + [pl.col(s) for s in sums])
        if n_sets > 1:
            # a sum over no values stays NULL, as in SQL
            frame = frame.group_by(["period"] + names + ["version"]).agg(
                [pl.col("n").sum()]
                + [pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).alias(c) for c in sums[1:]])
        frame = frame.with_columns(pl.col("n").cast(pl.Int64)).sort(["period"] + names + ["version"],
                                                                     nulls_last=True)
        tables.append(CellTable(frame, tuple(sp), metric, baseline, comparison, excluded))
    return tuple(tables)


def _specs(covariates: Sequence[str], numeric_names: Sequence[str], profile: Profile,
           bins: "int | Mapping[str, Sequence[float]]", max_levels: int) -> list[Covariate]:
    """Covariates with their bins, transforms and kept levels, read from a profile."""
    k_default = int(bins) if not isinstance(bins, Mapping) else 5
    specs: list[Covariate] = []
    for name in covariates:
        if name in numeric_names:
            p = profile.numeric[name]
            if isinstance(bins, Mapping) and name in bins:
                edges = sorted({float(e) for e in bins[name]})
            else:
                q = profile.quantiles(name, k_default, rows=False) or []
                edges = sorted({float(e) for e in q if e is not None})
            lo, skew = p.min_all, p.skewness
            edges = [e for e in edges if lo is None or e > lo]
            transform = "log1p" if lo is not None and lo >= 0 and skew is not None and skew > 1 else "identity"
            specs.append(Covariate(name, "numeric", tuple(edges), transform=transform))
        else:
            levels = profile.levels[name][: max_levels + 1]
            kept = tuple(r[0] for r in levels[: max_levels - 1]) if len(levels) > max_levels else None
            specs.append(Covariate(name, "categorical", kept_levels=kept))
    return specs
