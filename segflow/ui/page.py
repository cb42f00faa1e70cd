"""The Segments page: the published status artifact rendered as one self-contained HTML page (no CDN, no script)."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from segflow.jobs.publish_status import latest_path
from segflow.settings import Settings
from segflow.ui.files import artifacts

_ENV = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                   autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)

SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD = 120, 28, 3


def load_status(settings: Settings) -> dict | None:
    """The latest published status, or None before the first publish."""
    path = latest_path(settings)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def sparkline(values: list[int | None]) -> dict:
    """Points of an inline SVG polyline for a size series (weeks without the segment leave a gap)."""
    known = [v for v in values if v is not None]
    if not known:
        return {"segments": [], "last": None}
    low, high = min(known), max(known)
    span = (high - low) or 1
    step = (SPARK_WIDTH - 2 * SPARK_PAD) / max(len(values) - 1, 1)
    runs: list[list[str]] = [[]]
    last = None
    for i, value in enumerate(values):
        if value is None:
            runs.append([])
            continue
        x = SPARK_PAD + i * step
        y = SPARK_HEIGHT - SPARK_PAD - (value - low) / span * (SPARK_HEIGHT - 2 * SPARK_PAD)
        runs[-1].append(f"{x:.1f},{y:.1f}")
        last = (round(x, 1), round(y, 1))
    return {"segments": [" ".join(r) for r in runs if r], "last": last, "low": low, "high": high}


def transition_matrix(status: dict) -> dict:
    """Rows (last week's segment, or new customers) x columns (this week's segment, or gone) of customer counts."""
    cells = {(t["from"], t["to"]): t["customers"] for t in status.get("transitions", [])}
    rows = sorted({f for f, _ in cells}, key=lambda v: (v is not None, v or ""))
    cols = sorted({t for _, t in cells}, key=lambda v: (v is None, v or ""))
    return {"rows": rows, "cols": cols, "cells": {f"{f}|{t}": n for (f, t), n in cells.items()},
            "max": max(cells.values(), default=0)}


def _shown(settings: Settings, path: str) -> str:
    """A path as the page shows it: relative to SEGFLOW_HOME ($SEGFLOW_HOME/...) when inside it."""
    home = str(settings.home)
    return "$SEGFLOW_HOME" + path[len(home):] if path.startswith(home + "/") else path


def render(settings: Settings) -> str:
    status = load_status(settings)
    links = list(artifacts(settings).values())
    context = {"status": status, "links": links, "artifact_path": _shown(settings, str(latest_path(settings))),
               "spark": {"width": SPARK_WIDTH, "height": SPARK_HEIGHT}}
    if status:
        context["sparks"] = {s["segment_id"]: sparkline(s["trend"]) for s in status["segments"]}
        context["matrix"] = transition_matrix(status)
        context["names"] = {s["segment_id"]: s["name"] for s in status["segments"]}
        context["export_path"] = _shown(settings, status["export"]["path"])
    return _ENV.get_template("segments.html").render(**context)
