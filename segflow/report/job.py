"""The weekly report step: read the week's ML and mart tables (read-only), render every section, write
``<home>/reports/weekly/segments_<as_of date>.html`` and move ``latest.html`` forward (never back)."""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from segflow.errors import NotReady
from segflow.jobs.ml_common import resolve_as_of, to_naive_utc
from segflow.report import sections_business as business
from segflow.report import sections_model as model
from segflow.report import sections_monitoring as monitoring
from segflow.report.context import load_context
from segflow.report.html import Section, Unavailable, not_available, page
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect
from segflow.warehouse_lock import warehouse_step

log = logging.getLogger(__name__)

LATEST = "latest.html"
_NAME = re.compile(r"^segments_(\d{4}-\d{2}-\d{2})\.html$")

# key, title, how to read it, renderer (docs/report.md describes each)
SECTIONS: tuple[tuple[str, str, str, Callable], ...] = (
    ("summary", "Summary", "The week, the model kept, and what the other weekly steps found.", model.summary),
    ("k-selection", "Choice of algorithm and k", "Every candidate's criteria; the model is the simplest "
     "admissible candidate within tolerance of the best composite rank, or last week's choice when the evidence "
     "for a change is not clear.", model.k_selection),
    ("profiles", "Segment profiles", "What sets each segment apart: feature means in population standard "
     "deviations.", model.profiles),
    ("projection", "2-D projection", "Customers in the first two principal components of the model's feature "
     "space, coloured by segment. Overlap here does not imply overlap in all dimensions.", model.projection),
    ("flow", "Segment flow since last week", "Customers moving between last week's and this week's segment ids "
     "(ml.segment_transitions).", monitoring.segment_flow),
    ("drift", "Drift per feature", "PSI on pinned bins and KS per feature, against last week and the fixed "
     "baseline.", monitoring.drift),
    ("spc", "SPC charts of segment KPIs", "Individuals charts (centre ± 3σ from the baseline weeks) with "
     "Western Electric run-rule signals.", monitoring.spc),
    ("anomalies", "Anomalies", "Customers both detectors flag (isolation forest and local outlier factor) and "
     "the features that make them unusual.", monitoring.anomalies),
    ("clv", "Customer lifetime value", "Predictive CLV (BG/NBD + Gamma–Gamma) over the configured horizon.",
     business.clv),
    ("funnel", "Funnel", "Sessions reaching each funnel step in order during the week (marts.agg_funnel_daily).",
     business.funnel),
    ("top-paths", "Top journey paths", "The most frequent session paths (marts.journey_top_paths).",
     business.top_paths),
)


@dataclass
class Report:
    as_of: datetime
    path: Path
    latest: Path
    moved_latest: bool
    sections: dict[str, bool]  # key -> available
    link: str = ""  # where a browser opens it (report_url)

    def as_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "path": str(self.path), "link": self.link,
                "latest": str(self.latest), "moved_latest": self.moved_latest,
                "sections_available": sorted(k for k, v in self.sections.items() if v),
                "sections_not_available": sorted(k for k, v in self.sections.items() if not v)}


def weekly_dir(settings: Settings) -> Path:
    return settings.reports_dir / "weekly"


def report_path(settings: Settings, as_of: datetime) -> Path:
    return weekly_dir(settings) / f"segments_{as_of:%Y-%m-%d}.html"


# the Segments plugin's authenticated route for reports/weekly (segflow/ui/app.py), relative to the Airflow UI
UI_REPORT_ROUTE = "/segflow/report/"


def report_url(settings: Settings, path: Path) -> str:
    """Where a browser opens ``path``: under SEGFLOW_REPORT_URL_BASE when set; else, in an Airflow task, the
    Segments plugin's route (a URL relative to the Airflow UI, behind its login); else the file:// URL."""
    if settings.report_url_base:
        return f"{settings.report_url_base.rstrip('/')}/{path.relative_to(settings.reports_dir).as_posix()}"
    if os.environ.get("AIRFLOW_CTX_DAG_ID") and path.parent == weekly_dir(settings):
        return UI_REPORT_ROUTE + path.name
    return path.resolve().as_uri()


def find_report(settings: Settings, as_of: datetime | None = None) -> Path:
    """The written report of a week (``as_of``: its date counts), or ``latest.html``; NotReady if absent."""
    path = report_path(settings, as_of) if as_of else weekly_dir(settings) / LATEST
    if not path.exists():
        what = f"as of {as_of:%Y-%m-%d}" if as_of else "yet"
        raise NotReady(f"No weekly report {what} ({path}): run `segflow report` (or the weekly DAG) to write it.")
    return path


def _render(ctx) -> list[Section]:
    out = []
    for key, title, how, render in SECTIONS:
        try:
            out.append(Section(key, title, how, render(ctx)))
        except Unavailable as reason:
            out.append(Section(key, title, how, not_available(str(reason)), available=False))
        except Exception as exc:  # one broken plot must not cost the whole report; the log keeps the trace
            log.exception("report section %s failed", key)
            out.append(Section(key, title, how, not_available(f"this section failed to render "
                                                              f"({type(exc).__name__}: {exc})"), available=False))
    return out


def _week(con, as_of: datetime | None) -> datetime:
    """The segmented week: ``as_of`` itself, else the latest run on its date (``--as-of 2025-10-27`` finds an
    early re-cluster of that day), else the latest week when ``as_of`` is None."""
    as_of = resolve_as_of(con, "model_runs", as_of, "No segmentation run yet: run `segflow segment` first.")
    exact = con.execute("select count(*) from ml.model_runs where as_of = ?", [as_of]).fetchall()[0][0]
    if exact:
        return as_of
    same_day = con.execute("select max(as_of) from ml.model_runs where cast(as_of as date) = ?",
                           [as_of.date()]).fetchall()[0][0]
    return same_day or as_of


@warehouse_step("report: weekly")
def write_report(settings: Settings | None = None, as_of: datetime | None = None) -> Report:
    """Write the week's report (the latest segmented week by default); re-running a week rewrites its file."""
    settings = settings or get_settings()
    with connect(settings, read_only=True) as con:
        as_of = _week(con, to_naive_utc(as_of))
        ctx = load_context(con, settings, as_of)
        if ctx.run is None:
            raise NotReady(f"No segmentation run as of {as_of:%Y-%m-%d %H:%M}: run `segflow segment --as-of "
                           f"{as_of:%Y-%m-%d}` (or the weekly DAG) first.")
        sections = _render(ctx)
    html = page(f"segflow weekly segment report — {as_of:%Y-%m-%d}",
                f"Week ending {as_of:%Y-%m-%d %H:%M} UTC · model run {ctx.run_id}", sections,
                f"Written by segflow from {settings.warehouse_path.name}. Static and self-contained: no script, "
                "no external resource. docs/report.md explains each section.")
    target = report_path(settings, as_of)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)  # atomic: a reader never sees half a file
    moved = _move_latest(target, as_of)
    return Report(as_of=as_of, path=target, latest=target.parent / LATEST, moved_latest=moved,
                  sections={s.key: s.available for s in sections}, link=report_url(settings, target))


def _move_latest(target: Path, as_of: datetime) -> bool:
    """Copy ``target`` to latest.html unless a later week's report exists (an older week re-written never moves
    ``latest`` back, as with exports/segments/latest.csv)."""
    dates = [m.group(1) for p in target.parent.iterdir() if (m := _NAME.match(p.name))]
    if max(dates) > f"{as_of:%Y-%m-%d}":
        return False
    tmp = target.parent / (LATEST + ".tmp")
    shutil.copyfile(target, tmp)
    tmp.replace(target.parent / LATEST)
    return True
