"""Every DAG imports cleanly, is documented and owned, retries, parses fast, and respects the one-writer pool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from segflow.airflow_local import WAREHOUSE_POOL, airflow_env
from segflow.orchestration import WEEKLY_FEATURES_URI
from segflow.settings import PROJECT_ROOT, Settings

DAGS = PROJECT_ROOT / "dags"
# tasks that never open the warehouse (they only look at dates / emit an asset event)
NO_WAREHOUSE = {"is_week_end", "close_week", "resolve_as_of", "drift_says_recluster", "trigger_recluster",
                # activation reads published files and its own store; triggers read the warehouse only read-only
                # with a short timeout (docs/activation.md)
                "activate", "detect_triggers"}


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("dagbag") / "home")
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("inspect_dags.py")), str(DAGS)],
                          env=airflow_env(settings), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_no_import_errors(parsed):
    assert parsed["import_errors"] == {}


def test_expected_dags_present(parsed):
    assert set(parsed["dags"]) == {"segflow_elt", "segflow_segments_weekly", "segflow_erase", "segflow_triggers"}
    assert len(parsed["file_seconds"]) == len(list(DAGS.glob("*.py")))


def test_every_dag_file_parses_in_under_two_seconds(parsed):
    slow = {f: s for f, s in parsed["file_seconds"].items() if s >= 2.0}
    assert slow == {}


@pytest.mark.parametrize("dag_id", ["segflow_elt", "segflow_segments_weekly", "segflow_erase", "segflow_triggers"])
def test_tags_owner_retries_docs(parsed, dag_id):
    dag = parsed["dags"][dag_id]
    assert "segflow" in dag["tags"]
    assert dag["doc_md"]
    assert dag["catchup"] is False
    for task_id, task in dag["tasks"].items():
        assert task["owner"] == "segflow", task_id
        assert task["retries"] >= 1, task_id


def test_every_warehouse_task_runs_in_the_one_slot_pool(parsed):
    for dag in parsed["dags"].values():
        for task_id, task in dag["tasks"].items():
            if task_id not in NO_WAREHOUSE:
                assert task["pool"] == WAREHOUSE_POOL, task_id


def test_every_warehouse_task_stops_its_dbt_when_killed(parsed):
    """@warehouse_task's operator has the on_kill that stops dbt (tested for real in tests/e2e/test_on_kill.py)."""
    for dag in parsed["dags"].values():
        for task_id, task in dag["tasks"].items():
            if task_id not in NO_WAREHOUSE:
                assert task["operator"] in ("WarehouseTaskOperator", "ReportTaskOperator"), task_id


def test_weekly_dag_is_scheduled_on_the_asset_the_elt_emits(parsed):
    elt = parsed["dags"]["segflow_elt"]
    weekly = parsed["dags"]["segflow_segments_weekly"]
    assert elt["tasks"]["close_week"]["outlets"] == [WEEKLY_FEATURES_URI]
    assert weekly["timetable"] == "AssetTriggeredTimetable"
    assert weekly["schedule_assets"] == [WEEKLY_FEATURES_URI]


def test_elt_order_gate_before_week_close(parsed):
    tasks = parsed["dags"]["segflow_elt"]["tasks"]
    assert tasks["load_raw"]["downstream"] == ["dbt_build"]
    assert tasks["dbt_build"]["downstream"] == ["purge_raw_pii", "quality_gate"]
    assert tasks["quality_gate"]["downstream"] == ["assign_segments", "drift_screen", "is_week_end"]
    assert tasks["assign_segments"]["downstream"] == [] and tasks["assign_segments"]["pool"] == WAREHOUSE_POOL
    assert tasks["is_week_end"]["downstream"] == ["close_week"]
    weekly = parsed["dags"]["segflow_segments_weekly"]["tasks"]
    assert weekly["check_drift"]["downstream"] == ["monitor_segments", "publish"]
    assert weekly["fit_clv"]["downstream"] == ["publish"]
    assert "fit_clv" in weekly["resolve_as_of"]["downstream"]  # beside the segmentation, not after it
    assert weekly["detect_anomalies"]["downstream"] == ["recluster"]  # bots are flagged before segmenting
    assert "segment_kpis" in weekly["recluster"]["downstream"]
    # the report comes last, also when publication was refused, with its "Weekly report" button
    assert all(weekly[t]["downstream"] == ["write_report"] for t in ("monitor_segments", "segment_kpis"))
    assert weekly["publish"]["downstream"] == ["activate", "write_report"]
    assert weekly["write_report"]["trigger_rule"] == "all_done"
    assert weekly["write_report"]["extra_links"] == ["Weekly report"]
    # the registry decides the champion before drift scores both weeks with it and before publication
    assert "register_model" in weekly["recluster"]["downstream"]
    assert weekly["register_model"]["downstream"] == ["check_drift"]


def test_drift_screen_triggers_an_early_recluster_and_records_it(parsed):
    """A drift verdict of the daily screen -> short-circuit -> a run of the weekly DAG -> ml.recluster_triggers."""
    tasks = parsed["dags"]["segflow_elt"]["tasks"]
    assert tasks["drift_screen"]["downstream"] == ["drift_says_recluster", "record_recluster"]
    assert tasks["drift_says_recluster"]["downstream"] == ["trigger_recluster"]
    trigger = tasks["trigger_recluster"]
    assert trigger["operator"] == "TriggerDagRunOperator"
    assert trigger["trigger_dag_id"] == "segflow_segments_weekly"
    assert trigger["trigger_dag_id"] in parsed["dags"]
    assert trigger["downstream"] == ["record_recluster"]
    assert tasks["record_recluster"]["pool"] == WAREHOUSE_POOL


def test_erase_dag_is_manual_only(parsed):
    erase = parsed["dags"]["segflow_erase"]
    assert erase["timetable"] == "NullTimetable"  # never scheduled: an erasure is a request, run by hand
    assert set(erase["tasks"]) == {"erase"}


def test_raw_pii_is_purged_after_every_build_whatever_its_outcome(parsed):
    tasks = parsed["dags"]["segflow_elt"]["tasks"]
    assert tasks["purge_raw_pii"]["downstream"] == []
    assert tasks["purge_raw_pii"]["trigger_rule"] == "all_done"
    assert tasks["purge_raw_pii"]["pool"] == WAREHOUSE_POOL


def test_activation_runs_after_publish_and_triggers_every_five_minutes_outside_the_pool(parsed):
    weekly = parsed["dags"]["segflow_segments_weekly"]["tasks"]
    assert "activate" in weekly["publish"]["downstream"]  # only a published week's delta is ever sent
    assert weekly["activate"]["pool"] != WAREHOUSE_POOL
    triggers = parsed["dags"]["segflow_triggers"]
    assert triggers["timetable"] == "DeltaTriggerTimetable"  # a timedelta schedule: every 5 minutes
    assert set(triggers["tasks"]) == {"detect_triggers"}
    assert triggers["tasks"]["detect_triggers"]["pool"] != WAREHOUSE_POOL  # never queues behind a dbt build
