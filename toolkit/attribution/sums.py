"""The row-level passes of the attribution: additive sums per routing cell.

Two passes read the rows (after the covariates' profile, :mod:`~toolkit.attribution.profile`):

1. :func:`cell_sums`: one GROUP BY over (period, routing cell, resolved
   version, replicate group[, matching stratum]) with the count, the sums
   of the metric and of its square and the sums of every design term. The
   replicate group is the request key (``md5(request_id)`` read as an
   unsigned 32-bit integer, stored with every row: the column
   ``request_key``, :mod:`toolkit.engine.keys`) modulo ``groups``, which
   DuckDB and Spark compute alike: the bootstrap reweights whole groups, so
   intervals come from these sums alone.
2. :func:`model_sample`: the design rows of a hash sample of each version
   (at most ``cap`` rows per version and period), for the outcome models'
   cross-products. The sample reads the request key's high bits
   (:func:`toolkit.engine.keys.sample_key_sql`), independent of the group's.

Everything downstream works on these arrays, so the cost grows with cells,
not rows, and the sums are what another engine has to produce:
:func:`cell_sums_query` writes the GROUP BY for either engine and
:func:`frame_to_sums` turns its result into :class:`CellSums`
(``toolkit.engine.spark.spark_cell_sums`` runs it on Spark).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import polars as pl

from ..engine.keys import REQUEST_KEY, SAMPLE_KEYS, SAMPLE_SHIFT, Dialect, group_sql, sample_key_sql, text_type
from ..engine.run import Runner, runner_for
from ..errors import StoreError
from ..sqlutil import quote_ident
from ..timeutil import Window
from .clusters import Arms, arms, entity_key_sql, group_key_sql
from .rows import MISSING, rows_sql
from .design import Design
from .metrics import Metric

#: Replicate groups per cell (the bootstrap reweights groups, not rows).
GROUPS = 64
#: Rows per version and period the outcome model is fitted on, at most.
MODEL_ROWS = 60_000


@dataclass(frozen=True)
class Selection:
    """The rows an attribution reads: metric, windows, filters, shadow rows."""

    metric: Metric
    baseline: Window
    comparison: Window
    where: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    include_shadow: bool = False
    segments: bool = False

    def rows(self, select: Sequence[str] = (), params: Sequence = (), dialect: Dialect = "duckdb") -> tuple[str, list]:
        """SQL of the selected rows of both windows (see rows_sql).

        For ``dialect="spark"`` the metric and the filters write Spark's casts.
        """
        metric = self.metric if self.metric.dialect == dialect else replace(self.metric, dialect=dialect)
        return rows_sql(metric, self.baseline, self.comparison, where=list(self.where),
                        include_shadow=self.include_shadow, select=select, select_params=params,
                        dialect=dialect)


#: Separates the routing cell from the segment number in a fine cell's key.
SEGMENT_SEP = " #"


def cell_key_sql(routing_by: Sequence[str], dialect: Dialect = "duckdb") -> tuple[str, list]:
    """SQL of the routing cell label (the routing columns joined by ``/``) and its parameters."""
    if not routing_by:
        return "'(all)'", []
    parts = [f"coalesce(CAST({quote_ident(c)} AS {text_type(dialect)}), ?)" for c in routing_by]
    return "concat_ws(' / ', " + ", ".join(parts) + ")", [MISSING] * len(routing_by)


def segment_label(fine: str) -> str:
    """``eu #1002`` -> ``eu, deployment segment 1002`` (the number counts the scope's events before it)."""
    cell, _, seg = fine.rpartition(SEGMENT_SEP)
    return f"{cell}, deployment segment {seg}" if cell else fine


def segment_sql(con: duckdb.DuckDBPyConnection, sel: Selection, routing_by: Sequence[str],
                dialect: Dialect = "duckdb") -> tuple[str, list]:
    """SQL of the intended-state segment of a row: deployment events of its scope before it.

    Inside a window, the routing of a scope changes only at its deployment
    events (rollout steps, rollbacks, experiment starts and ends). A
    segment is the stretch between two such events; inside it the version
    answering a request does not depend on when the request came, so the
    rows a version served are a random sample of the segment's inputs even
    when the inputs trend over the window. Events of scope ``all`` cut every
    scope; others cut the scope whose ``region`` they name.

    The events are read from the store's ``deployments`` through ``con``;
    ``dialect`` is the engine the returned text is for.
    """
    cols = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'deployments'").fetchall()}
    if not {"ts", "scope"} <= cols:
        return "0", []
    wins = [(sel.baseline.start, sel.baseline.end), (sel.comparison.start, sel.comparison.end)]
    cond = " OR ".join("(ts > ? AND ts < ?)" for _ in wins)
    events = con.execute(f"SELECT DISTINCT CAST(scope AS VARCHAR), ts FROM deployments WHERE {cond} ORDER BY 1, 2",
                         [x for w in wins for x in w]).fetchall()
    if not events:
        return "0", []
    shared = [t for sc, t in events if sc == "all"]
    own: dict[str, list] = {}
    for sc, t in events:
        if sc != "all":
            own.setdefault(sc, []).append(t)
    params: list = []
    parts = []
    if shared:
        parts.append(" + ".join("CAST(ts >= ? AS INTEGER)" for _ in shared))
        params += shared
    if own and "region" in routing_by:
        cases = []
        for sc, ts in own.items():
            cases.append("WHEN ? THEN " + " + ".join("CAST(ts >= ? AS INTEGER)" for _ in ts))
            params += [sc] + ts
        parts.append(f"(CASE CAST(region AS {text_type(dialect)}) {' '.join(cases)} ELSE 0 END) * 1000")
    return (" + ".join(parts) or "0"), params


@dataclass(frozen=True)
class CellSums:
    """Sums per (period, routing cell, version, group[, stratum]).

    Arrays are indexed ``[t, r, v, (s,) g]`` (``sz`` has the term last).
    """

    cells: tuple[str, ...]
    versions: tuple[str, ...]
    n: np.ndarray
    sy: np.ndarray
    syy: np.ndarray
    sz: np.ndarray
    strata: int = 0

    @property
    def regions(self) -> tuple[str, ...]:
        """The routing cells (a fine cell is a routing cell's intended-state segment)."""
        return tuple(sorted({c.rsplit(SEGMENT_SEP, 1)[0] for c in self.cells}))

    def collapsed(self) -> CellSums:
        """The sums without the stratum axis (summed over the matching strata)."""
        if not self.strata:
            return self
        return CellSums(self.cells, self.versions, self.n.sum(axis=3), self.sy.sum(axis=3), self.syy.sum(axis=3),
                        self.sz.sum(axis=3), 0)

    @property
    def parent(self) -> np.ndarray:
        """Index of each fine cell's routing cell in :attr:`regions`."""
        idx = {r: i for i, r in enumerate(self.regions)}
        return np.array([idx[c.rsplit(SEGMENT_SEP, 1)[0]] for c in self.cells], dtype=int)


def fine_key_sql(con: duckdb.DuckDBPyConnection, sel: Selection, routing_by: Sequence[str],
                 dialect: Dialect = "duckdb") -> tuple[str, list]:
    """SQL of the fine cell: routing cell, the separator and the segment number (0 without segments)."""
    key, key_params = cell_key_sql(routing_by, dialect)
    seg, seg_params = segment_sql(con, sel, routing_by, dialect) if sel.segments else ("0", [])
    return f"({key} || ? || CAST(({seg}) AS {text_type(dialect)}))", key_params + [SEGMENT_SEP] + seg_params


def cell_sums_query(con: duckdb.DuckDBPyConnection, sel: Selection, design: Design, routing_by: Sequence[str], *,
                    groups: int = GROUPS, stratum: tuple[str, list, int] | None = None,
                    dialect: Dialect = "duckdb", sticky: bool = False) -> tuple[str, list]:
    """The GROUP BY of :func:`cell_sums` as text for ``dialect`` and its positional parameters.

    ``con`` is the store (it serves the deployment events of the segments);
    the query reads the view ``predictions_resolved`` of whichever engine
    runs it. ``stratum`` SQL is used as given (it must suit ``dialect``).
    ``sticky``: experiment arms are assigned per entity, so the experiment
    rows' replicate groups come from ``entity_id`` (:mod:`~toolkit.attribution.clusters`).
    """
    key, key_params = fine_key_sql(con, sel, routing_by, dialect)
    vsel, vparams = design.inputs(dialect)
    extra = [f"{key} AS cell", f"{group_sql(group_key_sql(sticky, dialect), dialect)} AS grp"]
    params = key_params + [groups]
    src, src_params = sel.rows(extra + vsel, params + vparams, dialect)
    keys = ["period", "cell", "version", "grp"]
    if stratum is not None:
        # the stratum reads the input columns too, once per row
        src = f"SELECT *, {stratum[0]} AS stratum FROM ({src})"
        src_params = list(stratum[1]) + src_params
        keys.append("stratum")
    zs, zparams = design.sums()
    sql = (f"SELECT {', '.join(keys)}, count(*) AS n, sum(y) AS sy, sum(y * y) AS syy"
           f"{''.join(', ' + z for z in zs)} FROM ({src}) GROUP BY {', '.join(keys)}")
    return sql, zparams + src_params


def frame_to_sums(frame: pl.DataFrame, design: Design, *, groups: int = GROUPS, strata: int | None = None,
                  cells: Sequence[str] | None = None, versions: Sequence[str] | None = None) -> CellSums:
    """:class:`CellSums` from the rows of :func:`cell_sums_query` (``strata``: S when it has a stratum key)."""
    cell_names = tuple(cells) if cells is not None else tuple(sorted(set(frame["cell"].to_list())))
    ver = tuple(versions) if versions is not None else tuple(sorted(set(frame["version"].to_list())))
    S = strata or 0
    shape = (2, len(cell_names), len(ver)) + ((S,) if strata is not None else ()) + (groups,)
    n = np.zeros(shape)
    sy = np.zeros(shape)
    syy = np.zeros(shape)
    sz = np.zeros(shape + (design.p,))
    if frame.height and frame["grp"].null_count():
        n_null = int(frame.filter(pl.col("grp").is_null())["n"].sum())
        raise StoreError(f"{n_null:,} prediction row(s) have no request_key (inserted by hand without it?): open "
                         "the store for writing once (e.g. `vdrift upgrade --db <store>`), which fills it")
    if frame.height:
        ci = {c: i for i, c in enumerate(cell_names)}
        vi = {v: i for i, v in enumerate(ver)}
        idx = [frame["period"].to_numpy().astype(int),
               frame["cell"].replace_strict(ci, return_dtype=pl.Int64).to_numpy(),
               frame["version"].replace_strict(vi, return_dtype=pl.Int64).to_numpy()]
        if strata is not None:
            idx.append(frame["stratum"].to_numpy().astype(int))
        idx.append(frame["grp"].to_numpy().astype(int))
        ix = tuple(idx)
        n[ix] = frame["n"].to_numpy()
        sy[ix] = frame["sy"].to_numpy()
        syy[ix] = frame["syy"].to_numpy()
        if design.p:
            sz[ix] = frame.select([f"s__{j}" for j in range(design.p)]).to_numpy()
    return CellSums(cell_names, ver, n, sy, syy, sz, S)


def cell_sums(con: duckdb.DuckDBPyConnection, sel: Selection, design: Design, routing_by: Sequence[str], *,
              groups: int = GROUPS, stratum: tuple[str, list, int] | None = None,
              cells: Sequence[str] | None = None, versions: Sequence[str] | None = None,
              run: Runner | None = None, sticky: bool = False) -> CellSums:
    """One GROUP BY: the sums behind every estimator.

    ``stratum`` is an optional (SQL, params, S): an integer expression in
    ``0..S-1`` over the design's input columns (matching strata inside the
    routing cells). ``run``: the engine (default the store's DuckDB).
    ``sticky``: replicate groups of experiment rows by entity (:func:`cell_sums_query`).
    """
    run = runner_for(con, run)
    sql, params = cell_sums_query(con, sel, design, routing_by, groups=groups, stratum=stratum, dialect=run.dialect,
                                  sticky=sticky)
    frame = run.frame(sql, params)
    return frame_to_sums(frame, design, groups=groups, strata=stratum[2] if stratum is not None else None,
                         cells=cells, versions=versions)


@dataclass(frozen=True)
class ModelSample:
    """Design rows of a hash sample per (period, version), for the outcome models.

    ``t``, ``v`` and ``r`` index period, version and routing cell; ``y`` is
    the metric, ``z`` the design terms (rows x p); ``pos`` the row's time as
    a share of its window (0 at the start, 1 at the end), for the transport
    check of :mod:`toolkit.attribution.transport`.
    """

    t: np.ndarray
    v: np.ndarray
    r: np.ndarray
    y: np.ndarray
    z: np.ndarray
    cell: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    version: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    weight: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pos: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: the entity key of an experiment row that names its entity, else -1 (:mod:`~toolkit.attribution.clusters`)
    entity: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def indexed(self, sums: CellSums) -> ModelSample:
        """The sample with ``v`` and ``r`` indexing the versions and fine cells of ``sums``."""
        vi = {v: i for i, v in enumerate(sums.versions)}
        ci = {c: i for i, c in enumerate(sums.cells)}
        v = np.array([vi[x] for x in self.version], dtype=int)
        r = np.array([ci.get(x, -1) for x in self.cell], dtype=int)
        return replace(self, v=v, r=r)

    def arms(self) -> Arms:
        """How the sampled experiment rows' arms are assigned (:func:`~toolkit.attribution.clusters.arms`)."""
        if not len(self.entity):
            return Arms()
        region = np.array([c.rsplit(SEGMENT_SEP, 1)[0] for c in self.cell.tolist()], dtype=object)
        return arms(self.t, self.r, self.v, self.entity, self.weight, self.y, region)


def model_sample(con: duckdb.DuckDBPyConnection, sel: Selection, design: Design, routing_by: Sequence[str],
                 counts: Mapping[tuple[int, str], int], *, cap: int = MODEL_ROWS,
                 run: Runner | None = None) -> ModelSample:
    """Fetch at most ``cap`` rows per (period, version), chosen by a hash of the request id.

    ``counts`` gives the rows per (period, version) (the profile's), which
    set each pair's sampling rate; ``weight`` is the rows a sampled row
    stands for. ``v`` and ``r`` index the sample's own sorted versions and
    cells until :meth:`ModelSample.indexed` maps them onto the cell sums.
    ``run``: the engine (default the store's DuckDB).
    """
    run = runner_for(con, run)
    dialect = run.dialect
    cases, params = [], []
    rates: dict[tuple[int, str], float] = {}
    widest = 0
    for (period, ver), count in sorted(counts.items()):
        if count > 0:
            keep = min(SAMPLE_KEYS, int(np.ceil(SAMPLE_KEYS * cap / count)))
            cases.append("WHEN period = ? AND version = ? THEN ?")
            params += [period, ver, keep]
            rates[(period, ver)] = keep / SAMPLE_KEYS
            widest = max(widest, keep)
    key, key_params = fine_key_sql(con, sel, routing_by, dialect)
    vsel, vparams = design.inputs(dialect)
    h = sample_key_sql(quote_ident(REQUEST_KEY), dialect)
    src, src_params = sel.rows([f"{key} AS cell", f"{h} AS h", f"{quote_ident(REQUEST_KEY)} AS rk",
                                f"{epoch_sql(quote_ident('ts'), dialect)} AS ets",
                                f"{entity_key_sql(dialect)} AS ekey"] + vsel, key_params + vparams, dialect)
    zsel, zparams = design.select()
    zcols = "".join(", " + z for z in zsel)
    cond = f"h < CASE {' '.join(cases)} ELSE 0 END" if cases else "FALSE"
    # the hash filter runs first, so the terms are computed for the sampled rows only; its bound for the
    # largest share, on the stored key itself (h < k exactly when key < k << SAMPLE_SHIFT), reaches the
    # table scan, so the other columns of the rows no version samples are not read
    if 0 < widest < SAMPLE_KEYS:
        cond = f"rk < ? AND {cond}"
        params = [widest << SAMPLE_SHIFT] + params
    got = run.frame(f"SELECT period, version, cell, y, ets, ekey{zcols} FROM (SELECT * FROM ({src}) WHERE {cond}) "
                    "ORDER BY period, version, h, cell, ets", zparams + src_params + params)
    data = {c: got[c].to_numpy() for c in got.columns}
    t = np.asarray(data["period"], dtype=int)
    version = np.asarray(data["version"], dtype=object)
    cell = np.asarray(data["cell"], dtype=object)
    vi = {x: i for i, x in enumerate(sorted(set(version)))}
    ci = {x: i for i, x in enumerate(sorted(set(cell)))}
    v = np.array([vi[x] for x in version], dtype=int)
    r = np.array([ci[x] for x in cell], dtype=int)
    y = np.asarray(data["y"], dtype=float)
    z = (np.column_stack([np.asarray(data[f"z__{j}"], dtype=float) for j in range(design.p)])
         if design.p else np.zeros((len(y), 0)))
    weight = np.array([1.0 / rates.get((int(a), b), 1.0) for a, b in zip(t, version, strict=False)])
    pos = np.zeros(len(y))
    for k, w in enumerate((sel.baseline, sel.comparison)):
        start, length = _epoch(w.start), _epoch(w.end) - _epoch(w.start)
        pos[t == k] = (np.asarray(data["ets"], dtype=float)[t == k] - start) / length
    entity = np.asarray(data["ekey"], dtype=np.int64)
    return ModelSample(t, v, r, y, z, cell, version, weight, pos, entity)


def epoch_sql(ts_sql: str, dialect: Dialect) -> str:
    """SQL of a timestamp's seconds since 1970 UTC as DOUBLE (DuckDB's ``epoch``; Spark's micros / 1e6)."""
    if dialect == "duckdb":
        return f"epoch({ts_sql})"
    return f"CAST(unix_micros(CAST({ts_sql} AS TIMESTAMP)) AS DOUBLE) / 1000000.0"


def _epoch(x: dt.datetime) -> float:
    """Seconds since 1970 of a naive-UTC datetime (as DuckDB's epoch() of a TIMESTAMP)."""
    return (x - dt.datetime(1970, 1, 1)).total_seconds()
