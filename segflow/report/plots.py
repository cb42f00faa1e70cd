"""matplotlib (Agg, no display) figures turned into inline SVG, and the segment colours every plot shares."""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, no GUI toolkit (Airflow workers, CI)
import matplotlib.pyplot as plt  # noqa: E402

_PROLOGUE = re.compile(r"<\?xml[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*|<metadata>.*?</metadata>\s*", re.S)
_SIZE = re.compile(r'width="([0-9.]+pt)" height="[0-9.]+pt"')
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "svg.fonttype": "none",
         "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 100}


def new_figure(width: float = 8.0, height: float = 3.2, nrows: int = 1, ncols: int = 1, **kwargs):
    with plt.rc_context(STYLE):
        return plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, **kwargs)


def to_svg(fig, key: str) -> str:
    """The figure as an inline ``<svg>`` element (no XML prologue, no metadata); ``key`` salts its element ids
    so two figures of one page never share an id and the output is the same for the same figure."""
    buf = io.StringIO()
    with plt.rc_context({**STYLE, "svg.hashsalt": key}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = _PROLOGUE.sub("", buf.getvalue())
    # scale down with the page, never up: width 100% capped at the drawn width; the viewBox keeps the aspect
    size = _SIZE.search(svg)
    if size:
        svg = svg[:size.start()] + f'width="100%" style="max-width:{size.group(1)}"' + svg[size.end():]
    return svg.replace("<svg ", f'<svg role="img" aria-label="{key}" ', 1)


def segment_colors(segment_ids) -> dict[str, str]:
    """A stable colour per segment id (ordered by id), the same in every plot of a report."""
    ids = sorted({str(s) for s in segment_ids if s is not None})
    return {sid: _PALETTE[i % len(_PALETTE)] for i, sid in enumerate(ids)}
