"""The status artifact the real publish job writes, and the Segments page rendered from it (no server)."""

from __future__ import annotations

import html
import json
import re
import shutil

import pytest
from tests_support import week_end

from segflow.jobs.publish_segments import publish
from segflow.settings import Settings
from segflow.ui.page import render
from segflow.warehouse import connect

pytestmark = pytest.mark.slow  # the shared fixture runs two weeks of gate, segmentation, drift and publish


def _status(settings: Settings, name: str = "latest.json") -> dict:
    return json.loads((settings.exports_dir / "status" / name).read_text())


def test_publish_writes_the_week_s_status_with_what_the_warehouse_recorded(published_home):
    status = _status(published_home)
    assert status["as_of"] == week_end(5).isoformat()
    assert status == _status(published_home, f"status_{week_end(5):%Y-%m-%d}.json")
    assert _status(published_home, f"status_{week_end(4):%Y-%m-%d}.json")["as_of"] == week_end(4).isoformat()
    assert status["weeks"] == [week_end(4).isoformat(), week_end(5).isoformat()]
    with connect(published_home, read_only=True) as con:
        run_id, k, customers = con.execute("select run_id, k, customer_count from ml.model_runs where as_of = ?",
                                           [week_end(5)]).fetchall()[0]
        sizes = dict(con.execute("select segment_id, customer_count from ml.segments where as_of = ?",
                                 [week_end(5)]).fetchall())
        before = dict(con.execute("select segment_id, customer_count from ml.segments where as_of = ?",
                                  [week_end(4)]).fetchall())
        moved = {(f, t): n for f, t, n in con.execute(
            "select from_segment_id, to_segment_id, customers from ml.segment_transitions where as_of = ?",
            [week_end(5)]).fetchall()}
        drift = con.execute("select verdict from ml.drift_runs where as_of = ? and run_kind = 'weekly'",
                            [week_end(5)]).fetchall()[0][0]
        flagged = con.execute("select count(*) from ml.customer_anomalies where as_of = ? and is_flagged",
                              [week_end(5)]).fetchall()[0][0]
        exported = con.execute("select row_count from ml.publications where as_of = ?", [week_end(5)]).fetchall()
    assert status["model"]["run_id"] == run_id and status["model"]["k"] == k == len(status["segments"])
    assert status["model"]["customers"] == customers
    assert {s["segment_id"]: s["size"] for s in status["segments"]} == sizes
    for segment in status["segments"]:
        assert segment["trend"] == [before.get(segment["segment_id"]), sizes[segment["segment_id"]]]
        assert segment["name"] and segment["rule"]
        assert segment["share"] == pytest.approx(segment["size"] / customers, abs=1e-4)
    assert moved  # the second week has a previous one
    assert {(t["from"], t["to"]): t["customers"] for t in status["transitions"]} == moved
    assert status["drift"]["verdict"] == drift
    assert status["drift"]["top_features"]
    assert status["data_quality"]["verdict"] == "pass"
    assert {s["suite"] for s in status["data_quality"]["suites"]} >= {"staged_events", "sessions", "orders"}
    assert status["anomalies"]["flagged"] == flagged
    assert status["export"]["rows"] == exported[0][0]


def test_republishing_an_older_week_never_moves_latest_back(published_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(published_home.home, home, ignore=shutil.ignore_patterns("*.wal", "airflow"))
    settings = Settings(home=home)
    week4 = settings.exports_dir / "status" / f"status_{week_end(4):%Y-%m-%d}.json"
    week4.unlink()
    publish(settings, as_of=week_end(4))
    assert _status(settings)["as_of"] == week_end(5).isoformat()
    assert json.loads(week4.read_text())["as_of"] == week_end(4).isoformat()


def test_page_renders_the_published_status_without_the_warehouse(published_home, tmp_path):
    # only the published files, no warehouse: the page must not need it (it never takes the lock)
    home = tmp_path / "home"
    for folder in ("exports", "artifacts"):
        shutil.copytree(published_home.home / folder, home / folder)
    settings = Settings(home=home)
    assert not settings.warehouse_path.exists()
    page = render(settings)
    status = _status(settings)
    assert f"as of {week_end(5):%Y-%m-%d}" in page
    rows = re.findall(r'<tr data-segment="([^"]+)">', page)
    assert rows == [s["segment_id"] for s in status["segments"]]
    for segment in status["segments"]:
        assert html.escape(segment["name"]) in page
    assert page.count('<svg class="spark"') == len(status["segments"])
    assert page.count("<polyline points=") >= len(status["segments"])
    assert 'id="transitions"' in page and "new this week" in page
    assert f"Data quality: {status['data_quality']['verdict']}" in page
    assert f"Drift: {status['drift']['verdict']}" in page
    assert f"Anomalies: {status['anomalies']['flagged']} of" in page
    assert '<a href="docs/dbt/">dbt docs</a>' in page
    assert '<a href="docs/data/">GX Data Docs</a>' in page
    assert "Weekly report: <span class=\"missing\">not yet written" in page
    (home / "reports" / "weekly").mkdir(parents=True)
    (home / "reports" / "weekly" / "latest.html").write_text("<h1>week</h1>")
    assert '<a href="report/">Weekly report</a>' in render(settings)


def test_page_before_the_first_publish_says_what_to_run(tmp_path):
    page = render(Settings(home=tmp_path / "empty"))
    assert 'id="no-status"' in page and "segflow_segments_weekly" in page
    assert "dbt docs: <span class=\"missing\">not generated yet: run `segflow docs`" in page
