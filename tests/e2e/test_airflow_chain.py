"""The real chain through Airflow, started the way the README starts it: `segflow demo` (a small one).

The demo generates data and runs both DAGs with `airflow dags test` for two weeks. On top of that run:
its summary, the warehouse after two weekly cycles, segment quality against the true personas,
re-running an interval changes nothing, and a failing data gate stops everything downstream and keeps
the last good segments published.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests_support import SMALL_START, table_fingerprint, week_end

from segflow import airflow_local
from segflow.dbt_manifest import require_manifest
from segflow.jobs.status import evaluate, summary
from segflow.settings import Settings
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


@pytest.fixture(autouse=True)
def _no_outside_airflow(monkeypatch):
    """The runs below must use the demo's embedded Airflow, whatever the developer has exported, and no PII key:
    `make demo` works without one (the demo home takes the public demo key)."""
    for key in [k for k in os.environ if k.startswith("AIRFLOW") or k.startswith("SEGFLOW_PII_KEY")]:
        monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("e2e") / "home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SEGFLOW_PII_KEY"))}
    env["SEGFLOW_HOME"] = str(settings.home)
    proc = subprocess.run([str(Path(sys.executable).with_name("segflow")), "demo", "--customers", "500",
                           "--weeks", "5", "--seed", "11"], env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((settings.truth_dir / "generation.json").read_text())
    assert report["config"]["start"] == SMALL_START.isoformat()
    return settings, report["report"], proc


def test_demo_ran_both_weekly_cycles_through_airflow(chain):
    _, _, proc = chain
    runs = re.findall(r"airflow dags test (\S+) (\S+) \.\.\. (\w+)", proc.stdout)
    assert runs == [("segflow_elt", _day(4), "success"), ("segflow_segments_weekly", _day(4), "success"),
                    ("segflow_elt", _day(5), "success"), ("segflow_segments_weekly", _day(5), "success")]
    assert "Traceback" not in proc.stderr


def test_demo_prints_the_summary_and_where_to_look(chain):
    settings, _, proc = chain
    out = proc.stdout
    for expected in ("rows delivered", "rejected at load", "quarantined", "accounting       balanced",
                     "sessions", "customers", "data quality       PASS", "drift", "published",
                     "adjusted Rand index", "Where to look next", "make airflow", "make docs"):
        assert expected in out, expected
    assert len([line for line in out.splitlines() if re.match(r"  S\d\d  ", line)]) >= 3
    report = settings.artifacts_dir / "reports" / f"summary_{_day(5)}.txt"
    assert "segflow summary" in report.read_text()


def test_the_weekly_dag_valued_the_customers(chain):
    settings, _, _ = chain
    assert _task_states(settings, "segflow_segments_weekly")["fit_clv"] == "success"
    with connect(settings, read_only=True) as con:
        weeks = con.execute("select as_of, status, reason from ml.clv_models order by as_of").fetchall()
        valued = con.execute("select count(*) from ml.customer_clv where as_of = ?", [week_end(5)]).fetchone()[0]
        customers = con.execute("select count(*) from marts.customer_value").fetchone()[0]
    assert [w[0] for w in weeks] == [week_end(4), week_end(5)]
    assert weeks[-1][1] == "fitted", weeks[-1]
    assert valued == customers > 0


def test_week_close_emitted_the_asset(chain):
    settings, _, _ = chain
    states = _task_states(settings, "segflow_elt")
    # every dbt model's task (and its tests') succeeded: docs/airflow.md
    dbt = {task: states.pop(task) for task in list(states) if task.startswith("dbt_build.")}
    nodes = json.loads(require_manifest(settings).read_text())["nodes"].values()
    assert set(dbt) == {f"dbt_build.{n['name']}_{'seed' if n['resource_type'] == 'seed' else 'run'}"
                        for n in nodes if n["resource_type"] in ("model", "seed")} | {
        "dbt_build.dbt_producer_watcher", "dbt_build.dbt_producer_watcher_done"}
    assert len(dbt) > 50 and set(dbt.values()) == {"success"}
    # the daily drift screen ran and found no drift: no early re-cluster triggered or recorded
    assert states == {"load_raw": "success", "quality_gate": "success",
                      "is_week_end": "success", "close_week": "success", "purge_raw_pii": "success",
                      "drift_screen": "success", "drift_says_recluster": "success",
                      "trigger_recluster": "skipped", "record_recluster": "skipped"}
    db = settings.airflow_home / "airflow.db"
    with sqlite3.connect(db) as con:
        events = con.execute("select count(*) from asset_event e join asset a on a.id = e.asset_id "
                             "where a.uri = 'segflow://warehouse/customer_features/weekly'").fetchone()[0]
    assert events == 2


def test_warehouse_after_two_weeks(chain):
    settings, report, _ = chain
    data = summary(settings)
    assert data["load"]["rows_in_files"] == report["events_delivered"] + report["customers"]
    assert data["staging"]["unbalanced_files"] == 0
    assert data["staging"]["rows_quarantined"] == sum(report["malformed"].values())
    assert data["marts"]["sessions"] > 1000
    assert data["marts"]["customers"] == report["customers"]
    assert [r["as_of"] for r in data["segment_runs"]] == [str(week_end(4)), str(week_end(5))]
    assert all(r["status"] == "accepted" for r in data["segment_runs"])
    assert data["segment_runs"][1]["previous_run_id"] == data["segment_runs"][0]["run_id"]
    assert data["drift"]["reference_as_of"] == str(week_end(4))
    assert data["published"]["as_of"] == str(week_end(5))
    assert data["data_quality"]["verdict"] == "pass"
    with connect(settings, read_only=True) as con:
        drift_rows, = con.execute("select count(*) from ml.drift_metrics where as_of = ? and scope = 'population'",
                                  [week_end(5)]).fetchone()
        snapshot = {c for (c,) in con.execute("select column_name from information_schema.columns where "
                                              "table_schema = 'ml' and table_name = 'feature_snapshots'").fetchall()}
    # every windowed feature of the snapshot, against last week and against the baseline
    assert drift_rows == 2 * len(set(settings.drift_features) & snapshot) > 0
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
