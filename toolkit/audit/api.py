"""Entry point of the version audit: :func:`audit`."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from typing import TYPE_CHECKING, Any, TypeVar, overload
from collections.abc import Callable

import duckdb
import polars as pl

from ..engine.choose import Engine, EngineOption, check_engine, engine_runner, resolve_engine, span_of
from ..engine.run import Runner, runner_for
from ..errors import InputError, NotApplicable, check_choice
from ..store import Store, opened
from ..store.attach.excluded import excluded_in
from ..timeutil import Window, parse_time, parse_window
from . import census as census_mod
from . import intended as intended_mod
from .consistency import consistency_frame, coverage_frame
from .detectors import Context, run_detectors
from .detectors.divergence import SHADOW_MARGIN
from .results import BUCKETS, FINDING_SCHEMA, AuditResult, AuditThresholds, Bucket, severity_rank

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

_SECOND = dt.timedelta(seconds=1)

#: what the ``units`` reader of :func:`audit_units` returns
U = TypeVar("U")


def audit(
    store: Store | str | os.PathLike,
    *,
    start: str | dt.datetime | dt.date | None = None,
    end: str | dt.datetime | dt.date | None = None,
    window: str | Window | tuple | None = None,
    bucket: Bucket = "auto",
    thresholds: AuditThresholds | None = None,
    engine: EngineOption | Engine | None = None,
    spark: SparkSession | None = None,
) -> AuditResult:
    """Audit which versions served traffic and where that differs from the intent.

    Parameters
    ----------
    store
        A :class:`~toolkit.store.Store` or the path of a store file (opened
        read-only and closed again).
    start, end
        Half-open window ``[start, end)`` in UTC (ISO text or datetimes);
        each defaults to the first / just after the last prediction.
    window
        ``"FROM..TO"`` instead of ``start`` and ``end``.
    bucket
        ``"hour"``, ``"day"`` or ``"auto"`` (hourly up to 7 days, else daily).
    thresholds
        Detector thresholds; :class:`AuditThresholds` documents the defaults.
    engine
        Where the passes over the rows run: ``duckdb`` (the store) or
        ``spark`` (the store's resolved rows of the window exported to
        Parquet and read by Spark; the cells come back to the store, where
        the intended state is attached and the detectors run), or a
        :class:`toolkit.Engine`. Same result. Default: the store's engine.
    spark
        The Spark session (implies ``engine="spark"``); None builds one from
        the standard configuration (``SPARK_REMOTE``, else ``getOrCreate()``).

    Returns
    -------
    AuditResult
        Census, intended state, findings and consistency score.

    Raises
    ------
    InputError
        For an unknown bucket, both ``window`` and ``start``/``end``, or bad times.
    NotApplicable
        When the store (or the window) holds no predictions.

    Examples
    --------
    >>> result = audit("vdrift.duckdb", window="2026-11-09..2026-11-16")  # doctest: +SKIP
    >>> print(result.summary())  # doctest: +SKIP
    """
    check_choice(bucket, BUCKETS, "bucket")
    if thresholds is None:
        thresholds = AuditThresholds()
    elif not isinstance(thresholds, AuditThresholds):
        raise InputError("thresholds must be an AuditThresholds instance (or None for the defaults)")
    if window is not None and (start is not None or end is not None):
        raise InputError("give either window='FROM..TO' or start/end, not both")
    check_engine(engine)
    with opened(store) as st:
        win = _resolve_window(st, start, end, window)
        # the rows of the window, and the shadow scores just outside it that the divergence check pairs
        with engine_runner(st.con, resolve_engine(engine, spark, st), span_of([win], SHADOW_MARGIN)) as run:
            return _audit_open(st, None, None, win, bucket, thresholds, run=run)


def _resolve_window(store: Store, start: Any, end: Any, window: Any) -> Window:
    if window is not None:
        return parse_window(window)
    span = store.time_span(plausible=True)
    if span is None and (start is None or end is None):
        raise NotApplicable(
            f"store {store.path!r} holds no predictions: ingest some with "
            "`vdrift ingest predictions FILE --db FILE` before auditing"
        )
    # defaults: whole seconds around the data, the end just after the last prediction
    if span is None:  # both ends were given
        return Window(parse_time(start, what="--from"), parse_time(end, what="--to"))
    w_start = parse_time(start, what="--from") if start is not None else span[0].replace(microsecond=0)
    w_end = parse_time(end, what="--to") if end is not None else span[1].replace(microsecond=0) + _SECOND
    return Window(w_start, w_end)


@overload
def audit_units(store: Store, window: Window, thresholds: AuditThresholds | None = None,
                units: None = None, run: Runner | None = None) -> AuditResult: ...
@overload
def audit_units(store: Store, window: Window, thresholds: AuditThresholds | None,
                units: Callable[[duckdb.DuckDBPyConnection], U], run: Runner | None = None,
                ) -> tuple[AuditResult, U]: ...
def audit_units(store: Store, window: Window, thresholds: AuditThresholds | None = None,
                units: Callable[[duckdb.DuckDBPyConnection], U] | None = None,
                run: Runner | None = None) -> AuditResult | tuple[AuditResult, U]:
    """The audit of ``window`` and ``units(con)`` run on the audit's cell tables (for :mod:`toolkit.causes`).

    ``units`` reads the temporary tables of :mod:`.intended` and
    :mod:`.census` (hourly cells) before they are dropped; without it the
    audit alone is returned. ``run``: where the audit's row passes run (the
    store's DuckDB when None).
    """
    return _audit_open(store, None, None, window, "hour", thresholds or AuditThresholds(), units, run)


def _audit_open(
    store: Store, start: Any, end: Any, window: Any, bucket: str, thresholds: AuditThresholds,
    units: Callable[[duckdb.DuckDBPyConnection], Any] | None = None, run: Runner | None = None,
) -> Any:
    win = _resolve_window(store, start, end, window)
    con = store.con
    run = runner_for(con, run)
    n = int(run.frame("SELECT count(*) AS n FROM predictions WHERE ts >= ? AND ts < ?",
                      [win.start, win.end])["n"][0])
    if n == 0:
        raise NotApplicable(
            f"no predictions in {win}: widen --from/--to (the store covers "
            f"{_span_text(store)})"
        )
    chosen = census_mod.choose_bucket(win.start, win.end, bucket)
    try:
        intended = intended_mod.build_intended(con, win.start, win.end, thresholds)
        census_mod.build_cells(con, win.start, win.end, chosen, thresholds.n_examples, run)
        census = census_mod.census_frame(con)
        consistency = consistency_frame(con)
        coverage = coverage_frame(con)
        ctx = Context(con=con, window_start=win.start, window_end=win.end, bucket=chosen, thresholds=thresholds,
                      run=run)
        findings = _findings_frame(run_detectors(ctx))
        extra = units(con) if units is not None else None
    finally:
        census_mod.drop_temp(con)
        intended_mod.drop_temp(con)
    result = AuditResult(
        census=census,
        intended=intended,
        findings=findings,
        consistency=consistency,
        coverage=coverage,
        window_start=win.start,
        window_end=win.end,
        bucket=chosen,
        thresholds=thresholds,
        excluded=excluded_in(con, [win], run),
    )
    return result if units is None else (result, extra)


def _span_text(store: Store) -> str:
    span = store.time_span(plausible=True)
    if span is None:
        return "no predictions"
    return f"{span[0].isoformat()} .. {span[1].isoformat()}"


def _findings_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    rows = sorted(
        rows,
        key=lambda r: (
            -severity_rank(r["severity"]),
            r["kind"],
            r["start"] or dt.datetime.min,
            r["component"] or "",
            r["region"] or "",
            r["instance_id"] or "",
            ",".join(r["versions"]),
        ),
    )
    seen: set[str] = set()
    for row in rows:
        key = "|".join(
            str(row[k]) for k in ("kind", "component", "region", "instance_id", "versions", "start", "evidence")
        )
        base = f"{row['kind']}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        fid, i = base, 1
        while fid in seen:
            i += 1
            fid = f"{base}-{i}"
        seen.add(fid)
        row["finding_id"] = fid
    if not rows:
        return pl.DataFrame(schema=FINDING_SCHEMA)
    return pl.DataFrame([{k: r[k] for k in FINDING_SCHEMA} for r in rows], schema=FINDING_SCHEMA)
