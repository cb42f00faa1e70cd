"""A killed `segflow build` takes its dbt down, and the next build runs (the warehouse lock is free): dbt
started directly, and dbt started by a wrapper script (a grandchild, which the parent-death signal alone
does not reach)."""

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


def _descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every live process below ``pid``, from /proc."""
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current:
                found.append((child, commands.get(child, "")))
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def loaded_home(tmp_path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    settings.ensure_dirs()
    generate(small_config(customers=150, days=14), settings.landing_dir, settings.truth_dir)
    load_landing(settings)
    return settings


def _wrapper(tmp_path: Path) -> Path:
    """A dbt wrapper script as deployments write them: it does some setup and runs dbt *without* exec."""
    script = tmp_path / "dbt-wrapper.sh"
    script.write_text(f'#!/bin/sh\necho "wrapper starting dbt" >&2\n"{Path(sys.executable).with_name("dbt")}" "$@"\n'
                      'echo "wrapper done" >&2\n')
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("launch", ["direct", "wrapper"])
def test_kill_9_of_build_stops_dbt_and_the_next_build_succeeds(loaded_home, tmp_path, launch):
    env = {**os.environ, "SEGFLOW_HOME": str(loaded_home.home)}
    if launch == "wrapper":
        env["SEGFLOW_DBT_EXECUTABLE"] = str(_wrapper(tmp_path))
    segflow = str(Path(sys.executable).with_name("segflow"))
    parent = subprocess.Popen([segflow, "build"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    dbt = []
    while not dbt and time.monotonic() < deadline and parent.poll() is None:
        dbt = [pid for pid, cmd in _descendants(parent.pid)
               if cmd.split(" ")[:2][-1].endswith("/dbt") and " build " in cmd]
        time.sleep(0.1)
    assert dbt, "dbt never started under segflow build"
    if launch == "wrapper":
        tree = dict(_descendants(parent.pid))
        assert any("dbt-wrapper.sh" in cmd for cmd in tree.values()), tree
        assert all(pid not in [c for c, _ in _children_of(parent.pid)] for pid in dbt), "dbt must be a grandchild"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    # dbt needs several seconds more for this build (start-up alone is ~4 s): dead within 3 s means it was
    # stopped, not that it finished
    deadline = time.monotonic() + 3
    while any(_alive(pid) for pid in dbt) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in dbt), "dbt outlived its killed parent"
    rebuilt = subprocess.run([segflow, "build"], env=env, capture_output=True, text=True, timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr


def _children_of(pid: int) -> list[tuple[int, str]]:
    return [(child, cmd) for child, cmd in _descendants(pid) if _parent(child) == pid]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None
