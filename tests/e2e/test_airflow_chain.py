"""The real chain through Airflow: `airflow dags test` runs both DAGs on a small generated dataset.

Covers: two weekly cycles (ELT -> segments), re-running an interval changes nothing, a failing data gate
stops everything downstream and keeps the last good segments published.
"""

from __future__ import annotations

import sqlite3

import pytest
from tests_support import small_config, table_fingerprint, week_end

from segflow import airflow_local
from segflow.jobs.status import evaluate, summary
from segflow.settings import Settings
from segflow.sources.generator import generate
from segflow.warehouse import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TABLES = ["raw.events", "meta.load_manifest", "marts.fct_sessions", "marts.customer_features",
          "ml.model_runs", "ml.segment_assignments", "ml.segments", "ml.drift_metrics", "ml.publications"]


def _day(weeks: int) -> str:
    return week_end(weeks).date().isoformat()


def _run(dag_id: str, weeks: int, settings: Settings) -> airflow_local.DagRunOutcome:
    return airflow_local.test_dag(dag_id, _day(weeks), settings)


def _task_states(settings: Settings, dag_id: str) -> dict[str, str]:
    db = settings.airflow_home / "airflow.db"
    with sqlite3.connect(db) as con:
        run_id = con.execute("select run_id from dag_run where dag_id = ? order by id desc limit 1",
                             [dag_id]).fetchone()[0]
        return dict(con.execute("select task_id, state from task_instance where dag_id = ? and run_id = ?",
                                [dag_id, run_id]).fetchall())


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    for key in ("AIRFLOW_HOME", "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        mp.delenv(key, raising=False)
    settings = Settings(home=tmp_path_factory.mktemp("e2e") / "home")
    settings.ensure_dirs()
    report = generate(small_config(customers=500, drift_week=4), settings.landing_dir, settings.truth_dir)
    airflow_local.init(settings)
    outcomes = [_run(dag_id, weeks, settings) for weeks in (4, 5)
                for dag_id in ("segflow_elt", "segflow_segments_weekly")]
    yield settings, report, outcomes
    mp.undo()


def test_both_weekly_cycles_succeed(chain):
    _, _, outcomes = chain
    assert [(o.dag_id, o.logical_date, o.state) for o in outcomes] == [
        ("segflow_elt", _day(4), "success"), ("segflow_segments_weekly", _day(4), "success"),
        ("segflow_elt", _day(5), "success"), ("segflow_segments_weekly", _day(5), "success")]


def test_week_close_emitted_the_asset(chain):
    settings, _, _ = chain
    states = _task_states(settings, "segflow_elt")
    assert states == {"load_raw": "success", "dbt_build": "success", "quality_gate": "success",
                      "is_week_end": "success", "close_week": "success"}
    db = settings.airflow_home / "airflow.db"
    with sqlite3.connect(db) as con:
        events = con.execute("select count(*) from asset_event e join asset a on a.id = e.asset_id "
                             "where a.uri = 'segflow://warehouse/customer_features/weekly'").fetchone()[0]
    assert events == 2


def test_warehouse_after_two_weeks(chain):
    settings, report, _ = chain
    data = summary(settings)
    assert data["load"]["rows_in_files"] == report.events_delivered + report.customers
    assert data["staging"]["unbalanced_files"] == 0
    assert data["staging"]["rows_quarantined"] == sum(report.malformed.values())
    assert data["marts"]["sessions"] > 1000
    assert data["marts"]["customers"] == report.customers
    assert [r["as_of"] for r in data["segment_runs"]] == [str(week_end(4)), str(week_end(5))]
    assert all(r["status"] == "accepted" for r in data["segment_runs"])
    assert data["segment_runs"][1]["previous_run_id"] == data["segment_runs"][0]["run_id"]
    assert data["drift"]["reference_as_of"] == str(week_end(4))
    assert data["published"]["as_of"] == str(week_end(5))
    assert data["data_quality"]["verdict"] == "pass"
    with connect(settings, read_only=True) as con:
        drift_rows, = con.execute("select count(*) from ml.drift_metrics where as_of = ?", [week_end(5)]).fetchone()
    assert drift_rows >= len(settings.features)
    assert (settings.exports_dir / "segments" / f"segments_{_day(5)}.csv").exists()


def test_segments_recover_true_personas(chain):
    settings, _, _ = chain
    result = evaluate(settings)
    print(f"ARI vs generator personas (500 customers, 5 weeks): {result['adjusted_rand_index']}")
    assert result["adjusted_rand_index"] > 0.4
    assert result["customers_compared"] > 400


def test_rerunning_an_interval_changes_nothing(chain):
    settings, _, _ = chain
    with connect(settings, read_only=True) as con:
        before = {t: table_fingerprint(con, t) for t in TABLES}
    assert _run("segflow_elt", 5, settings).state == "success"
    assert _run("segflow_segments_weekly", 5, settings).state == "success"
    with connect(settings, read_only=True) as con:
        after = {t: table_fingerprint(con, t) for t in TABLES}
    assert after == before


def test_failing_gate_stops_downstream_and_keeps_last_good_segments(chain, monkeypatch):
    settings, _, _ = chain
    latest = settings.exports_dir / "segments" / "latest.csv"
    published_before = latest.read_bytes()
    monkeypatch.setenv("SEGFLOW_MIN_CUSTOMERS", "1000000")
    outcome = _run("segflow_elt", 5, settings)
    assert outcome.state == "failed"
    states = _task_states(settings, "segflow_elt")
    assert states["quality_gate"] == "failed"
    assert states["is_week_end"] == "upstream_failed" and states["close_week"] == "upstream_failed"
    log = open(outcome.log).read()
    assert "Data-quality gate failed" in log
    monkeypatch.delenv("SEGFLOW_MIN_CUSTOMERS")
    weekly = _run("segflow_segments_weekly", 5, settings)
    assert weekly.state == "failed"
    assert _task_states(settings, "segflow_segments_weekly")["publish"] == "failed"
    assert latest.read_bytes() == published_before
