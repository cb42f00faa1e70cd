"""How long the dbt part of segflow_elt takes in each shape Airflow can give it (docs/airflow.md, docs/benchmarks.md).

Paired rounds on one small home, same as-of each time (every build after the first is incremental with nothing
new, so the rounds are comparable), order rotated between rounds:

- ``plain``: ``segflow build`` (dbt build of the same models, no Airflow): dbt's own time and the command's;
- ``single``: segflow_elt with one ``dbt_build`` task (``SEGFLOW_AIRFLOW_DBT_TASKS=single``);
- ``watcher``: segflow_elt with the per-model Cosmos WATCHER task group (the default);
- ``local`` (``--local``, once): Cosmos ``ExecutionMode.LOCAL``, one ``dbt build`` process per model (with its
  tests), in the one-slot pool, from a benchmark-only DAG (it keeps no segflow guarantee: no lock, no build state).

Airflow times are taken from ``airflow dags test``'s log: from the first dbt task's start to the last one's end.

    .venv/bin/python bench/airflow_dbt.py --home /tmp/bench-home --rounds 3 [--local]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z .*\[DAG TEST\] (starting|end task) task_id=(\S+)")


def dbt_span(log: str, prefix: str) -> float:
    """Seconds from the first task under ``prefix`` starting to the last one ending."""
    times = [datetime.fromisoformat(m.group(1)) for m in map(STAMP.match, log.splitlines())
             if m and m.group(3).startswith(prefix)]
    return (max(times) - min(times)).total_seconds() if times else float("nan")


def dags_test(env: dict, day: str, dag_id: str = "segflow_elt") -> tuple[str, float, str]:
    started = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).with_name("airflow")), "dags", "test", dag_id, day],
                          env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    states = re.findall(rf"DagRun Finished: dag_id={dag_id}, .*?state=(\w+)", out)
    return (states[-1] if states else "unknown"), time.monotonic() - started, out


def plain(env: dict, day: str) -> tuple[float, float]:
    started = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).with_name("segflow")), "build", "--as-of", day], env=env,
                          capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    return json.loads(proc.stdout)["elapsed_seconds"], wall


LOCAL_DAG = '''# airflow dag: benchmark only (Cosmos ExecutionMode.LOCAL); written by bench/airflow_dbt.py
import json, pendulum
from airflow.sdk import dag
from cosmos import DbtTaskGroup, ExecutionConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from segflow.dbt_tasks import cosmos_configs
from segflow.airflow_local import WAREHOUSE_POOL

ENV = json.load(open({env_file!r}))

@dag(dag_id="bench_cosmos_local", schedule=None, start_date=pendulum.datetime(2025, 9, 1, tz="UTC"),
     doc_md="benchmark only")
def bench_cosmos_local():
    project, profile = cosmos_configs()
    DbtTaskGroup(group_id="dbt_build", project_config=project, profile_config=profile,
                 render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.BUILD,
                                            exclude=["resource_type:unit_test"]),
                 execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL,
                                                  invocation_mode=InvocationMode.SUBPROCESS),
                 operator_args={{"pool": WAREHOUSE_POOL, "env": ENV["env"], "vars": ENV["vars"],
                                "install_deps": False, "emit_datasets": False}})

bench_cosmos_local()
'''


def local_env(settings, as_of: datetime) -> dict:
    from segflow.jobs import build_state
    from segflow.jobs.build import _shaping_values, dbt_env, dbt_vars
    from segflow.privacy import resolve_pii_key
    from segflow.warehouse import connect

    key_id = resolve_pii_key(settings).key_id
    with connect(settings) as con:
        plan = build_state.plan(con, settings, _shaping_values(settings, key_id), as_of, False)
    return {"env": dbt_env(settings, as_of, plan.run_env()), "vars": dbt_vars(settings)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--local", action="store_true")
    args = parser.parse_args()
    os.environ["SEGFLOW_HOME"] = str(args.home)
    from segflow import airflow_local
    from segflow.settings import get_settings

    settings = get_settings()
    day = (date(2025, 9, 1).toordinal() + args.days)
    day = date.fromordinal(day).isoformat()
    env = airflow_local.airflow_env(settings)
    env.setdefault("SEGFLOW_LOAD_MIN_FILE_AGE_SECONDS", "0")
    if not (settings.warehouse_path.exists()):
        subprocess.run([str(Path(sys.executable).with_name("segflow")), "generate", "--customers",
                        str(args.customers), "--days", str(args.days), "--start", "2025-09-01"], env=env,
                       check=True, capture_output=True)
        airflow_local.init(settings)
        state, _, _ = dags_test(env, day)  # first load and full build
        print(f"warm-up run: {state}", flush=True)
    results: dict[str, list[float]] = {"plain_dbt": [], "plain_cli": [], "single": [], "watcher": [],
                                       "single_dag": [], "watcher_dag": []}
    kinds = ["plain", "single", "watcher"]
    for r in range(args.rounds):
        for kind in kinds[r % 3:] + kinds[:r % 3]:
            if kind == "plain":
                dbt_s, wall = plain(env, day)
                results["plain_dbt"].append(dbt_s)
                results["plain_cli"].append(wall)
                print(f"round {r + 1} plain: dbt {dbt_s:.1f} s, command {wall:.1f} s", flush=True)
                continue
            run_env = {**env, "SEGFLOW_AIRFLOW_DBT_TASKS": "single" if kind == "single" else "per_model"}
            state, wall, out = dags_test(run_env, day)
            span = dbt_span(out, "dbt_build")
            results[kind].append(span)
            results[f"{kind}_dag"].append(wall)
            print(f"round {r + 1} {kind}: {state}, dbt part {span:.1f} s, whole dags test {wall:.1f} s", flush=True)
    if args.local:
        from segflow.jobs.ml_common import to_naive_utc  # noqa: F401 - same import path as the DAG
        folder = args.home / "bench_dags"
        folder.mkdir(exist_ok=True)
        env_file = folder / "env.json"
        env_file.write_text(json.dumps(local_env(settings, datetime.fromisoformat(day))))
        (folder / "bench_cosmos_local.py").write_text(LOCAL_DAG.format(env_file=str(env_file)))
        local_run_env = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}
        state, wall, out = dags_test(local_run_env, day, "bench_cosmos_local")
        (folder / "local.log").write_text(out)
        results["local"] = [dbt_span(out, "dbt_build")]
        print(f"local: {state}, dbt part {results['local'][0]:.1f} s, whole dags test {wall:.1f} s", flush=True)
    print(json.dumps({k: {"runs": [round(v, 1) for v in vals], "median": round(statistics.median(vals), 1)}
                      for k, vals in results.items() if vals}, indent=1))


if __name__ == "__main__":
    main()
