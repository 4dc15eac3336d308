"""``render``: validate parameters, run the notebook, export HTML, update the index."""

from __future__ import annotations

import datetime as dt
import html as _html
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from .. import __version__
from ..errors import InputError
from .execute import run_notebook
from .export import export_html
from .figures import list_figures
from .index import RunRecord, write_index, write_run_record
from .params import ReportKind, check_kind, validate

#: Written by the notebook's last cell: ``{"headline": ..., "title": ...}``.
SUMMARY_FILE = "summary.json"
NOTEBOOK_FILE = "report.ipynb"
HTML_FILE = "report.html"


def notebooks_dir() -> Path:
    """Folder of the report templates: ``$VDRIFT_NOTEBOOKS`` or the repository's ``notebooks/``."""
    env = os.environ.get("VDRIFT_NOTEBOOKS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "notebooks"


def template_path(kind: str) -> Path:
    """The notebook template of a report kind."""
    check_kind(kind)
    path = notebooks_dir() / f"{kind}_report.ipynb"
    if not path.is_file():
        raise InputError(
            f"report template {str(path)!r} is missing: run from a vdrift checkout or set "
            "VDRIFT_NOTEBOOKS to the folder holding incident_report.ipynb and weekly_report.ipynb"
        )
    return path


@dataclass(frozen=True)
class ReportResult:
    """What one report run wrote.

    Attributes
    ----------
    kind
        ``incident`` or ``weekly``.
    html
        ``report.html`` (``None`` with ``figures_only``).
    notebook
        The executed ``report.ipynb`` (``None`` with ``figures_only``).
    figures
        Figure files (SVG and PNG) under ``figures/``.
    headline
        One sentence summarising the report.
    run_dir
        The run folder ``<out_dir>/<date>-<slug>``.
    """

    kind: str
    html: Path | None
    notebook: Path | None
    figures: tuple[Path, ...]
    headline: str
    run_dir: Path
    title: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_kind(self.kind)
        for p in (self.html, self.notebook, *self.figures):
            if p is not None and self.run_dir.resolve() not in p.resolve().parents:
                raise ValueError(f"{p} is outside the run folder {self.run_dir}")

    def to_frame(self) -> pl.DataFrame:
        """Tidy list of the files written: ``role`` (html, notebook, figure), ``format``, ``path``."""
        rows = []
        if self.html:
            rows.append(("html", "html", str(self.html)))
        if self.notebook:
            rows.append(("notebook", "ipynb", str(self.notebook)))
        rows += [("figure", p.suffix.lstrip("."), str(p)) for p in self.figures]
        return pl.DataFrame(rows, schema={"role": pl.String, "format": pl.String, "path": pl.String}, orient="row")

    def summary(self) -> str:
        """Title, headline and where the files are, as text."""
        lines = [f"{self.title or self.kind + ' report'}", f"  {self.headline}"]
        if self.html:
            lines.append(f"  html:     {self.html}")
        if self.notebook:
            lines.append(f"  notebook: {self.notebook}")
        lines.append(f"  figures:  {len(self.figures)} files in {self.run_dir / 'figures'}")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind,
                "title": self.title,
                "headline": self.headline,
                "html": str(self.html) if self.html else None,
                "notebook": str(self.notebook) if self.notebook else None,
                "figures": [str(p) for p in self.figures],
                "run_dir": str(self.run_dir),
                "parameters": self.parameters,
            },
            indent=2,
            default=str,
        )

    def _repr_html_(self) -> str:
        e = _html.escape
        link = f'<a href="{e(str(self.html), quote=True)}">{e(str(self.html))}</a>' if self.html else "(figures only)"
        return f"<p><b>{e(self.title)}</b><br>{e(self.headline)}<br>{link}; {len(self.figures)} figure files</p>"


def render(
    kind: ReportKind,
    params: dict[str, Any] | None = None,
    out_dir: str | Path = "reports",
    figures_only: bool = False,
    timeout: float = 600,
    *,
    today: dt.date | None = None,
) -> ReportResult:
    """Render a report: validate, execute with papermill, export offline HTML.

    Parameters
    ----------
    kind
        ``"incident"`` or ``"weekly"``.
    params
        Notebook parameters (see :data:`toolkit.report.params.SPECS`);
        validated before any kernel starts.
    out_dir
        The reports folder; the run goes to ``<out_dir>/<date>-<slug>/``.
    figures_only
        Write only ``figures/*.png|svg`` (no HTML, notebook or index entry).
    timeout
        Seconds any one notebook cell may run.
    today
        Reference date for the weekly default (last full week).

    Returns
    -------
    ReportResult

    Raises
    ------
    InputError, StoreError
        Bad parameters or a missing store (before execution).
    ReportExecutionError
        A notebook cell failed; the message names the cell and the kept notebook.
    """
    p = validate(kind, params, out_dir=out_dir, today=today)
    run_dir = p.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    fig_dir = run_dir / "figures"
    if fig_dir.is_dir():
        for old in fig_dir.iterdir():
            if old.is_file() and old.suffix in (".png", ".svg"):
                old.unlink()
    summary_path = run_dir / SUMMARY_FILE
    if summary_path.exists():
        summary_path.unlink()
    run_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    nb_params = dict(p.notebook)
    nb_params["run_at"] = run_at.isoformat(timespec="seconds")
    template = template_path(kind)

    if figures_only:
        with tempfile.TemporaryDirectory(prefix="vdrift-report-") as tmp:
            scratch = Path(tmp) / NOTEBOOK_FILE
            try:
                run_notebook(template, scratch, nb_params, timeout=timeout, cwd=run_dir)
            except Exception:
                if scratch.exists():  # keep the failed notebook for debugging
                    shutil.copy2(scratch, run_dir / NOTEBOOK_FILE)
                raise
        headline, title = _read_summary(summary_path, p.title)
        return ReportResult(kind, None, None, tuple(list_figures(run_dir)), headline, run_dir, title, p.notebook)

    notebook = run_dir / NOTEBOOK_FILE
    run_notebook(template, notebook, nb_params, timeout=timeout, cwd=run_dir)
    headline, title = _read_summary(summary_path, p.title)
    html_path = export_html(notebook, run_dir / HTML_FILE, title=title)
    write_run_record(
        run_dir,
        RunRecord(
            kind=kind,
            title=title,
            headline=headline,
            period_start=p.comparison.start.isoformat(),
            period_end=p.comparison.end.isoformat(),
            run_at=run_at.isoformat(timespec="seconds"),
            folder=run_dir.name,
            html=HTML_FILE,
            toolkit_version=__version__,
        ),
    )
    write_index(p.out_dir)
    return ReportResult(kind, html_path, notebook, tuple(list_figures(run_dir)), headline, run_dir, title, p.notebook)


def _read_summary(path: Path, default_title: str) -> tuple[str, str]:
    if not path.is_file():
        return "(the notebook wrote no headline)", default_title
    data = json.loads(path.read_text(encoding="utf-8"))
    return str(data.get("headline", "")), str(data.get("title") or default_title)
