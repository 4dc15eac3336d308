"""Offline HTML export of an executed report notebook.

nbconvert's stock templates load require.js, MathJax and mermaid from a CDN
(docs/design.md, "Offline reports"); the ``vdrift`` template in ``templates/`` extends the
JupyterLab template with those blocks emptied. Code and the parameter cells
are dropped. The result is then checked: no script, link, image, font or
style may reference an ``http(s)`` URL.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from ..errors import VdriftError

TEMPLATES_DIR = Path(__file__).with_name("templates")
TEMPLATE_NAME = "vdrift"
#: Cells removed from the HTML (papermill adds ``injected-parameters``).
REMOVED_TAGS = ("parameters", "injected-parameters", "remove-cell")

_URL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+", re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_STYLE_BLOCK = re.compile(r"(<style[^>]*>)(.*?)(</style>)", re.DOTALL | re.IGNORECASE)
_SVG_NS = re.compile(r'\s+xmlns(?::xlink)?="http://www\.w3\.org/(?:2000/svg|1999/xlink)"')


class OfflineError(VdriftError):
    """The exported HTML would need the network."""


def export_html(notebook: Path, html: Path, *, title: str) -> Path:
    """Write ``notebook`` as a self-contained HTML page without code.

    Parameters
    ----------
    notebook
        An executed notebook.
    html
        Output file.
    title
        The page title (escaped by the template).

    Raises
    ------
    OfflineError
        If the page still references a remote script, style, font or link.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    nb = nbformat.read(str(notebook), as_version=4)
    nb.metadata["title"] = title
    config = Config()
    config.TagRemovePreprocessor.remove_cell_tags = set(REMOVED_TAGS)
    config.TagRemovePreprocessor.enabled = True
    exporter = HTMLExporter(
        config=config,
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.register_preprocessor(TagRemovePreprocessor(config=config), enabled=True)
    body, _ = exporter.from_notebook_node(nb)
    body = make_offline(body)
    problems = offline_violations(body)
    if problems:
        raise OfflineError(
            "the exported report would load resources from the network: "
            + "; ".join(problems[:5])
            + ". This is a bug in the report template or a chart: please report it."
        )
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(body, encoding="utf-8")
    return html


def make_offline(page: str) -> str:
    """Drop URL-only noise that is not a resource: CSS comments and SVG namespaces.

    Inline ``<svg>`` in HTML needs no ``xmlns``; the stylesheet comments cite
    web pages. Removing both leaves a page in which any remaining URL is a
    real reference (and would be reported by :func:`offline_violations`).
    """
    page = _STYLE_BLOCK.sub(lambda m: m.group(1) + _CSS_COMMENT.sub("", m.group(2)) + m.group(3), page)
    return _SVG_NS.sub("", page)


class _RefScanner(HTMLParser):
    _URL_ATTRS = {"src", "href", "xlink:href", "srcset", "poster", "data", "action", "formaction"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_style = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in self._URL_ATTRS and _is_remote(value):
                self.problems.append(f"<{tag} {name}={value!r}>")
            if name == "style" and _css_remote(value):
                self.problems.append(f"<{tag} style=...> loads {_css_remote(value)!r}")
        if tag == "style":
            self._in_style = True
        if tag == "script":
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_style and _css_remote(data):
            self.problems.append(f"<style> loads {_css_remote(data)!r}")
        if self._in_script and re.search(r"https?://", data, re.IGNORECASE):
            self.problems.append("an inline <script> mentions an http(s) URL")


def _is_remote(value: str) -> bool:
    v = value.strip().lower()
    return v.startswith(("http://", "https://", "//")) or ", http" in v


def _css_remote(css: str) -> str:
    css = _CSS_COMMENT.sub("", css)
    m = re.search(r"(?:url\(\s*['\"]?|@import\s+['\"]?)((?:https?:)?//[^'\")\s]+)", css, re.IGNORECASE)
    return m.group(1) if m else ""


def offline_violations(page: str) -> list[str]:
    """Every reference in ``page`` that would need the network.

    Checks ``src``/``href``-like attributes of every element, inline styles,
    ``<style>`` blocks (``url(...)`` and ``@import``) and inline scripts.
    """
    scanner = _RefScanner()
    scanner.feed(page)
    scanner.close()
    return scanner.problems
