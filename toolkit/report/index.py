"""``reports/index.html``: every report run with its date, title and headline.

Each run folder holds a ``run.json`` written by :func:`write_run_record`; the
index is rebuilt from those records, so deleting a run folder and rebuilding
removes it from the list. Every string is escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import asdict, dataclass
from pathlib import Path

RUN_RECORD = "run.json"
INDEX = "index.html"


@dataclass(frozen=True)
class RunRecord:
    """What the index shows about one run."""

    kind: str
    title: str
    headline: str
    period_start: str
    period_end: str
    run_at: str
    folder: str
    html: str | None
    toolkit_version: str

    def __post_init__(self) -> None:
        if "/" in self.folder or "\\" in self.folder or self.folder in ("", ".", ".."):
            raise ValueError(f"run folder must be a single folder name, got {self.folder!r}")


def write_run_record(run_dir: Path, record: RunRecord) -> Path:
    """Write ``run.json`` into ``run_dir``."""
    path = run_dir / RUN_RECORD
    path.write_text(json.dumps(asdict(record), indent=2), encoding="utf-8")
    return path


def read_runs(out_dir: Path) -> list[RunRecord]:
    """All run records under ``out_dir``, newest period first (unreadable ones skipped)."""
    runs: list[RunRecord] = []
    if not out_dir.is_dir():
        return runs
    for rec in out_dir.glob(f"*/{RUN_RECORD}"):
        try:
            data = json.loads(rec.read_text(encoding="utf-8"))
            runs.append(RunRecord(**{**data, "folder": rec.parent.name}))
        except (OSError, ValueError, TypeError):
            continue
    runs.sort(key=lambda r: (r.period_start, r.run_at, r.folder), reverse=True)
    return runs


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>vdrift reports</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1100px; margin: 2em auto;
        padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; vertical-align: top; padding: 6px 10px; border-bottom: 1px solid #ddd; }}
th {{ background: #f4f7fb; }}
td.period, td.run {{ white-space: nowrap; }}
td.kind {{ text-transform: uppercase; font-size: 0.8em; color: #555; }}
.note {{ color: #666; font-size: 0.9em; }}
</style>
</head>
<body>
<h1>vdrift reports</h1>
<p class="note">{count} run(s); rebuilt {built} UTC. Each report is a self-contained HTML page (works offline);
figures are under each run's figures/ folder.</p>
<table>
<thead><tr><th>Period</th><th>Kind</th><th>Title</th><th>Headline</th><th>Run at (UTC)</th><th>Files</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""


def _row(r: RunRecord) -> str:
    e = html.escape
    folder = e(r.folder, quote=True)
    title = (
        f'<a href="{folder}/{e(r.html, quote=True)}">{e(r.title)}</a>' if r.html else e(r.title)
    )
    run_at = r.run_at[:16].replace("T", " ")
    files = f'<a href="{folder}/figures/">figures</a>'
    if r.html:
        files = f'<a href="{folder}/report.ipynb">notebook</a> · ' + files
    return (
        f"<tr><td class=\"period\">{e(r.period_start[:10])}..{e(r.period_end[:10])}</td>"
        f"<td class=\"kind\">{e(r.kind)}</td>"
        f"<td>{title}</td><td>{e(r.headline)}</td><td class=\"run\">{e(run_at)}</td><td>{files}</td></tr>"
    )


def write_index(out_dir: Path) -> Path:
    """Rebuild ``out_dir/index.html`` from the run records and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = read_runs(out_dir)
    rows = "\n".join(_row(r) for r in runs) or '<tr><td colspan="6">No reports yet.</td></tr>'
    built = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    page = _PAGE.format(count=len(runs), built=built, rows=rows)
    path = out_dir / INDEX
    path.write_text(page, encoding="utf-8")
    return path
