"""Metric specifications: parse ``rate:col=value``, ``mean:col`` and ``accuracy``.

A :class:`Metric` turns a user's spec into a SQL expression over the
``predictions_resolved`` view with a quoted, checked column name and bound
values; nothing from the spec is ever spliced into SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import duckdb

from ..errors import InputError
from ..sqlutil import quote_ident, table_columns

MetricKind = Literal["rate", "mean", "accuracy"]
VIEW = "predictions_resolved"

#: Columns whose values a model produces; a residual on them points to a hidden change.
MODEL_OUTPUT_COLUMNS = ("prediction", "score")


@dataclass(frozen=True)
class Metric:
    """A metric over prediction rows.

    Parameters
    ----------
    kind
        ``rate`` (share of rows whose column equals ``value``), ``mean``
        (average of the column cast to DOUBLE) or ``accuracy`` (share of rows
        with an outcome where ``prediction = outcome``).
    column
        The column the metric reads (``outcome``/``prediction`` for accuracy).
    value
        The value counted by a rate, as text; ``None`` otherwise.
    """

    kind: MetricKind
    column: str
    value: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("rate", "mean", "accuracy"):
            raise InputError(f"unknown metric kind {self.kind!r}: use rate, mean or accuracy")
        if self.kind == "rate" and self.value is None:
            raise InputError("a rate metric needs a value: rate:<column>=<value>")
        if not self.column:
            raise InputError("a metric needs a column, e.g. mean:score")

    @property
    def spec(self) -> str:
        """The canonical text form, e.g. ``rate:prediction=approved``."""
        if self.kind == "accuracy":
            return "accuracy"
        if self.kind == "rate":
            return f"rate:{self.column}={self.value}"
        return f"mean:{self.column}"

    @property
    def is_rate(self) -> bool:
        """True when the per-row value is 0/1 (rates and accuracy)."""
        return self.kind in ("rate", "accuracy")

    @property
    def is_model_output(self) -> bool:
        """True when the metric reads only what the model produced.

        For such metrics a resolved version is a fixed function of its inputs,
        so a residual means the same version behaved differently.
        """
        return self.kind != "accuracy" and self.column in MODEL_OUTPUT_COLUMNS

    @property
    def label(self) -> str:
        """Plain-language name used in headlines."""
        if self.kind == "accuracy":
            return "accuracy"
        if self.kind == "rate":
            return f"{self.value} rate ({self.column})"
        return f"mean {self.column}"

    @property
    def unit(self) -> str:
        """``pt`` (percentage points) for rates, empty for means."""
        return "pt" if self.is_rate else ""

    def scale(self) -> float:
        """Factor turning the metric into display units (100 for rates)."""
        return 100.0 if self.is_rate else 1.0

    def check(self, con: duckdb.DuckDBPyConnection) -> None:
        """Raise :class:`InputError` if the store lacks the needed columns."""
        cols = table_columns(con, VIEW)
        needed = ["prediction", "outcome"] if self.kind == "accuracy" else [self.column]
        for name in needed:
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
        if self.kind == "accuracy":
            pred, out = quote_ident("prediction"), quote_ident("outcome")
            value = (
                f"CASE WHEN {out} IS NULL THEN NULL "
                f"WHEN CAST({pred} AS VARCHAR) = CAST({out} AS VARCHAR) THEN 1.0 ELSE 0.0 END"
            )
            return value, f"{out} IS NOT NULL", []
        col = quote_ident(self.column)
        if self.kind == "rate":
            value = f"CASE WHEN {col} IS NULL THEN NULL WHEN CAST({col} AS VARCHAR) = ? THEN 1.0 ELSE 0.0 END"
            return value, f"{col} IS NOT NULL", [self.value]
        value = f"TRY_CAST({col} AS DOUBLE)"
        return value, f"TRY_CAST({col} AS DOUBLE) IS NOT NULL", []


def parse_metric(spec: "str | Metric") -> Metric:
    """Parse a metric spec.

    Parameters
    ----------
    spec
        ``rate:<column>=<value>``, ``mean:<column>`` or ``accuracy``
        (or an existing :class:`Metric`).

    Examples
    --------
    >>> parse_metric("rate:prediction=approved")
    Metric(kind='rate', column='prediction', value='approved')
    """
    if isinstance(spec, Metric):
        return spec
    text = str(spec).strip()
    if text == "accuracy":
        return Metric("accuracy", "prediction")
    kind, sep, rest = text.partition(":")
    if not sep or kind not in ("rate", "mean"):
        raise InputError(
            f"cannot read metric {text!r}: use rate:<column>=<value> (e.g. rate:prediction=approved), "
            "mean:<column> (e.g. mean:score) or accuracy"
        )
    if kind == "rate":
        column, eq, value = rest.partition("=")
        if not eq or not column:
            raise InputError(f"cannot read metric {text!r}: a rate needs rate:<column>=<value>")
        return Metric("rate", column, value)
    if not rest:
        raise InputError(f"cannot read metric {text!r}: a mean needs mean:<column>")
    return Metric("mean", rest)
