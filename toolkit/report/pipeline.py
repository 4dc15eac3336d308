"""``render``: validate parameters, run the notebook, export HTML, update the index."""

from __future__ import annotations

import contextlib
import datetime as dt
import html as _html
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from .. import __version__
from ..errors import InputError, StoreError, VdriftError
from .execute import run_notebook
from .export import export_html
from .figures import list_figures
from .index import RunRecord, write_index, write_run_record
from .params import ReportKind, check_kind, validate

#: Written by the notebook's last cell: ``{"headline": ..., "title": ...}``.
SUMMARY_FILE = "summary.json"
NOTEBOOK_FILE = "report.ipynb"
HTML_FILE = "report.html"


#: The templates ship inside the package (``toolkit/report/notebooks``, which in a checkout is a link to the
#: repository's ``notebooks/`` folder: one copy of each notebook, opened by JupyterLab and packaged by the build).
TEMPLATES_PACKAGE = "toolkit.report"
TEMPLATES_FOLDER = "notebooks"


def template_name(kind: str) -> str:
    """File name of a report kind's notebook template."""
    check_kind(kind)
    return f"{kind}_report.ipynb"


@contextlib.contextmanager
def template_file(kind: str) -> Iterator[Path]:
    """The notebook template of a report kind, as a file on disk for the duration of the block.

    ``$VDRIFT_NOTEBOOKS`` names a folder of templates to use instead of the installed ones.
    """
    name = template_name(kind)
    env = os.environ.get("VDRIFT_NOTEBOOKS")
    if env:
        path = Path(env) / name
        if not path.is_file():
            raise InputError(
                f"report template {str(path)!r} is missing: VDRIFT_NOTEBOOKS must name the folder holding "
                "incident_report.ipynb and weekly_report.ipynb (unset it to use the installed templates)"
            )
        yield path
        return
    resource = resources.files(TEMPLATES_PACKAGE) / TEMPLATES_FOLDER / name
    if not resource.is_file():
        raise InputError(
            f"report template {name!r} is missing from the installed package ({TEMPLATES_PACKAGE}/{TEMPLATES_FOLDER}): "
            "reinstall vdrift, or set VDRIFT_NOTEBOOKS to the folder holding incident_report.ipynb and "
            "weekly_report.ipynb"
        )
    with resources.as_file(resource) as path:
        yield path


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
        """The result as JSON (paths as text)."""
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
    with template_file(kind) as template, _run_lock(p.out_dir, run_dir.name):
        # everything is written into a private folder next to the run folder, which then takes its
        # place: a reader (or a crash) never sees half a report, and no run writes into another's files
        tmp = _private_dir(p.out_dir, run_dir.name)
        try:
            result, record = _render_into(kind, p, template, tmp, run_dir, figures_only, timeout)
        except VdriftError as exc:  # the message names the notebook where it is kept, not the private folder
            kept = _keep_failed(tmp, run_dir)
            raise type(exc)(str(exc).replace(str(tmp), str(kept))) from None
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _cannot_write(p.out_dir, exc) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            _publish(tmp, run_dir)
            if record is not None:  # after the rename: the index never lists a private folder
                write_run_record(run_dir, record)
        except OSError as exc:
            raise _cannot_write(p.out_dir, exc) from None
    if not figures_only:
        write_index(p.out_dir)
    return result


def _render_into(kind: str, p: Any, template: Path, tmp: Path, run_dir: Path, figures_only: bool,
                 timeout: float) -> tuple[ReportResult, RunRecord | None]:
    """Execute and export into ``tmp``; the result names the files as they will be in ``run_dir``."""
    run_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    nb_params = dict(p.notebook)
    nb_params["run_at"] = run_at.isoformat(timespec="seconds")
    nb_params["output_dir"] = str(tmp)
    notebook = tmp / NOTEBOOK_FILE
    run_notebook(template, notebook, nb_params, timeout=timeout, cwd=tmp)
    headline, title = _read_summary(tmp / SUMMARY_FILE, p.title)
    figures = tuple(run_dir / f.relative_to(tmp) for f in list_figures(tmp))
    if figures_only:
        notebook.unlink()
        return ReportResult(kind, None, None, figures, headline, run_dir, title, p.notebook), None
    export_html(notebook, tmp / HTML_FILE, title=title)
    record = RunRecord(
        kind=kind,
        title=title,
        headline=headline,
        period_start=_period_time(p.comparison.start, p.zone),
        period_end=_period_time(p.comparison.end, p.zone),
        run_at=run_at.isoformat(timespec="seconds"),
        folder=run_dir.name,
        html=HTML_FILE,
        toolkit_version=__version__,
    )
    return ReportResult(kind, run_dir / HTML_FILE, run_dir / NOTEBOOK_FILE, figures, headline, run_dir, title,
                        p.notebook), record


def _period_time(ts: dt.datetime, zone: Any) -> str:
    """A period bound for the index: naive UTC ISO text in UTC, else the local time with its offset."""
    return ts.isoformat() if zone.is_utc else zone.aware(ts).isoformat()


def _cannot_write(out_dir: Path, exc: OSError) -> InputError:
    return InputError(
        f"cannot write the report into {str(out_dir)!r}: {exc.strerror or exc}; "
        "pick a writable reports folder with --out-dir (or out_dir=...)"
    )


@contextlib.contextmanager
def _run_lock(out_dir: Path, name: str):
    """Hold ``<out_dir>/.<name>.lock`` for the run: a second run of the same folder is refused at once."""
    import fcntl

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fh = open(out_dir / f".{name}.lock", "a")
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from None
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"another report run is writing {str(out_dir / name)!r} right now; wait for it to finish, or "
                "give this run its own folder with --param slug=NAME"
            ) from None
        yield
    finally:
        fh.close()  # releases the lock


def _private_dir(out_dir: Path, name: str) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=out_dir))
    except OSError as exc:
        raise _cannot_write(out_dir, exc) from None


def _publish(tmp: Path, run_dir: Path) -> None:
    """Put ``tmp`` in the place of ``run_dir`` (two renames; the old run is removed afterwards)."""
    old = None
    if run_dir.exists():
        old = run_dir.with_name(f".{run_dir.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(run_dir, old)
    os.replace(tmp, run_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _keep_failed(tmp: Path, run_dir: Path) -> Path:
    """Keep a failed run's notebook for debugging; return where the notebook now is.

    A first run keeps its folder (with the failed notebook and no HTML); a
    run that replaces an earlier report leaves that report alone and keeps
    its notebook in ``<name>.failed/``.
    """
    if not (tmp / NOTEBOOK_FILE).exists():
        shutil.rmtree(tmp, ignore_errors=True)
        return run_dir
    target = run_dir if not run_dir.exists() else run_dir.with_name(f"{run_dir.name}.failed")
    if target != run_dir:
        shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def _read_summary(path: Path, default_title: str) -> tuple[str, str]:
    if not path.is_file():
        return "(the notebook wrote no headline)", default_title
    data = json.loads(path.read_text(encoding="utf-8"))
    return str(data.get("headline", "")), str(data.get("title") or default_title)
