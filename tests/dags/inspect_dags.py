"""Parse dags/ with Airflow's DagBag and print what the integrity test checks, as JSON.

Run in a subprocess so the test controls AIRFLOW_HOME and measures parse time without import noise.
"""

import json
import os
import sys
import time
from pathlib import Path

t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag  # noqa: E402

airflow_import = time.perf_counter() - t0


def parse_cpu_seconds(path: Path) -> float:
    """CPU time of parsing one DAG file in a process that has imported Airflow and nothing else (a fork of this
    one, as Airflow's DAG processor parses each file in a fresh child): the same on a busy machine, unlike wall
    time."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: parse, report, leave without running the parent's cleanup
        os.close(read)
        start = time.process_time()
        DagBag(dag_folder=str(path))
        os.write(write, repr(time.process_time() - start).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        seconds = float(fh.read() or "inf")
    os.waitpid(pid, 0)
    return seconds


file_cpu = {path.name: parse_cpu_seconds(path) for path in sorted(Path(sys.argv[1]).glob("*.py"))}
bag = DagBag(dag_folder=sys.argv[1])
out = {
    "airflow_import_seconds": airflow_import,
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "file_seconds": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats},
    "file_cpu_seconds": file_cpu,
    "dags": {},
}
for dag_id, dag in bag.dags.items():
    timetable = dag.timetable
    condition = getattr(timetable, "asset_condition", None)
    out["dags"][dag_id] = {
        "tags": sorted(dag.tags),
        "doc_md": bool(dag.doc_md),
        "timetable": type(timetable).__name__,
        "schedule_assets": sorted(a.uri for a in getattr(condition, "objects", []) or []) if condition else [],
        "catchup": dag.catchup,
        "task_groups": {gid: {"doc_md": bool(group.doc_md), "tooltip": group.tooltip}
                        for gid, group in dag.task_group.get_task_group_dict().items() if gid},
        "tasks": {t.task_id: {"owner": t.owner, "retries": t.retries, "pool": t.pool,
                              "outlets": [o.uri for o in t.outlets], "downstream": sorted(t.downstream_task_ids),
                              "trigger_rule": str(t.trigger_rule.value if hasattr(t.trigger_rule, "value")
                                                  else t.trigger_rule),
                              "operator": type(t).__name__,
                              "extra_links": sorted(link.name for link in t.operator_extra_links),
                              "upstream": sorted(t.upstream_task_ids),
                              "model_unique_id": getattr(t, "model_unique_id", None),
                              "doc_md": bool(t.doc_md),
                              "trigger_dag_id": getattr(t, "trigger_dag_id", None)}
                  for t in dag.tasks},
    }
print(json.dumps(out))
