"""The real chain through Airflow, started the way the README starts it: `segflow demo` (a small one).

The demo generates data ending at the last week close before --until, starts Airflow's scheduler, dag-processor,
triggerer and api-server, backfills segflow_elt for the two week closes (each closing week's asset triggers
segflow_segments_weekly), and lets the scheduler run today's scheduled segflow_elt run, which finds no delivery
for its day and ends green with load_raw skipped. On top of that run: the runs' ids, dates, durations and task
logs as the UI shows them, its summary, the warehouse after two weekly cycles, segment quality against the true
personas, a backfill over two days gives the tables of two daily runs, re-running changes nothing, and a failing
data gate stops everything downstream and keeps the last good segments published.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests_support import SMALL_START, table_differences, table_fingerprint, week_end

from segflow import airflow_local
from segflow.airflow_api import AirflowApi
from segflow.airflow_services import running
from segflow.dbt_manifest import require_manifest
from segflow.jobs.status import evaluate, summary
from segflow.settings import Settings
from segflow.warehouse import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TABLES = ["raw.events", "meta.load_manifest", "marts.fct_sessions", "marts.customer_features",
          "ml.model_runs", "ml.segment_assignments", "ml.segments", "ml.drift_metrics", "ml.publications"]
AS_OF_TABLES = ["marts.fct_sessions", "marts.fct_orders", "marts.dim_customers", "marts.customer_features",
                "marts.customer_engagement", "marts.fct_customer_daily_activity", "marts.customer_lifecycle",
                "intermediate.int_events_sessionized"]
UNTIL = week_end(5).date() + timedelta(days=2)  # a Wednesday: the demo's data ends at the Monday before


def _day(weeks: int) -> str:
    return week_end(weeks).date().isoformat()


def _run(dag_id: str, weeks: int, settings: Settings) -> airflow_local.DagRunOutcome:
    return airflow_local.test_dag(dag_id, _day(weeks), settings)


def _task_states(settings: Settings, dag_id: str, run_id: str | None = None) -> dict[str, str]:
    db = settings.airflow_home / "airflow.db"
    with sqlite3.connect(db) as con:
        if run_id is None:
            run_id = con.execute("select run_id from dag_run where dag_id = ? and run_type != 'scheduled' "
                                 "order by id desc limit 1", [dag_id]).fetchone()[0]
        return dict(con.execute("select task_id, state from task_instance where dag_id = ? and run_id = ?",
                                [dag_id, run_id]).fetchall())


def _runs(settings: Settings, dag_id: str) -> list[dict]:
    with sqlite3.connect(settings.airflow_home / "airflow.db") as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(
            "select run_id, run_type, state, logical_date, run_after, data_interval_start, data_interval_end, "
            "start_date, end_date from dag_run where dag_id = ? order by id", [dag_id]).fetchall()]


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def _no_outside_airflow(monkeypatch):
    """The runs below must use the demo's embedded Airflow, whatever the developer has exported, and no PII key:
    `make demo` works without one (the demo home takes the public demo key)."""
    for key in [k for k in os.environ if k.startswith("AIRFLOW") or k.startswith("SEGFLOW_PII_KEY")]:
        monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(("AIRFLOW", "SEGFLOW_PII_KEY"))}
    port = _free_port()
    settings = Settings(home=tmp_path_factory.mktemp("e2e") / "home", airflow_port=port)
    env = dict(os.environ, SEGFLOW_HOME=str(settings.home), SEGFLOW_AIRFLOW_PORT=str(port))
    proc = subprocess.run([str(Path(sys.executable).with_name("segflow")), "demo", "--customers", "500",
                           "--weeks", "5", "--seed", "11", "--until", UNTIL.isoformat()],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((settings.truth_dir / "generation.json").read_text())
    assert report["config"]["start"] == SMALL_START.isoformat()
    yield settings, report["report"], proc
    os.environ.update(saved)


def test_demo_ran_both_weekly_cycles_through_the_scheduler(chain):
    settings, _, proc = chain
    lines = re.findall(r"\[demo\] (\S+): (backfill \S+|run triggered by the week's asset|today's scheduled run) "
                       r"\.\.\. (\w+)", proc.stdout)
    assert lines == [("segflow_elt", f"backfill {_day(4)}", "success"),
                     ("segflow_segments_weekly", "run triggered by the week's asset", "success"),
                     ("segflow_elt", f"backfill {_day(5)}", "success"),
                     ("segflow_segments_weekly", "run triggered by the week's asset", "success"),
                     ("segflow_elt", "today's scheduled run", "success")], proc.stdout
    assert "Traceback" not in proc.stderr
    elt = _runs(settings, "segflow_elt")
    backfills = [r for r in elt if r["run_type"] == "backfill"]
    # run ids name the run's own date (its data_interval_end, the as-of), not the wall clock
    assert [r["run_id"] for r in backfills] == [f"backfill__{_day(w)}T00:00:00+00:00" for w in (4, 5)]
    for r in backfills:
        assert _ts(r["data_interval_end"]) == _ts(r["run_after"]) == _ts(r["run_id"].split("__")[1][:19])
        assert _ts(r["logical_date"]) == _ts(r["data_interval_start"]) == _ts(r["run_after"]) - timedelta(days=1)
    weekly = _runs(settings, "segflow_segments_weekly")
    assert [r["run_type"] for r in weekly] == ["asset_triggered", "asset_triggered"]
    for r in elt + weekly:  # real durations: seconds to minutes, not the weeks between a logical date and now
        assert r["state"] == "success"
        assert timedelta(0) < _ts(r["end_date"]) - _ts(r["start_date"]) < timedelta(hours=1), r


def test_a_scheduled_run_after_the_data_ends_is_green_with_no_new_data(chain):
    settings, _, _ = chain
    scheduled = [r for r in _runs(settings, "segflow_elt") if r["run_type"] == "scheduled"]
    today = datetime.now(UTC).date()
    # unpausing creates the run of the current day (two runs when the demo ran across midnight UTC)
    days = {today.isoformat(), (today - timedelta(days=1)).isoformat()}
    assert 1 <= len(scheduled) <= 2, scheduled
    for run in scheduled:
        assert run["run_id"] in {f"scheduled__{day}T00:00:00+00:00" for day in days}, run["run_id"]
        assert run["state"] == "success", run
        states = _task_states(settings, "segflow_elt", run["run_id"])
        assert states["load_raw"] == "skipped"
        built = {task: state for task, state in states.items() if task.startswith("dbt_build.")
                 and task != "dbt_build.dbt_producer_watcher_done"}  # Cosmos's end marker (all_done): success
        assert built and set(built.values()) == {"skipped"}, built  # no build, no per-model task ran
        assert states["quality_gate"] == states["close_week"] == "skipped"
        assert "failed" not in states.values() and "upstream_failed" not in states.values()


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


def test_the_weekly_dag_wrote_the_report_and_its_task_links_to_it(chain):
    """Week 5 draws what the first week could not (flow from week 4, drift against it, KPI series); `latest`
    never moves back to an older week; the write_report task's "Weekly report" button holds the report's URL on the Airflow UI."""
    from segflow.report import write_report

    settings, _, _ = chain
    assert _task_states(settings, "segflow_segments_weekly")["write_report"] == "success"
    weekly = settings.reports_dir / "weekly"
    week5 = weekly / f"segments_{_day(5)}.html"
    text = week5.read_text(encoding="utf-8")
    for key in ("summary", "k-selection", "profiles", "projection", "flow", "drift", "spc", "anomalies", "clv",
                "funnel", "top-paths"):
        assert f'data-section="{key}" data-state="available"' in text, key
    assert (weekly / "latest.html").read_bytes() == week5.read_bytes()
    with sqlite3.connect(settings.airflow_home / "airflow.db") as con:
        link, = con.execute("select value from xcom where dag_id = 'segflow_segments_weekly' and task_id = "
                            "'write_report' and key = '_link_WeeklyReportLink' order by dag_run_id desc").fetchone()
    # the Segments plugin's authenticated route on the Airflow UI serves reports/weekly (segflow/ui)
    assert json.loads(link) == f"/segflow/report/{week5.name}"
    again = write_report(settings, as_of=week_end(4))  # an older week re-written: `latest` stays on week 5
    assert not again.moved_latest and (weekly / "latest.html").read_bytes() == week5.read_bytes()


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
                      "drift_screen": "success", "drift_says_recluster": "success", "assign_segments": "success",
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


# --- with Airflow up again: task logs through the API, a backfill vs daily runs (after the demo-state tests) ---

# before the fixtures below, which keep Airflow's services running on the same SQLite file (`airflow dags test`
# beside a running scheduler on SQLite is not safe)
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


@pytest.fixture(scope="module")
def daily_copy(chain, tmp_path_factory):
    """A copy of the demo's home taken before the backfill below: the same two days run one at a time."""
    settings, _, _ = chain
    target = tmp_path_factory.mktemp("daily") / "home"
    shutil.copytree(settings.home, target, ignore=shutil.ignore_patterns("*.wal", "logs"))
    return Settings(home=target, airflow_port=settings.airflow_port)


@pytest.fixture(scope="module")
def airflow_up(chain, daily_copy):
    """Airflow running on the demo's home again (as `segflow airflow ui` starts it), with a logged-in API client;
    a backfill of segflow_elt over the last two days of week 5 runs through the scheduler first."""
    settings, _, _ = chain
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(("AIRFLOW", "SEGFLOW_PII_KEY"))}
    with connect(settings, read_only=True) as con:
        before = {t: table_fingerprint(con, t) for t in TABLES}
    with running(settings) as services:
        api = AirflowApi(services.base_url, airflow_local.ADMIN_USER, airflow_local.admin_password(settings))
        api.wait_for_dags(["segflow_elt"], 120, services.check_alive)
        api.set_paused("segflow_elt", False)
        first, last = week_end(5).date() - timedelta(days=1), week_end(5).date()
        backfill = api.backfill("segflow_elt", first, last)
        runs = api.wait_for_runs("segflow_elt", 2, 1500, services.check_alive, run_type="backfill",
                                 run_after_gte=f"{first}T00:00:00Z", run_after_lte=f"{last}T00:00:00Z")
        api.wait_for_backfill(backfill["id"], 300, services.check_alive)
        api.set_paused("segflow_elt", True)
        with connect(settings, read_only=True) as con:
            after = {t: table_fingerprint(con, t) for t in TABLES}
        yield settings, api, runs, before, after
    os.environ.update(saved)


def test_task_logs_of_scheduler_runs_are_served_by_the_api(airflow_up):
    settings, api, _, _, _ = airflow_up
    run_id = f"backfill__{_day(5)}T00:00:00+00:00"
    log = api.task_log("segflow_elt", run_id, "load_raw", 1)
    assert "rows_loaded" in log or "Done. Returned value" in log, log[:2000]
    gate = api.task_log("segflow_elt", run_id, "quality_gate", 1)
    assert gate.strip(), "the gate's log is empty"
    scheduled = f"scheduled__{datetime.now(UTC).date().isoformat()}T00:00:00+00:00"
    skipped = api.task_log("segflow_elt", scheduled, "load_raw", 1)
    assert "no new data: no landing file was delivered for" in skipped, skipped[:2000]


def test_a_backfill_over_two_days_gives_the_tables_of_two_daily_runs(airflow_up, daily_copy):
    settings, _, runs, before, after = airflow_up
    assert sorted(r["dag_run_id"] for r in runs) == [f"backfill__{d}T00:00:00+00:00" for d in
                                                     ((week_end(5) - timedelta(days=1)).date(), week_end(5).date())]
    assert {r["state"] for r in runs} == {"success"}
    for day in ((week_end(5) - timedelta(days=1)).date(), week_end(5).date()):  # the same days, one run each
        assert airflow_local.test_dag("segflow_elt", day.isoformat(), daily_copy).state == "success"
    diff = table_differences(settings.warehouse_path, daily_copy.warehouse_path, AS_OF_TABLES)
    assert all(rows > 0 for rows, _, _ in diff.values()), diff
    assert {t: (a, b) for t, (_, a, b) in diff.items() if a or b} == {}
    # and re-running those days changed nothing (but the Sunday's drift screen, a day the demo never ran)
    assert {t: v for t, v in after.items() if t != "ml.drift_metrics"} == \
        {t: v for t, v in before.items() if t != "ml.drift_metrics"}


def test_rerunning_the_week_changes_nothing(airflow_up):
    settings, _, _, _, before = airflow_up
    assert _run("segflow_segments_weekly", 5, settings).state == "success"
    with connect(settings, read_only=True) as con:
        after = {t: table_fingerprint(con, t) for t in TABLES}
    assert after == before
