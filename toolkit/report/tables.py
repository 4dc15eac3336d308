"""Small HTML building blocks for report cells, with every data string escaped.

Markdown outputs would let raw HTML from the data through nbconvert, so the
report cells emit HTML built here; :class:`Html` carries it to the notebook.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import dataclass
from collections.abc import Callable, Mapping, Sequence

import polars as pl

Formatter = Callable[[object], str]


@dataclass(frozen=True)
class Html:
    """A piece of already-escaped HTML displayed as a notebook output."""

    body: str

    def _repr_html_(self) -> str:
        return self.body

    def __str__(self) -> str:
        return self.body


def esc(value: object) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt_cell(value: object) -> str:
    """Default text of a table cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.4g}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_cell(v) for v in value)
    return str(value)


_NUM = ' class="num"'


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def table(
    frame: pl.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
    formats: Mapping[str, Formatter] | None = None,
    row_class: Callable[[dict], str] | None = None,
    max_rows: int = 200,
    empty: str = "(none)",
) -> Html:
    """An escaped HTML table of (at most ``max_rows`` rows of) a polars frame."""
    cols = list(columns or frame.columns)
    headers = dict(headers or {})
    formats = dict(formats or {})
    if frame.height == 0:
        return Html(f'<p class="vdrift-note">{esc(empty)}</p>')
    head = "".join(f"<th>{esc(headers.get(c, c))}</th>" for c in cols)
    body = []
    for row in frame.head(max_rows).iter_rows(named=True):
        cls = f' class="{esc(row_class(row))}"' if row_class else ""
        cells = "".join(
            f"<td{_NUM if _is_number(row[c]) else ''}>{esc(formats.get(c, fmt_cell)(row[c]))}</td>" for c in cols
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    more = ""
    if frame.height > max_rows:
        more = f'<p class="vdrift-note">{frame.height - max_rows} more rows not shown.</p>'
    return Html(
        f'<table class="vdrift-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}'
    )


def heading(text: str, level: int = 2) -> Html:
    """An escaped heading of the given level (1-6)."""
    level = min(max(int(level), 1), 6)
    return Html(f"<h{level}>{esc(text)}</h{level}>")


def paragraph(text: str, *, cls: str = "") -> Html:
    """An escaped paragraph, with an optional CSS class."""
    attr = f' class="{esc(cls)}"' if cls else ""
    return Html(f"<p{attr}>{esc(text)}</p>")


def bullets(items: Sequence[str], *, cls: str = "") -> Html:
    """An escaped bullet list, with an optional CSS class."""
    attr = f' class="{esc(cls)}"' if cls else ""
    return Html(f"<ul{attr}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>")


def concat(*parts: Html) -> Html:
    """The parts one after another."""
    return Html("".join(p.body for p in parts))
