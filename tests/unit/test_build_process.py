"""A killed `segflow build` takes its dbt child down, and the next build runs (the warehouse lock is free)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests_support import small_config

from segflow.jobs.load import load_landing
from segflow.settings import Settings
from segflow.sources.generator import generate

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")]


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found.append((int(entry.name), cmdline))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_of_build_stops_dbt_and_the_next_build_succeeds(tmp_path):
    settings = Settings(home=tmp_path / "home")
    settings.ensure_dirs()
    generate(small_config(customers=150, days=14), settings.landing_dir, settings.truth_dir)
    load_landing(settings)
    env = {**os.environ, "SEGFLOW_HOME": str(settings.home)}
    segflow = str(Path(sys.executable).with_name("segflow"))
    parent = subprocess.Popen([segflow, "build"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    dbt = []
    while not dbt and time.monotonic() < deadline and parent.poll() is None:
        dbt = [pid for pid, cmd in _children(parent.pid) if "dbt" in cmd]
        time.sleep(0.1)
    assert dbt, "dbt never started under segflow build"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    # dbt needs several seconds more for this build (start-up alone is ~4 s): dead within 3 s means it was
    # stopped, not that it finished
    deadline = time.monotonic() + 3
    while _alive(dbt[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(dbt[0]), "the dbt child outlived its killed parent"
    rebuilt = subprocess.run([segflow, "build"], env=env, capture_output=True, text=True, timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr
