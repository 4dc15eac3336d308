"""Metric specifications: ``rate:col=value``, ``mean:col``, ``accuracy[:map]``, ``logloss[:positive]``.

A :class:`Metric` turns a user's spec into a SQL expression over the
``predictions_resolved`` view with a quoted, checked column name and bound
values; nothing from the spec is ever spliced into SQL text.
:meth:`Metric.check_values` refuses a metric that cannot mean anything on the
stored rows (a rate of a value that never occurs, an accuracy whose
predictions and outcomes never match), naming the values seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import duckdb

from ..engine.keys import Dialect, text_type
from ..engine.run import Runner, runner_for
from ..errors import InputError, NotApplicable
from ..sqlutil import quote_ident, table_columns

if TYPE_CHECKING:
    from .sums import Selection

MetricKind = Literal["rate", "mean", "accuracy", "logloss"]
KINDS = ("rate", "mean", "accuracy", "logloss")
VIEW = "predictions_resolved"

#: Columns whose values a model produces; on them a resolved version is a fixed function of its inputs.
MODEL_OUTPUT_COLUMNS = ("prediction", "score")
#: Scores are clipped to [EPS, 1 - EPS] in the log-loss.
EPS = 1e-15
_SPECS = ("rate:<column>=<value> (e.g. rate:prediction=approved), mean:<column> (e.g. mean:score), "
          "accuracy, accuracy:<prediction>=<outcome>[,...] (e.g. accuracy:yes=1,no=0) or "
          "logloss[:<positive outcome>] (e.g. logloss:1)")


@dataclass(frozen=True)
class Metric:
    """A metric over prediction rows.

    Parameters
    ----------
    kind
        ``rate`` (share of rows whose column equals ``value``), ``mean``
        (average of the column cast to DOUBLE), ``accuracy`` (share of
        labelled rows whose prediction matches the outcome, through
        ``labels`` when given) or ``logloss`` (mean binary log-loss of
        ``score`` against ``outcome = value``).
    column
        The column the metric reads (``prediction`` for accuracy, ``score`` for log-loss).
    value
        The value counted by a rate, or the positive outcome of a log-loss.
    labels
        Accuracy: pairs (prediction value, outcome value) that count as a
        match. One pair is a binary positive label: a row is correct when it
        is on the same side of both.
    """

    kind: MetricKind
    column: str
    value: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    #: The engine :meth:`sql` writes for (``duckdb`` or ``spark``: the text casts differ); not part of the metric.
    dialect: Dialect = field(default="duckdb", compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown metric kind {self.kind!r}: use {_SPECS}")
        if self.kind == "rate" and self.value is None:
            raise InputError("a rate metric needs a value: rate:<column>=<value>")
        if not self.column:
            raise InputError("a metric needs a column, e.g. mean:score")

    @property
    def spec(self) -> str:
        """The canonical text form, e.g. ``rate:prediction=approved``."""
        if self.kind == "accuracy":
            return "accuracy" + (":" + ",".join(f"{p}={o}" for p, o in self.labels) if self.labels else "")
        if self.kind == "logloss":
            return "logloss" + (f":{self.value}" if self.value is not None else "")
        if self.kind == "rate":
            return f"rate:{self.column}={self.value}"
        return f"mean:{self.column}"

    @property
    def is_rate(self) -> bool:
        """True when the per-row value is 0/1 (rates and accuracy)."""
        return self.kind in ("rate", "accuracy")

    @property
    def needs_label(self) -> bool:
        """True when the metric reads the outcome (rows without one yet are excluded and counted)."""
        return self.kind in ("accuracy", "logloss") or self.column == "outcome"

    @property
    def is_model_output(self) -> bool:
        """True when the metric reads only what the model produced.

        For such metrics a resolved version is a fixed function of its
        inputs, so its behaviour is the same in both windows.
        """
        return not self.needs_label and self.column in MODEL_OUTPUT_COLUMNS

    @property
    def label(self) -> str:
        """Plain-language name used in headlines."""
        if self.kind == "accuracy":
            return "accuracy"
        if self.kind == "logloss":
            return "log-loss"
        if self.kind == "rate":
            return f"{self.value} rate ({self.column})"
        return f"mean {self.column}"

    @property
    def unit(self) -> str:
        """``pt`` (percentage points) for rates, empty for means."""
        return "pt" if self.is_rate else ""

    @property
    def excluded_reason(self) -> str:
        """Why a row does not count, for the diagnostics."""
        if self.kind == "logloss":
            return "have no outcome yet or no score"
        if self.needs_label:
            return "have no outcome yet"
        return f"have a {self.column} that is NULL or not a number" if self.kind == "mean" else \
            f"have no {self.column}"

    def scale(self) -> float:
        """Factor turning the metric into display units (100 for rates)."""
        return 100.0 if self.is_rate else 1.0

    def _needed(self) -> list[str]:
        if self.kind == "accuracy":
            return ["prediction", "outcome"]
        if self.kind == "logloss":
            return ["score", "outcome"]
        return [self.column]

    def check(self, con: duckdb.DuckDBPyConnection) -> None:
        """Raise :class:`InputError` if the store lacks the needed columns."""
        cols = table_columns(con, VIEW)
        for name in self._needed():
            if name not in cols:
                raise InputError(
                    f"metric {self.spec!r} reads column {name!r}, which the store does not have; "
                    f"available columns: {', '.join(sorted(cols))}"
                )

    def sql(self) -> tuple[str, str, list]:
        """SQL for the per-row value and the row filter, with bound parameters.

        Returns
        -------
        value_sql, valid_sql, params
            ``value_sql`` is a DOUBLE expression (NULL where the row does not
            count); ``valid_sql`` is true on rows that count; ``params`` are
            the values bound to the ``?`` in ``value_sql`` (``valid_sql`` has
            none).
        """
        out = quote_ident("outcome")
        text = text_type(self.dialect)
        if self.kind == "accuracy":
            pred = f"CAST({quote_ident('prediction')} AS {text})"
            o = f"CAST({out} AS {text})"
            if not self.labels:
                return (f"CASE WHEN {out} IS NULL THEN NULL WHEN {pred} = {o} THEN 1.0 ELSE 0.0 END",
                        f"{out} IS NOT NULL", [])
            if len(self.labels) == 1:
                (p, q), = self.labels
                return (f"CASE WHEN {out} IS NULL THEN NULL WHEN (coalesce({pred}, '') = ?) = ({o} = ?) "
                        "THEN 1.0 ELSE 0.0 END", f"{out} IS NOT NULL", [p, q])
            cases = " ".join("WHEN ? THEN ?" for _ in self.labels)
            params = [x for pair in self.labels for x in pair]
            return (f"CASE WHEN {out} IS NULL THEN NULL WHEN (CASE {pred} {cases} END) = {o} THEN 1.0 ELSE 0.0 END",
                    f"{out} IS NOT NULL", params)
        if self.kind == "logloss":
            s = f"least(greatest(TRY_CAST({quote_ident('score')} AS DOUBLE), {EPS}), {1 - EPS})"
            pos = (f"(CAST({out} AS {text}) = ?)" if self.value is not None
                   else f"(lower(CAST({out} AS {text})) IN ('1', '1.0', 'true'))")
            value = f"CASE WHEN {pos} THEN -ln({s}) ELSE -ln(1 - {s}) END"
            valid = f"{out} IS NOT NULL AND TRY_CAST({quote_ident('score')} AS DOUBLE) IS NOT NULL"
            return value, valid, ([self.value] if self.value is not None else [])
        col = quote_ident(self.column)
        if self.kind == "rate":
            value = f"CASE WHEN {col} IS NULL THEN NULL WHEN CAST({col} AS {text}) = ? THEN 1.0 ELSE 0.0 END"
            return value, f"{col} IS NOT NULL", [self.value]
        value = f"TRY_CAST({col} AS DOUBLE)"
        return value, f"TRY_CAST({col} AS DOUBLE) IS NOT NULL", []

    def check_values(self, con: duckdb.DuckDBPyConnection, sel: Selection, run: Runner | None = None) -> None:
        """Refuse a metric that is constant by construction on the selected rows, naming the values seen.

        ``run``: the engine of the value counts (default the store's DuckDB).
        """
        if self.kind == "mean":
            return
        if self.kind == "rate":
            seen = _values(con, sel, run, self.column)
            if not seen:
                raise NotApplicable(f"metric {self.spec!r}: no row of the windows {sel.baseline} and "
                                    f"{sel.comparison} has a value in {self.column}; pick windows with traffic "
                                    "(vdrift status shows the span of the store)")
            if self.value not in seen:
                close = [v for v in seen if v.lower() == str(self.value).lower()]
                hint = f" (did you mean rate:{self.column}={close[0]}?)" if close else ""
                raise NotApplicable(f"metric {self.spec!r}: the value {self.value!r} never occurs in {self.column} "
                                    f"in these windows; values seen: {_list(seen)}{hint}")
            return
        outcomes = _values(con, sel, run, "outcome")
        if not outcomes:
            raise NotApplicable(f"metric {self.spec!r}: no row in these windows has an outcome yet; ingest the labels "
                                "(or pick windows whose labels have arrived)")
        if self.kind == "logloss":
            if self.value is not None and self.value not in outcomes:
                raise NotApplicable(f"metric {self.spec!r}: the positive outcome {self.value!r} never occurs; "
                                    f"outcomes seen: {_list(outcomes)}")
            if self.value is None and not ({o.lower() for o in outcomes} & {"1", "1.0", "true"}):
                raise NotApplicable(f"metric {self.spec!r}: outcomes are {_list(outcomes)}; name the positive one, "
                                    f"e.g. logloss:{next(iter(outcomes))}")
            return
        preds = _values(con, sel, run, "prediction")
        if self.labels:
            bad = [p for p, _ in self.labels if p not in preds] + [o for _, o in self.labels if o not in outcomes]
            if bad:
                raise NotApplicable(f"metric {self.spec!r}: {_list(bad)} never occur; predictions seen: "
                                    f"{_list(preds)}; outcomes seen: {_list(outcomes)}")
            return
        if not set(preds) & set(outcomes):
            pairs = ",".join(f"{p}={o}" for p, o in zip(sorted(preds)[:2], sorted(outcomes)[:2], strict=False))
            raise NotApplicable(f"metric 'accuracy': predictions ({_list(preds)}) and outcomes ({_list(outcomes)}) "
                                f"never match; say which prediction means which outcome, e.g. accuracy:{pairs}")


def _values(con: duckdb.DuckDBPyConnection, sel: Selection, run: Runner | None, column: str,
            limit: int = 50) -> dict[str, int]:
    """Distinct text values of a column over the selected rows (most frequent first), at most ``limit``."""
    run = runner_for(con, run)
    src, params = sel.rows([f"CAST({quote_ident(column)} AS {text_type(run.dialect)}) AS val__"],
                           dialect=run.dialect)
    rows = run.frame(f"SELECT val__, count(*) AS c FROM ({src}) WHERE val__ IS NOT NULL GROUP BY val__ "
                     f"ORDER BY c DESC, val__ LIMIT {int(limit)}", params).iter_rows()
    return {str(v): int(c) for v, c in rows}


def _list(values) -> str:
    vals = list(values)
    text = ", ".join(repr(v) for v in vals[:10])
    return text + (f" and {len(vals) - 10} more" if len(vals) > 10 else "")


def parse_metric(spec: str | Metric) -> Metric:
    """Parse a metric spec.

    Parameters
    ----------
    spec
        ``rate:<column>=<value>``, ``mean:<column>``, ``accuracy``,
        ``accuracy:<prediction>=<outcome>[,...]``, ``logloss[:<positive>]``
        (or an existing :class:`Metric`).

    Examples
    --------
    >>> parse_metric("rate:prediction=approved")
    Metric(kind='rate', column='prediction', value='approved', labels=())
    >>> parse_metric("accuracy:yes=1").labels
    (('yes', '1'),)
    """
    if isinstance(spec, Metric):
        return spec
    if not isinstance(spec, str):
        raise InputError(f"metric must be text such as 'rate:prediction=approved', got {type(spec).__name__}")
    text = spec.strip()
    kind, sep, rest = text.partition(":")
    if kind == "accuracy":
        if not sep:
            return Metric("accuracy", "prediction")
        pairs = []
        for item in rest.split(","):
            p, eq, o = item.partition("=")
            if not eq or not p.strip() or not o.strip():
                raise InputError(f"cannot read metric {text!r}: write accuracy:<prediction>=<outcome>[,...], "
                                 "e.g. accuracy:yes=1 or accuracy:yes=1,no=0")
            pairs.append((p.strip(), o.strip()))
        return Metric("accuracy", "prediction", labels=tuple(pairs))
    if kind == "logloss":
        return Metric("logloss", "score", rest.strip() if sep and rest.strip() else None)
    if not sep or kind not in ("rate", "mean"):
        raise InputError(f"cannot read metric {text!r}: use {_SPECS}")
    if kind == "rate":
        column, eq, value = rest.partition("=")
        if not eq or not column:
            raise InputError(f"cannot read metric {text!r}: a rate needs rate:<column>=<value>")
        return Metric("rate", column, value)
    if not rest:
        raise InputError(f"cannot read metric {text!r}: a mean needs mean:<column>")
    return Metric("mean", rest)
