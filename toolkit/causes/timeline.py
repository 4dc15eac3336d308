"""When: change points of the metric per routing cell (and per version inside it), lined up with events.

One GROUP BY reads the metric's sums per (routing cell, version, hour), which
the causes' observed answers per window share (:func:`hours`). Each
series (a routing cell over all versions, and each version inside it) is
cut into blocks of consecutive hours holding at least ``MIN_BLOCK_ROWS``
rows (sparse hours are merged, never shown as 0 or 100 %). Binary
segmentation then looks for mean shifts: the split maximising

    T_k = (ybar_left - ybar_right) / sqrt(s^2 (1/n_left + 1/n_right))

(``s^2`` the pooled within-row variance) is a change point when
``|T_k| >= Z_CHANGE``, and each side is searched again, up to
``MAX_CHANGES`` per series. The threshold was chosen for the false-alarm
rate measured on the simulator's clean scenario (docs/causes.md). Each
change is lined up with the nearest deployment event of its scope (here) and
the nearest finding of its routing cell (:func:`toolkit.causes.api.explain`),
each with a signed lag.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import duckdb
import numpy as np
import polars as pl

from ..attribution.metrics import parse_metric
from ..engine.run import Runner, runner_for
from .. import formatting as fmt
from ..attribution.results import AttributionResult
from ..attribution.rows import rows_sql
from ..attribution.sums import cell_key_sql
from ..timeutil import Window

MIN_BLOCK_ROWS = 200
Z_CHANGE = 6.0
MAX_CHANGES = 3
MIN_SIDE_BLOCKS = 2

SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "cell": pl.String, "version": pl.String, "at": pl.Datetime("us"), "before": pl.Float64,
    "after": pl.Float64, "change": pl.Float64, "z": pl.Float64, "event": pl.String,
    "event_lag_hours": pl.Float64, "text": pl.String}


def hours(con: duckdb.DuckDBPyConnection, metric: str, windows: list[Window],
          routing_by: list[str], run: Runner | None = None) -> pl.DataFrame:
    """The metric's sums per hour x component x region x instance x routing cell x version, in one pass.

    It reads every row from the first window's start to the last one's end
    once (on ``run``), with a flag ``w{k}`` per window: the change points'
    series (:func:`series`) and each window's observed answers of the
    causes (:func:`window_hours`) both come from it.
    """
    run = runner_for(con, run)
    m = replace(parse_metric(metric), dialect=run.dialect)
    lo, hi = min(w.start for w in windows), max(w.end for w in windows)
    key, kparams = cell_key_sql(routing_by, run.dialect)
    flags = [f"(ts >= ? AND ts < ?) AS w{k}" for k in range(len(windows))]
    sql, params = rows_sql(m, Window(lo, hi), Window(lo, hi), dialect=run.dialect,
                           select_params=kparams + [t for w in windows for t in (w.start, w.end)],
                           select=[f"{key} AS cell", "date_trunc('hour', ts) AS bucket_start", "component", "region",
                                   "instance_id", *flags])
    return run.frame(
        "SELECT bucket_start, component, region, instance_id, cell, version, "
        f"{''.join(f'w{k}, ' for k in range(len(windows)))}"
        "count(*) AS n, CAST(sum(y) AS DOUBLE) AS sy, CAST(sum(y * y) AS DOUBLE) AS syy "
        f"FROM ({sql}) AS r WHERE period = 1 GROUP BY ALL", params)


def series(frame: pl.DataFrame) -> pl.DataFrame:
    """Sums per (routing cell, version, hour) of :func:`hours` (a row in two windows counts once)."""
    return (frame.group_by("cell", "version", pl.col("bucket_start").alias("hour"))
            .agg(pl.col("n").sum(), pl.col("sy").sum(), pl.col("syy").sum()).sort("cell", "version", "hour"))


def window_hours(frame: pl.DataFrame, k: int) -> pl.DataFrame:
    """Window ``k``'s rows of :func:`hours`: ``n_y`` and ``sy`` per (hour, component, region, instance, version)."""
    keys = ["bucket_start", "component", "region", "instance_id", "version"]
    return (frame.filter(pl.col(f"w{k}")).group_by(keys, maintain_order=True)
            .agg(pl.col("n").sum().alias("n_y"), pl.col("sy").sum()))


def _blocks(hours: list, n: np.ndarray, sy: np.ndarray, syy: np.ndarray):
    """Consecutive hours merged until each block holds MIN_BLOCK_ROWS rows."""
    out, cur = [], None
    for h, a, b, c in zip(hours, n, sy, syy, strict=True):
        if cur is None:
            cur = [h, h, 0.0, 0.0, 0.0]
        cur[1] = h
        cur[2] += a
        cur[3] += b
        cur[4] += c
        if cur[2] >= MIN_BLOCK_ROWS:
            out.append(cur)
            cur = None
    if cur is not None:
        if out:
            last = out[-1]
            out[-1] = [last[0], cur[1], last[2] + cur[2], last[3] + cur[3], last[4] + cur[4]]
        else:
            out.append(cur)
    return out


def _segment(blocks, lo: int, hi: int, var: float, found: list) -> None:
    if hi - lo < 2 * MIN_SIDE_BLOCKS or len(found) >= MAX_CHANGES or var <= 0:
        return
    n = np.array([b[2] for b in blocks[lo:hi]])
    sy = np.array([b[3] for b in blocks[lo:hi]])
    cn, cs = np.cumsum(n), np.cumsum(sy)
    N, S = cn[-1], cs[-1]
    best, k_best = 0.0, None
    for k in range(MIN_SIDE_BLOCKS - 1, len(n) - MIN_SIDE_BLOCKS):
        nl, nr = cn[k], N - cn[k]
        t = (cs[k] / nl - (S - cs[k]) / nr) / np.sqrt(var * (1 / nl + 1 / nr))
        if abs(t) > abs(best):
            best, k_best = t, k
    if k_best is None or abs(best) < Z_CHANGE:
        return
    split = lo + k_best + 1
    found.append((split, float(best), float(cs[k_best] / cn[k_best]), float((S - cs[k_best]) / (N - cn[k_best]))))
    _segment(blocks, lo, split, var, found)
    _segment(blocks, split, hi, var, found)


def _events(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    cols = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'deployments'").fetchall()}
    if not {"ts", "scope", "event", "component"} <= cols:
        return []
    return con.execute("SELECT ts, CAST(scope AS VARCHAR), event, component, CAST(version AS VARCHAR) "
                       "FROM deployments ORDER BY ts").fetchall()


def change_points(con: duckdb.DuckDBPyConnection, res: AttributionResult, frame: pl.DataFrame) -> pl.DataFrame:
    """Change points per routing cell and per (cell, version), lined up with the nearest deployment event.

    ``frame``: the :func:`hours` of the windows, on the attribution's routing cells.
    """
    frame = series(frame)
    events = _events(con)
    rows = []
    todo = [(c, None, g) for (c,), g in frame.group_by(["cell"], maintain_order=True)]
    todo += [(c, v, g) for (c, v), g in frame.group_by(["cell", "version"], maintain_order=True)]
    for cell, version, g in todo:
        g = g.group_by("hour").agg(pl.col("n").sum(), pl.col("sy").sum(), pl.col("syy").sum()).sort("hour")
        n, sy, syy = (g[c].to_numpy().astype(float) for c in ("n", "sy", "syy"))
        if n.sum() < 2 * MIN_SIDE_BLOCKS * MIN_BLOCK_ROWS:
            continue
        blocks = _blocks(g["hour"].to_list(), n, sy, syy)
        N = n.sum()
        var = float(syy.sum() / N - (sy.sum() / N) ** 2) * N / max(N - 1, 1)
        found: list = []
        _segment(blocks, 0, len(blocks), var, found)
        for split, t, before, after in found:
            at = blocks[split][0]
            near = _nearest(events, at, cell)
            lag = (at - near[0]).total_seconds() / 3600 if near else float("nan")
            ev_text = f"{near[2]} of {near[4]} ({near[3]}, scope {near[1]}) at {near[0]:%Y-%m-%d %H:%M}" if near else ""
            what = f"{cell}" + (f" {version}" if version else " (all versions)")
            show = fmt.Display.of(res)
            text = (f"{what}: {show.level(before)} -> {show.level(after)} from about "
                    f"{at:%Y-%m-%d %H:%M} UTC (z {t:+.1f})"
                    + (f"; nearest deployment event: {ev_text} ({_lag_text(lag)})" if near else ""))
            rows.append((cell, version, at, before, after, after - before, t, ev_text or None, lag, text))
    out = pl.DataFrame(rows, schema=SCHEMA, orient="row") if rows else pl.DataFrame(schema=SCHEMA)
    return out.sort(pl.col("z").abs(), descending=True)


def _nearest(events: list[tuple], at: dt.datetime, cell: str) -> tuple | None:
    """The deployment event of the cell's scope (or ``all``) nearest to ``at``, before or after.

    A change point is placed at a block boundary, and blocks span several
    hours where traffic is thin, so the event that caused it may lie just
    after the boundary: the lag is signed (negative: the event came later).
    """
    mine = [e for e in events if e[1] in (cell, "all")]
    if not mine:
        return None
    at = at.replace(tzinfo=None)
    pick = min(mine, key=lambda e: abs((e[0].replace(tzinfo=None) - at).total_seconds()))
    return (pick[0].replace(tzinfo=None),) + tuple(pick[1:])


def _lag_text(lag: float) -> str:
    return f"{lag:.1f} h before the change" if lag >= 0 else f"{-lag:.1f} h after the change"


__all__ = ["change_points", "hours", "series", "window_hours"]
