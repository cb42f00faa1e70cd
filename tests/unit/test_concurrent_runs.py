"""Concurrent runs of the real CLI: every writer, dbt included, waits for the warehouse with one clear message,
and `segflow status` answers from the published snapshot while a writer holds the warehouse.

Before the warehouse lock, two `segflow run` at once ended in a 938-character DuckDB traceback from dbt.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests_support import week_end

from segflow.errors import WarehouseLocked
from segflow.settings import Settings
from segflow.warehouse_lock import hold

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process control is Linux-tested")]

SEGFLOW = str(Path(sys.executable).with_name("segflow"))
WEEK5 = week_end(5).date().isoformat()

SEGFLOW_WRITER = """
import sys, time
from segflow.settings import Settings
from segflow.warehouse import connect

with connect(Settings(home=sys.argv[1])) as con:
    print("open", flush=True)
    time.sleep(float(sys.argv[2]))
"""

OUTSIDE_WRITER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("open", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**os.environ, "SEGFLOW_HOME": str(settings.home), **extra}


def _hold(script: str, target: str, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", script, target, str(seconds)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "open", proc.stderr.read()
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def _segflow(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([SEGFLOW, *args], env=_env(settings, **env), capture_output=True, text=True, timeout=900)


def test_two_segflow_runs_at_once_both_finish_without_a_traceback(home_copy):
    env = _env(home_copy)
    runs = [subprocess.Popen([SEGFLOW, "run", "--as-of", WEEK5], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(proc.wait(timeout=900), proc.stdout.read(), proc.stderr.read()) for proc in runs]
    for code, _, err in outcomes:
        assert code == 0, err[-2000:]
        assert "Traceback" not in err and "IO Error" not in err
    builds = [json.loads(out)["build"] for _, out, _ in outcomes]
    # one of them built week 5; the other waited and found nothing new (incremental, same as-of)
    assert sorted(b["mode"] for b in builds) == ["incremental", "incremental"]
    status = json.loads(_segflow(home_copy, "status", "--json").stdout)
    assert status["last_build"]["status"] == "success" and status["marts"]["as_of"].startswith(WEEK5)


def test_dbt_waits_for_a_segflow_writer_then_builds(home_copy):
    holder = _hold(SEGFLOW_WRITER, str(home_copy.home), 5)
    try:
        started = time.monotonic()
        done = _segflow(home_copy, "build", "--as-of", WEEK5)
        assert done.returncode == 0, done.stderr
        assert holder.wait(timeout=30) == 0
        assert time.monotonic() - started >= 3, "the build must have waited for the writer"
    finally:
        _stop(holder)


def test_a_writer_that_stays_is_one_line_the_same_as_every_other_wait(home_copy):
    holder = _hold(SEGFLOW_WRITER, str(home_copy.home), 120)
    try:
        done = _segflow(home_copy, "build", "--as-of", WEEK5, SEGFLOW_LOCK_TIMEOUT_SECONDS="1")
        with pytest.raises(WarehouseLocked) as waited_here:
            with hold(Settings(home=home_copy.home, lock_timeout_seconds=1), exclusive=True):
                pass
    finally:
        _stop(holder)
    assert done.returncode == 2
    assert done.stderr == f"segflow: error: {waited_here.value}\n"
    assert f"held by process {holder.pid}" in done.stderr


def test_dbt_waits_for_a_writer_that_is_not_segflow(home_copy):
    """A notebook holding DuckDB's file knows nothing of segflow's lock: segflow waits for DuckDB's own lock."""
    holder = _hold(OUTSIDE_WRITER, str(home_copy.warehouse_path), 4)
    try:
        done = _segflow(home_copy, "build", "--as-of", WEEK5)
        assert done.returncode == 0, done.stderr
    finally:
        _stop(holder)
    holder = _hold(OUTSIDE_WRITER, str(home_copy.warehouse_path), 120)
    try:
        done = _segflow(home_copy, "build", "--as-of", WEEK5, SEGFLOW_LOCK_TIMEOUT_SECONDS="1")
    finally:
        _stop(holder)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert re.fullmatch(rf"segflow: error: The warehouse {re.escape(str(home_copy.warehouse_path))} is locked by "
                        rf"another writer \(held by process {holder.pid}\) and stayed locked for 1 s\. .*"
                        r"SEGFLOW_LOCK_TIMEOUT_SECONDS\.\n", done.stderr)


def _racing_dbt(tmp_path: Path, every_time: bool) -> Path:
    """A dbt wrapper that lets a non-segflow process take DuckDB's file just before dbt opens it (the race between
    segflow's check and dbt's open): on its first run only, or on every run. The holder sleeps for long; it is in
    dbt's process group, so it ends when that dbt run ends."""
    real_dbt = Path(sys.executable).with_name("dbt")
    runs = tmp_path / "dbt_runs.log"
    condition = "true" if every_time else f'[ ! -e "{runs}" ]'
    script = tmp_path / "racing_dbt.sh"
    script.write_text(f"""#!/bin/sh
ready="{tmp_path}/ready.$$"
if {condition}; then
    {sys.executable} -c "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); \\
open(sys.argv[2], 'w').write('x'); time.sleep(600)" "$SEGFLOW_WAREHOUSE_PATH" "$ready" &
    while [ ! -s "$ready" ]; do sleep 0.05; done
fi
echo "started" >> "{runs}"
"{real_dbt}" "$@"
""")
    script.chmod(0o755)
    return script


def _racing_holders(tmp_path: Path) -> list[str]:
    return subprocess.run(["pgrep", "-f", f"open\\(sys.argv\\[2\\].*{tmp_path}"], capture_output=True,
                          text=True).stdout.split()


def test_dbt_that_loses_the_race_for_duckdb_waits_and_runs_again(home_copy, tmp_path):
    wrapper = _racing_dbt(tmp_path, every_time=False)
    done = _segflow(home_copy, "build", "--as-of", WEEK5, SEGFLOW_DBT_EXECUTABLE=str(wrapper))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dbt_runs.log").read_text().count("started") == 2, "dbt met the lock once, then ran again"
    assert _racing_holders(tmp_path) == []


def test_dbt_that_keeps_losing_the_race_ends_with_the_one_line_message(home_copy, tmp_path):
    wrapper = _racing_dbt(tmp_path, every_time=True)
    started = time.monotonic()
    done = _segflow(home_copy, "build", "--as-of", WEEK5, SEGFLOW_DBT_EXECUTABLE=str(wrapper),
                    SEGFLOW_LOCK_TIMEOUT_SECONDS="2")
    assert time.monotonic() - started < 120
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert re.fullmatch(r"segflow: error: The warehouse .* is locked by another writer \(held by process \d+\) and "
                        r"stayed locked for 2 s\. .*SEGFLOW_LOCK_TIMEOUT_SECONDS\.\n", done.stderr)
    assert sorted(tmp_path.glob("ready.*")), "the racing holder never ran"
    assert _racing_holders(tmp_path) == [], "a holder started by dbt's wrapper outlived the build"


def test_status_answers_from_the_published_snapshot_while_a_build_holds_the_warehouse(home_copy):
    published = _segflow(home_copy, "status", "--json")  # a live read publishes the snapshot
    assert published.returncode == 0, published.stderr
    live = json.loads(published.stdout)
    assert live["source"] == "live"
    env = _env(home_copy)
    log = home_copy.dbt_log_dir / "build.out"
    log.unlink()  # the copied home holds the log of the build that made it
    build = subprocess.Popen([SEGFLOW, "build", "--as-of", WEEK5, "--full-refresh"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (log.exists() and "START" in log.read_text()) and time.monotonic() < deadline:
            assert build.poll() is None, build.stderr.read()
            time.sleep(0.05)
        started = time.monotonic()
        answer = _segflow(home_copy, "status")
        took = time.monotonic() - started
        assert build.poll() is None, "the build must still hold the warehouse while status answers"
    finally:
        build.wait(timeout=900)
    assert answer.returncode == 0, answer.stderr
    assert took < 3, f"status took {took:.1f} s while a writer held the warehouse"
    assert f"held by process {build.pid}: segflow build" in answer.stdout
    delivered = f"{live['load']['rows_in_files']:,}"
    assert re.search(rf"rows delivered\s+{delivered}", answer.stdout)
    assert build.returncode == 0
