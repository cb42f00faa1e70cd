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
                "activate", "detect_triggers", "dbt_build.dbt_producer_watcher_done"}
# the per-model dbt tasks (segflow/dbt_tasks.py): they read the build's results from XCom, never the warehouse
WATCHERS = {"SegflowRunWatcher", "SegflowSeedWatcher"}
PRODUCER = "dbt_build.dbt_producer_watcher"


def _opens_warehouse(task_id: str, task: dict) -> bool:
    return task_id not in NO_WAREHOUSE and task["operator"] not in WATCHERS


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


def test_every_dag_file_parses_in_under_a_second_of_cpu(parsed):
    # CPU time, not wall time: the bound must hold on a busy machine (segflow_elt: ~0.3 s, rendering its dbt
    # models from the manifest; the other files: ~0.05 s)
    assert set(parsed["file_cpu_seconds"]) == {p.name for p in DAGS.glob("*.py")}
    slow = {f: s for f, s in parsed["file_cpu_seconds"].items() if s >= 1.0}
    assert slow == {}


@pytest.mark.parametrize("dag_id", ["segflow_elt", "segflow_segments_weekly", "segflow_erase", "segflow_triggers"])
def test_tags_owner_retries_docs(parsed, dag_id):
    dag = parsed["dags"][dag_id]
    assert "segflow" in dag["tags"]
    assert dag["doc_md"]
    assert dag["catchup"] is False
    for task_id, task in dag["tasks"].items():
        assert task["owner"] == "segflow", task_id
        if task["operator"] in WATCHERS:
            assert task["retries"] == 0, task_id  # a retry cannot rebuild one model: the producer retries
        else:
            assert task["retries"] >= 1, task_id
    assert all(group["doc_md"] for group in dag["task_groups"].values()), dag["task_groups"]


def test_every_warehouse_task_runs_in_the_one_slot_pool(parsed):
    for dag in parsed["dags"].values():
        for task_id, task in dag["tasks"].items():
            if _opens_warehouse(task_id, task):
                assert task["pool"] == WAREHOUSE_POOL, task_id


def test_every_warehouse_task_stops_its_dbt_when_killed(parsed):
    """@warehouse_task's operator has the on_kill that stops dbt (tested for real in tests/e2e/test_on_kill.py)."""
    for dag in parsed["dags"].values():
        for task_id, task in dag["tasks"].items():
            if _opens_warehouse(task_id, task):
                expected = ("SegflowDbtProducer",) if task_id == PRODUCER else ("WarehouseTaskOperator", "ReportTaskOperator")
                assert task["operator"] in expected, task_id


def test_weekly_dag_is_scheduled_on_the_asset_the_elt_emits(parsed):
    elt = parsed["dags"]["segflow_elt"]
    weekly = parsed["dags"]["segflow_segments_weekly"]
    assert elt["tasks"]["close_week"]["outlets"] == [WEEKLY_FEATURES_URI]
    assert weekly["timetable"] == "AssetTriggeredTimetable"
    assert weekly["schedule_assets"] == [WEEKLY_FEATURES_URI]


def test_elt_order_gate_before_week_close(parsed):
    tasks = parsed["dags"]["segflow_elt"]["tasks"]
    assert tasks["load_raw"]["downstream"] == [PRODUCER]
    built = {t for t in tasks if t.startswith("dbt_build.")}
    assert set(tasks["quality_gate"]["upstream"]) <= built and set(tasks["purge_raw_pii"]["upstream"]) <= built
    assert "dbt_build.dbt_producer_watcher_done" in tasks["quality_gate"]["upstream"]
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


@pytest.fixture(scope="module")
def manifest():
    from segflow.dbt_manifest import require_manifest

    return json.loads(require_manifest().read_text())


def test_every_dbt_model_and_seed_is_a_task_with_its_tests(parsed, manifest):
    tasks = parsed["dags"]["segflow_elt"]["tasks"]
    watched = {t["model_unique_id"]: (task_id, t) for task_id, t in tasks.items() if t["operator"] in WATCHERS}
    nodes = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] in ("model", "seed")}
    assert set(watched) == set(nodes) and len(nodes) > 50
    for uid, node in nodes.items():
        task_id, task = watched[uid]
        suffix = "seed" if node["resource_type"] == "seed" else "run"
        assert task_id == f"dbt_build.{node['name']}_{suffix}", uid
        assert task["doc_md"], uid
    # dbt's dependencies are the tasks' dependencies
    upstream = tasks["dbt_build.fct_sessions_run"]["upstream"]
    parents = [d for d in manifest["nodes"]["model.segflow.fct_sessions"]["depends_on"]["nodes"]
               if d.startswith("model.")]
    assert parents and sorted(upstream) == sorted(f"dbt_build.{p.split('.')[-1]}_run" for p in parents)


def test_one_producer_runs_the_build_in_the_pool_before_every_watcher(parsed):
    tasks = parsed["dags"]["segflow_elt"]["tasks"]
    producers = [t for t, task in tasks.items() if task["operator"] == "SegflowDbtProducer"]
    assert producers == [PRODUCER]
    producer = tasks[PRODUCER]
    assert producer["pool"] == WAREHOUSE_POOL and producer["retries"] >= 1
    roots = [t for t, task in tasks.items() if task["operator"] in WATCHERS and PRODUCER in task["upstream"]]
    assert roots
    for task_id in roots:
        # a root watcher starts when the build has succeeded or failed, to report its model; when no build ran
        # (load_raw failed) it is skipped, not left waiting for a result that never comes
        assert tasks[task_id]["trigger_rule"] == "one_done", task_id
    for task_id, task in tasks.items():
        if task["operator"] in WATCHERS and task_id not in roots:
            assert task["upstream"] and all(u.startswith("dbt_build.") for u in task["upstream"]), task_id
            assert task["trigger_rule"] == "all_success", task_id


def test_the_manifest_comes_from_the_project_and_needs_no_warehouse(tmp_path, monkeypatch):
    """`dbt parse` writes it with a warehouse path that does not exist; it is current for the project."""
    from segflow.dbt_manifest import is_current, manifest_path

    assert is_current()
    assert not (manifest_path().parent / "parse-only.duckdb").exists()
