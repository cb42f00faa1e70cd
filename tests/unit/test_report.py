"""The weekly HTML report rendered from a real segmented week: every section present with a plot or a reason,
nothing fetched from outside, `latest.html` only moving forward, the CLI. (Two weeks, with the flow, drift and
SPC sections drawn: tests/e2e/test_airflow_chain.py.)"""

from __future__ import annotations

import re
import shutil

import pytest
from tests_support import week_end

from segflow.report import find_report, write_report
from segflow.report.job import SECTIONS
from segflow.report.sankey import sankey_svg
from segflow.settings import Settings

AS_OF = week_end(4)
# the first segmented week: nothing to compare with yet
FIRST_WEEK_UNAVAILABLE = {"flow", "drift", "spc"}


@pytest.fixture(scope="module")
def segmented(built_home, tmp_path_factory) -> Settings:
    """A copy of the built warehouse with week 4 run through the weekly steps (anomalies, recluster, drift, CLV,
    monitoring, KPIs); no publication (its gate needs the GX run)."""
    from segflow.jobs.anomalies import detect_anomalies
    from segflow.jobs.clv import fit_clv
    from segflow.jobs.drift import check_drift
    from segflow.jobs.monitoring import monitor_segments
    from segflow.jobs.registry import register_model
    from segflow.jobs.segment import recluster
    from segflow.jobs.segment_kpis import segment_kpis

    target = tmp_path_factory.mktemp("report") / "home"
    shutil.copytree(built_home.home, target, ignore=shutil.ignore_patterns("*.wal"))
    settings = Settings(home=target, k_max=6)  # fewer model-selection candidates: a faster fixture
    for step in (detect_anomalies, recluster, register_model, check_drift, fit_clv, monitor_segments, segment_kpis):
        step(settings, as_of=AS_OF)
    return settings


@pytest.fixture(scope="module")
def report(segmented):
    return write_report(segmented, as_of=AS_OF)


def _sections(text: str) -> dict[str, str]:
    found = re.findall(r'<section id="([^"]+)" data-section="[^"]+" data-state="([^"]+)">(.*?)</section>', text, re.S)
    return {key: (state, body) for key, state, body in found}


def test_every_section_has_a_plot_or_says_why_not(report):
    text = report.path.read_text(encoding="utf-8")
    sections = _sections(text)
    assert list(sections) == [key for key, *_ in SECTIONS]
    for key, (state, body) in sections.items():
        if key == "summary":
            assert state == "available" and ("kmeans" in body or "gmm" in body)
            continue
        if key in FIRST_WEEK_UNAVAILABLE:
            assert state == "not-available", key
            assert "Not available:" in body and "<svg" not in body, key
        else:
            assert state == "available", (key, body[:300])
            assert body.count("<svg") >= 1, key
    assert report.sections == {k: k not in FIRST_WEEK_UNAVAILABLE for k in sections}
    # the reasons say why, in the reader's terms
    assert "first segmentation run" in sections["flow"][1]
    assert "no reference week" in sections["drift"][1]
    assert "a control chart needs at least 2" in sections["spc"][1]


def test_summary_and_profiles_match_the_warehouse(segmented, report):
    from segflow.warehouse import connect

    with connect(segmented, read_only=True) as con:
        run_id, k, customers, algorithm, code = con.execute(
            "select run_id, k, customer_count, algorithm, code_version from ml.model_runs where as_of = ?",
            [AS_OF]).fetchall()[0]
        names = [n for (n,) in con.execute("select segment_name from ml.segments where run_id = ?",
                                           [run_id]).fetchall()]
        flagged = con.execute("select count(*) from ml.customer_anomalies where as_of = ? and is_flagged",
                              [AS_OF]).fetchall()[0][0]
        registered = con.execute("select version, status from ml.model_registry where run_id = ?",
                                 [run_id]).fetchall()
    text = report.path.read_text(encoding="utf-8")
    summary = _sections(text)["summary"][1]
    assert f"<td>Segments (k)</td><td>{k}</td>" in summary
    assert f"<td>Customers segmented</td><td>{customers:,}</td>" in summary
    assert f"<td>Algorithm</td><td>{algorithm}</td>" in summary
    # the registry's version and decision (the first version: no champion to compare with)
    assert registered and f"{registered[0][0]} ({registered[0][1]})" in summary, (registered, code)
    assert f"{flagged:,} of " in summary
    profiles = _sections(text)["profiles"][1]
    assert all(name.replace("&", "&amp;") in profiles for name in names)
    # one heatmap row per segment, one scatter legend entry per segment
    assert _sections(text)["projection"][1].count(" segmented customers") == 1


def test_report_is_offline_and_self_contained(report):
    text = report.path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text and "<link" not in text and "@import" not in text and "<iframe" not in text
    # every src/href points inside the page: anchors, or images inlined as data URIs (matplotlib embeds the
    # heatmap's raster that way); no CSS url(); SVG namespaces are names, not fetched
    refs = re.findall(r'\b(?:src|href)\s*=\s*["\']?([^"\'\s>]*)', text)
    inside = [r for r in refs if r.startswith(("#", "data:image/"))]
    assert refs and inside == refs, [r for r in refs if r not in inside][:5]
    assert not re.search(r"url\(\s*['\"]?(?!#)", text)  # only url(#id): matplotlib's clip paths
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text)


def test_latest_only_moves_forward(segmented, report, tmp_path):
    weekly = report.path.parent
    latest = weekly / "latest.html"
    assert report.moved_latest and latest.read_bytes() == report.path.read_bytes()
    assert find_report(segmented) == latest and find_report(segmented, AS_OF) == report.path
    # a later week's report exists (written from another home, copied in): re-writing week 4 keeps `latest`
    later = weekly / f"segments_{week_end(5):%Y-%m-%d}.html"
    later.write_bytes(report.path.read_bytes().replace(b"2025-09-29", b"2025-10-06"))
    shutil.copyfile(later, latest)
    try:
        again = write_report(segmented, as_of=AS_OF)
        assert not again.moved_latest
        assert latest.read_bytes() == later.read_bytes()
        assert again.path.read_bytes() != later.read_bytes()
    finally:
        later.unlink()


def test_cli_writes_finds_and_refuses_in_one_line(segmented, report, monkeypatch, capsys):
    from segflow.cli import main

    monkeypatch.setenv("SEGFLOW_HOME", str(segmented.home))
    assert main(["report", "--no-open", "--as-of", AS_OF.date().isoformat()]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(report.path)
    # no later week's report: re-writing the same week moves `latest` to the fresh file (ties move)
    assert (report.path.parent / "latest.html").read_bytes() == report.path.read_bytes()
    assert "8 of 11 sections with content; not available: flow, drift, spc" in captured.err
    assert main(["report", "--path"]) == 0
    assert capsys.readouterr().out.strip() == str(report.path.parent / "latest.html")
    for argv in (["report", "--no-open", "--as-of", "2020-01-06"], ["report", "--path", "--as-of", "2020-01-06"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("segflow: error:") and len(err.strip().splitlines()) == 1, err
        assert "2020-01-06" in err and "Traceback" not in err


def test_sankey_bands_are_proportional_and_labels_escaped():
    flows = [("S01", "S01", 90), ("S01", "S02", 10), ("(new)", "S02", 50), ("S02", "(gone)", 5)]
    svg = sankey_svg(flows, {"S01": "S01 <Loyal & co>", "S02": "S02", "(new)": "new"},
                     {"S01": "S01", "S02": "S02", "(gone)": "gone"}, {"S01": "#111111"})
    assert "<Loyal" not in svg and "&lt;Loyal &amp; co&gt;" in svg
    heights = {}
    for match in re.finditer(r'<rect class="node" x="([0-9.]+)" y="[0-9.]+" width="\d+" height="([0-9.]+)"', svg):
        heights.setdefault(match.group(1), []).append(float(match.group(2)))
    left, right = (heights[x] for x in sorted(heights, key=float))
    # left: S01 (100), S02 (5), (new) (50); right: S01 (90), S02 (60), (gone) (5) -- one scale for both sides
    assert left[0] / left[2] == pytest.approx(100 / 50, rel=0.02)
    assert right[0] / right[1] == pytest.approx(90 / 60, rel=0.02)
    assert left[0] / right[0] == pytest.approx(100 / 90, rel=0.02)
    assert svg.count('class="flow"') == 4 and "10 customers (10% of the source)" in svg


def test_a_week_whose_clv_was_not_fitted_says_why(segmented):
    """fit_clv records `not_ready` (too few repeat customers): the CLV section gives that status and reason."""
    from segflow.jobs.clv import fit_clv
    from segflow.report.context import load_context
    from segflow.report.html import Unavailable
    from segflow.report.sections_business import clv
    from segflow.warehouse import connect

    strict = segmented.model_copy(update={"clv_min_repeat_customers": 1_000_000})
    assert fit_clv(strict, as_of=AS_OF).status == "not_ready"
    try:
        with connect(segmented, read_only=True) as con:
            with pytest.raises(Unavailable, match="the week's CLV fit is not_ready: .*repeat"):
                clv(load_context(con, segmented, AS_OF))
            with pytest.raises(Unavailable, match="CLV was not fitted for this week"):
                clv(load_context(con, segmented, week_end(3)))
    finally:
        assert fit_clv(segmented, as_of=AS_OF).status == "fitted"  # the module's other tests see the fit again


def test_report_url_outside_and_inside_airflow(segmented, monkeypatch, tmp_path):
    """The CLI gets a file:// URL; an Airflow task the Segments plugin's route (behind the UI's login); a set
    SEGFLOW_REPORT_URL_BASE wins over both."""
    from segflow.report import report_path, report_url

    path = report_path(segmented, AS_OF)
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    assert report_url(segmented, path) == path.resolve().as_uri()
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "segflow_segments_weekly")
    assert report_url(segmented, path) == f"/segflow/report/{path.name}"
    based = Settings(home=segmented.home, report_url_base="https://reports.example/r/")
    assert report_url(based, path) == f"https://reports.example/r/weekly/{path.name}"
