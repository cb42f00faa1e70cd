"""The dbt part of ``segflow_elt`` as Airflow tasks: every dbt model (and its tests) a task, from the manifest.

astronomer-cosmos renders the task group from the dbt manifest (:mod:`segflow.dbt_manifest`;
``LoadMode.DBT_MANIFEST``: no dbt runs while Airflow parses the DAG) in its ``ExecutionMode.WATCHER`` shape:
one *producer* task runs the whole build, and per dbt node a *watcher* task (a sensor) takes that node's
result from the producer (XCom) and succeeds or fails with it, dbt's message in its own log.

segflow keeps Cosmos's rendering and its watcher protocol, with two changes (docs/airflow.md):

- the producer runs segflow's build (:func:`segflow.jobs.build.build`), not a ``dbt build`` of its own: the
  warehouse lock for the whole build, the build state (incremental or full refresh, a failed build makes the
  next one full), the run-log row, the as-of and the PII key all hold as in ``segflow build``; dbt's structured
  log lines stream from that build into Cosmos's parser, which publishes each node's result;
- a watcher never runs dbt. Cosmos lets a watcher run ``dbt run --select <model>`` itself when it is retried
  or the producer did not report its model: a second writer outside the lock. segflow's watchers fail
  instead, saying to re-run the producer.

The producer comes before the first watchers (they start when the build has succeeded or failed:
``one_done``; a build that never ran, its upstream failed, skips them):
with one writer and two cores nothing else could run beside the build anyway, and ``airflow dags test`` (the
demo, the tests) runs tasks one by one, so a watcher started before the producer would wait forever.

Cosmos 1.15 has no option for the producer's class (its path is computed from the execution mode), and its
``RenderConfig.node_converters`` hook would have segflow rebuild each watcher's arguments itself; so
:func:`dbt_task_group` swaps the classes of the tasks Cosmos rendered for the subclasses below (same
attributes, a few methods overridden), and refuses a producer or watcher class it has no subclass for;
``tests/dags`` checks both. Imported by DAG files only (it imports Airflow and Cosmos).
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import TaskGroup, TriggerRule
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.operators.watcher import (
    DbtProducerWatcherOperator,
    DbtRunWatcherOperator,
    DbtSeedWatcherOperator,
    DbtTestWatcherOperator,
)

from segflow.airflow_local import WAREHOUSE_POOL
from segflow.dbt_manifest import require_manifest
from segflow.orchestration import alert_on_failure
from segflow.settings import get_settings

GROUP_ID = "dbt_build"
# Cosmos's operators log to the "cosmos.operators.base" logger (kept at WARNING by segflow.log_policy): the lines
# segflow's tasks add go to this one, at INFO in every task log
log = logging.getLogger(__name__)
PRODUCER_ID = "dbt_producer_watcher"  # Cosmos's task id, kept: its watchers look the producer up by it

GROUP_DOC = """
### dbt_build — the dbt project, one task per model

`dbt_producer_watcher` runs segflow's build (`segflow build` as of `data_interval_end`: the warehouse lock for
the whole build, incremental or full refresh by the build state, a row in `meta.run_log`). Its log has dbt's
lines as they come. Then every dbt model (and seed) has a task here, `<model>_run` (`<seed>_seed`), with the
result of the model and of its data tests: a failed model or test fails the model's own task, with dbt's lines
about it in that task's log; the models after it end `upstream_failed`, as dbt skipped them.

To run the build again, clear `dbt_producer_watcher` with its downstream tasks: a model's task never runs dbt
on its own (one writer: docs/airflow.md).
"""


class SegflowDbtProducer(DbtProducerWatcherOperator):
    """Cosmos's watcher producer whose work is segflow's build, its dbt events feeding Cosmos's parser."""

    def execute(self, context: Any, **kwargs: Any) -> Any:
        from airflow.sdk.exceptions import AirflowFailException
        from cosmos.constants import _PRODUCER_CMD_FLAGS_XCOM_KEY
        from cosmos.operators._watcher.base import store_dbt_resource_status_from_log
        from cosmos.operators._watcher.state import safe_xcom_push

        from segflow.errors import SegflowError, WarehouseLocked
        from segflow.jobs.build import build
        from segflow.jobs.ml_common import to_naive_utc
        from segflow.orchestration import task_settings

        ti = context["ti"]
        settings = task_settings()
        safe_xcom_push(task_instance=ti, key=_PRODUCER_CMD_FLAGS_XCOM_KEY, value=[])
        parse = functools.partial(
            store_dbt_resource_status_from_log,
            # Cosmos reads a model's compiled SQL from <project_dir>/target/compiled: segflow's target folder
            extra_kwargs={"context": context, "project_dir": str(settings.dbt_target_dir.parent)},
            tests_per_model=self.tests_per_model, test_results_per_model={}, model_outlet_uris={},
            dataset_namespace=None, should_generate_model_uris=False, upstream_failure_skipped_ids=set())
        node_lines = NodeLines(self.tests_per_model, lambda key, lines: safe_xcom_push(ti, key, lines))

        def on_event(line: str) -> None:
            parse(line)
            node_lines.add(line)

        try:
            result = build(settings, as_of=to_naive_utc(context["data_interval_end"]), on_event=on_event)
            return json.loads(json.dumps(result.as_dict(), default=str))
        except WarehouseLocked:
            raise  # transient: Airflow retries the build
        except SegflowError as exc:
            raise AirflowFailException(str(exc)) from None
        finally:
            safe_xcom_push(task_instance=ti, key="task_status", value="completed")

    def on_kill(self) -> None:
        from segflow import procguard

        stopped = procguard.stop_all()
        log.warning("segflow: task killed; stopped %d running dbt process group(s)", stopped)


def lines_key(unique_id: str, tests: bool) -> str:
    """XCom key (on the producer) of dbt's lines about a node: its own, or those of its tests."""
    return f"{unique_id.replace('.', '__')}_segflow_{'test' if tests else 'run'}_lines"


class NodeLines:
    """dbt's readable lines per node, for the node's own task log: a model's lines (START, OK / ERROR with
    dbt's message) under the model, its tests' lines under the model's tests. Published when the node has
    finished, and again for each later line about it (dbt repeats errors in its closing summary)."""

    def __init__(self, tests_per_model: dict[str, list[str]], publish) -> None:
        self._owner = {test: model for model, tests in tests_per_model.items() for test in tests}
        self._lines: dict[str, list[str]] = {}
        self._finished: set[str] = set()
        self._publish = publish

    def add(self, line: str) -> None:
        try:
            event = json.loads(line)
            node = event["data"].get("node_info") or {}
            message = event["info"]["msg"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return
        unique_id = node.get("unique_id")
        if not unique_id or not message or event["info"].get("level") == "debug":
            return
        tests = unique_id in self._owner
        key = lines_key(self._owner.get(unique_id, unique_id), tests)
        self._lines.setdefault(key, []).append(f"dbt: {message.strip()}")
        if node.get("node_status") not in (None, "", "started", "compiling", "executing"):
            self._finished.add(key)
        if key in self._finished:
            self._publish(key, self._lines[key])


class _NeverRunsDbt:
    """Watcher behaviour: report the producer's result with dbt's lines about the node; never run dbt."""

    segflow_has_tests = False  # set by adopt(): the node has dbt data tests, reported in this same task

    def poke(self, context: Any) -> bool:
        try:
            done = super().poke(context)
        except BaseException:
            self._log_dbt_lines(context)
            raise
        if done:
            self._log_dbt_lines(context)
            if self.segflow_has_tests:
                self._check_tests(context)
        return done

    def _check_tests(self, context: Any) -> None:
        from airflow.sdk.exceptions import AirflowFailException
        from cosmos.operators._watcher.aggregation import get_tests_status_xcom_key

        status = context["ti"].xcom_pull(task_ids=self.producer_task_id,
                                         key=get_tests_status_xcom_key(self.model_unique_id))
        if status == "pass":
            return
        if status is None:
            raise AirflowFailException(f"The data tests of '{self.model_unique_id}' did not all report: the "
                                       f"build stopped before they ran (see {self.producer_task_id}'s log).")
        raise AirflowFailException(f"dbt data tests of '{self.model_unique_id}' failed (lines above).")

    def _log_dbt_lines(self, context: Any) -> None:
        kinds = (self.is_test_sensor,) if self.is_test_sensor else (False, True)
        for tests in kinds:
            for line in context["ti"].xcom_pull(task_ids=self.producer_task_id,
                                                key=lines_key(self.model_unique_id, tests)) or []:
                log.info("%s", line)

    def _handle_retry(self, try_number: int, producer_task_state: str | None, context: Any) -> bool | None:
        """A later try (a retry, a cleared run, a backfill over an existing run) reads the producer's result like
        the first: the producer's XCom is that of its latest run in this DAG run (cleared when it runs again).
        Cosmos would instead run dbt for the node here - a second writer - so keep polling."""
        return None

    def _fallback_to_non_watcher_run(self, try_number: int, context: Any) -> bool:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"dbt did not report '{self.model_unique_id}' in this run's build (see {self.producer_task_id}'s "
            f"log). To build again, clear {self.producer_task_id} with its downstream tasks: a model's task "
            "never runs dbt itself (one writer).")

    def _handle_no_dbt_node_status(self, producer_task_state: str | None, try_number: int, context: Any) -> bool:
        from cosmos.operators._watcher.state import ProducerTaskState

        if producer_task_state == ProducerTaskState.SUCCESS:
            log.info("dbt reported nothing for '%s' in a successful build (an ephemeral or disabled "
                          "node): nothing to do", self.model_unique_id)
            return True
        if producer_task_state in (ProducerTaskState.FAILED, ProducerTaskState.SKIPPED):
            return self._fallback_to_non_watcher_run(try_number, context)
        return super()._handle_no_dbt_node_status(producer_task_state, try_number, context)


class SegflowRunWatcher(_NeverRunsDbt, DbtRunWatcherOperator):
    """A dbt model's task: the model's result in the build."""


class SegflowTestWatcher(_NeverRunsDbt, DbtTestWatcherOperator):
    """A dbt model's tests: the result of its data tests in the build."""


class SegflowSeedWatcher(_NeverRunsDbt, DbtSeedWatcherOperator):
    """A dbt seed's task: the seed's result in the build."""


_SWAPS = {DbtProducerWatcherOperator: SegflowDbtProducer, DbtRunWatcherOperator: SegflowRunWatcher,
          DbtTestWatcherOperator: SegflowTestWatcher, DbtSeedWatcherOperator: SegflowSeedWatcher}


def swap_class(task) -> None:
    """Give a task Cosmos rendered segflow's class for it. A producer or watcher of a class segflow does not
    know (a dbt resource type it never rendered before, a newer Cosmos) is refused: it would run dbt itself."""
    from cosmos.operators._watcher.base import BaseConsumerSensor

    from segflow.errors import SegflowError

    segflow_class = _SWAPS.get(type(task))
    if segflow_class is not None:
        task.__class__ = segflow_class
    elif isinstance(task, (DbtProducerWatcherOperator, BaseConsumerSensor)) and not isinstance(
            task, (SegflowDbtProducer, _NeverRunsDbt)):
        raise SegflowError(f"Cosmos rendered {task.task_id} as a {type(task).__name__}, which segflow has no "
                           "class for (segflow/dbt_tasks.py): it would run dbt outside segflow's build.")


def cosmos_configs(settings=None) -> tuple[ProjectConfig, ProfileConfig]:
    """The project (from the manifest) and profile (segflow's profiles.yml) every Cosmos rendering uses."""
    settings = settings or get_settings()
    manifest = require_manifest(settings)
    project = ProjectConfig(dbt_project_path=settings.dbt_project_dir, manifest_path=manifest,
                            project_name="segflow")
    # a local file as a plain Path (a type Cosmos accepts): Cosmos makes it an ObjectStoragePath, whose first
    # read loads every Airflow plugin (FastAPI and all) in the process parsing the DAG: a third of its parse time
    project.manifest_path = manifest
    profile = ProfileConfig(profile_name="segflow", target_name="duckdb",
                            profiles_yml_filepath=settings.dbt_project_dir / "profiles.yml")
    return project, profile


def _model_docs(manifest: dict) -> dict[str, str]:
    return {node["name"]: (node.get("description") or "").strip().split("\n\n")[0]
            for node in manifest.get("nodes", {}).values() if node.get("resource_type") in ("model", "seed")}


def dbt_task_group(settings=None, group_id: str = GROUP_ID) -> TaskGroup:
    """The ``dbt_build`` task group of ``segflow_elt`` (call inside the DAG definition)."""
    settings = settings or get_settings()
    project, profile = cosmos_configs(settings)
    watcher_timeout = timedelta(seconds=settings.airflow_dbt_watcher_timeout_seconds)
    group = DbtTaskGroup(
        group_id=group_id,
        project_config=project,
        profile_config=profile,
        # one task per model with its tests (TestBehavior.BUILD's shape: the watcher mode has no BUILD, so no
        # separate test tasks are rendered and segflow's watcher reports the model's tests too)
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.NONE,
                                   exclude=["resource_type:unit_test"]),
        execution_config=ExecutionConfig(execution_mode=ExecutionMode.WATCHER,
                                         invocation_mode=InvocationMode.SUBPROCESS,
                                         setup_operator_args={"pool": WAREHOUSE_POOL, "retries": 1,
                                                              "on_failure_callback": alert_on_failure}),
        operator_args={"retries": 0, "poke_interval": 2, "timeout": watcher_timeout.total_seconds(),
                       "execution_timeout": watcher_timeout, "emit_datasets": False},
        tooltip="dbt: one task per model, one producer running the build",
        doc_md=GROUP_DOC,
    )
    adopt(group, settings)
    return group


def adopt(group: TaskGroup, settings=None) -> None:
    """segflow's classes for the producer and watchers Cosmos rendered in ``group``; watchers start after the
    producer has succeeded or failed; every nested task group gets its model's description as ``doc_md``."""
    tasks = _all_tasks(group)
    producer = next(t for t in tasks if isinstance(t, DbtProducerWatcherOperator))
    descriptions = _model_docs(json.loads(require_manifest(settings).read_text()))
    for task in tasks:
        swap_class(task)
        if task is producer or not hasattr(task, "producer_task_id"):
            continue
        if not task.upstream_list:
            producer >> task
            # succeeded or failed: report the models; upstream_failed or skipped (no build ran): skip
            task.trigger_rule = TriggerRule.ONE_DONE
        task.segflow_has_tests = bool(producer.tests_per_model.get(task.model_unique_id))
        name = task.model_unique_id.rsplit(".", 1)[-1]
        tested = " and its data tests" if task.segflow_has_tests else ""
        task.doc_md = (f"dbt {task.model_unique_id.split('.', 1)[0]} `{name}`{tested}: "
                       f"{descriptions.get(name) or 'see dbt docs'}")
    for child in _all_groups(group):
        name = child.group_id.rsplit(".", 1)[-1]
        child.doc_md = f"dbt model `{name}`: {descriptions.get(name) or 'see dbt docs'}"
        child.tooltip = child.tooltip or f"dbt model {name}"


def _all_tasks(group: TaskGroup) -> list:
    out = []
    for child in group.children.values():
        out.extend(_all_tasks(child) if isinstance(child, TaskGroup) else [child])
    return out


def _all_groups(group: TaskGroup) -> list[TaskGroup]:
    out = []
    for child in group.children.values():
        if isinstance(child, TaskGroup):
            out.extend([child, *_all_groups(child)])
    return out
