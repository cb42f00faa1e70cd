"""`segflow build` shows a step line with counts while dbt runs: dbt's own per-node lines, counted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests_support import week_end

pytestmark = pytest.mark.slow


def test_build_reports_each_dbt_node_as_a_step_with_counts(home_copy):
    env = {**os.environ, "SEGFLOW_HOME": str(home_copy.home)}
    proc = subprocess.run([str(Path(sys.executable).with_name("segflow")), "build", "--as-of",
                           week_end(4).isoformat()], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    steps = re.findall(r"^build\s+\[[#.]{20}\]\s+(\d+)/(\d+)  (\S+)", proc.stderr, flags=re.M)
    assert len(steps) >= 2, proc.stderr[-2000:]  # the first and the last at least (one a second in between)
    results = json.loads((home_copy.dbt_target_dir / "run_results.json").read_text())["results"]
    nodes = [r for r in results if not r["unique_id"].startswith("operation.")]  # the project's hooks
    done, total, last_node = steps[-1]
    assert int(done) == int(total) == len(nodes)  # dbt's own count of what it ran
    assert any(last_node.split(".")[-1] in r["unique_id"] for r in nodes), last_node  # a node dbt ran
    assert all(int(d) <= int(t) for d, t, _ in steps)
    json.loads(proc.stdout)  # stdout stays the machine-readable result
