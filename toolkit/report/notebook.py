"""Notebook set-up for report cells (called by the first code cell of each template)."""

from __future__ import annotations


def setup() -> None:
    """Render Altair charts as static SVG (vl-convert): no vega runtime, no CDN.

    The 'mimetype'/'jupyterlab' renderers of Altair 6 write outputs that fail
    nbformat validation under papermill and need the network to display
    (docs/design.md, "Offline reports"), so reports always use 'svg'.
    """
    import altair as alt

    alt.renderers.enable("svg")
