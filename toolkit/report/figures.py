"""Charts as files (PNG and SVG under ``figures/``) and as inline SVG in the page.

Every chart shown in a report goes through :func:`figure`: it is rendered
once with vl-convert, written as ``figures/<name>.svg`` and
``figures/<name>.png`` (names are stable and descriptive, so a postmortem can
link them), and returned as a :class:`Figure` whose HTML output is the inline
SVG. No vega runtime and no CDN are needed to view the report.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SVG_NS = re.compile(r'\s+xmlns(?::xlink)?="http://www\.w3\.org/(?:2000/svg|1999/xlink)"')
#: Altair refuses larger inline data; report charts are aggregated well below it.
MAX_ROWS = 5000


@dataclass(frozen=True)
class Figure:
    """A rendered chart.

    Attributes
    ----------
    name
        Stable file stem, e.g. ``waterfall``.
    title
        Caption shown above the chart (escaped when rendered).
    svg
        The SVG document from vl-convert.
    paths
        Files written (SVG then PNG); empty when no folder was given.
    """

    name: str
    title: str
    svg: str
    paths: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.name)
        if not self.svg.lstrip().startswith("<svg"):
            raise ValueError(f"figure {self.name!r}: vl-convert did not return an SVG document")

    def _repr_html_(self) -> str:
        inline = _SVG_NS.sub("", self.svg)
        caption = f"<figcaption>{html.escape(self.title)}</figcaption>" if self.title else ""
        return (
            f'<figure class="vdrift-figure" id="fig-{self.name}" data-figure="{self.name}">'
            f"{caption}{inline}</figure>"
        )

    def __repr__(self) -> str:
        return f"Figure({self.name!r}, files={[p.name for p in self.paths]})"


def check_name(name: str) -> str:
    """A figure name: lower-case letters, digits and '-' (it names files)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"figure name {name!r} is not allowed: use lower-case letters, digits and '-'")
    return name


def chart_spec(chart: Any) -> dict:
    """The Vega-Lite spec of an Altair chart (or a spec dict), row count checked."""
    spec = chart if isinstance(chart, dict) else chart.to_dict()
    rows = _count_rows(spec)
    if rows > MAX_ROWS:
        raise InputError(
            f"a chart carries {rows} data rows (limit {MAX_ROWS}): aggregate in DuckDB first "
            "(coarser buckets or fewer series)"
        )
    return spec


def _count_rows(spec: Any) -> int:
    total = 0
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key == "values" and isinstance(value, list):
                total += len(value)
            elif key == "datasets" and isinstance(value, dict):
                total += sum(len(v) for v in value.values() if isinstance(v, list))
            else:
                total += _count_rows(value)
    elif isinstance(spec, list):
        total += sum(_count_rows(v) for v in spec)
    return total


def figure(chart: Any, name: str, *, folder: str | Path | None = None, title: str = "", scale: float = 2.0) -> Figure:
    """Render ``chart`` and write ``<folder>/figures/<name>.svg`` and ``.png``.

    Parameters
    ----------
    chart
        An Altair chart or a Vega-Lite spec dict.
    name
        Stable, descriptive file stem (``[a-z0-9-]``).
    folder
        The report run folder; ``None`` renders without writing files.
    title
        Caption above the chart in the report.
    scale
        Pixel density of the PNG.
    """
    import vl_convert as vlc

    check_name(name)
    spec = chart_spec(chart)
    svg = vlc.vegalite_to_svg(spec)
    paths: list[Path] = []
    if folder is not None:
        out = Path(folder) / "figures"
        out.mkdir(parents=True, exist_ok=True)
        svg_path = out / f"{name}.svg"
        svg_path.write_text(svg, encoding="utf-8")
        png_path = out / f"{name}.png"
        png_path.write_bytes(vlc.vegalite_to_png(spec, scale=scale))
        paths = [svg_path, png_path]
    return Figure(name=name, title=title, svg=svg, paths=tuple(paths))


def list_figures(folder: str | Path) -> list[Path]:
    """The figure files of a run folder, sorted by name."""
    out = Path(folder) / "figures"
    if not out.is_dir():
        return []
    return sorted(p for p in out.iterdir() if p.suffix in (".svg", ".png"))
