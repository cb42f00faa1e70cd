"""Side by side: this checkout against a reference revision, on the same generated data.

    python bench/compare_ref.py --ref fb17bde [--customers 2000] [--days 63] [--repeats 3]

The reference is checked out with `git worktree` into a temp folder and imported from there (same venv).
The data is generated once and copied into a fresh home for every run; runs alternate reference / current,
and each step runs in its own interpreter (as an Airflow task does). Prints the medians of wall time and
peak RSS per step and their ratio, and appends the table to docs/benchmarks.md with --out.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("load", "dbt build", "GX gate")
START = date(2025, 9, 1)

CHILD = """
import sys
sys.path.insert(0, {root!r})
from datetime import datetime
from pathlib import Path
from segflow.settings import Settings
settings = Settings(home=Path({home!r}))
as_of = datetime.fromisoformat({as_of!r})
step = {step!r}
if step == "load":
    from segflow.jobs.load import load_landing
    load_landing(settings)
elif step == "dbt build":
    from segflow.jobs.build import build
    build(settings, as_of=as_of)
else:
    from segflow.jobs.validate import validate
    validate(settings, as_of=as_of, raise_on_failure=False)
"""


GENERATE = """
import sys
sys.path.insert(0, {root!r})
from datetime import date
from pathlib import Path
from segflow.sources.generator import GeneratorConfig, generate
report = generate(GeneratorConfig(customers={customers}, days={days}, start=date.fromisoformat({start!r})),
                  Path({data!r}) / "landing", Path({data!r}) / "truth")
print(report.events_delivered)
"""


def _measure(root: Path, home: Path, step: str, as_of: datetime) -> tuple[float, float]:
    code = CHILD.format(root=str(root), home=str(home), as_of=as_of.isoformat(), step=step)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGFLOW_")}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{step} failed for {root}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ref", required=True, help="git revision to compare against")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=63)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    as_of = datetime.combine(START + timedelta(days=args.days), datetime.min.time())
    with tempfile.TemporaryDirectory(prefix="segflow-compare-") as tmp:
        tmp = Path(tmp)
        ref_root = tmp / "ref"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(ref_root), args.ref],
                       check=True)
        try:
            data = tmp / "data"
            # generated in a child process: a forked child inherits the parent's peak RSS, so the parent stays small
            events = int(subprocess.run(
                [sys.executable, "-c", GENERATE.format(root=str(ROOT), data=str(data), customers=args.customers,
                                                        days=args.days, start=START.isoformat())],
                check=True, capture_output=True, text=True).stdout.strip())
            print(f"{events:,} event rows; ref {args.ref} vs current, {args.repeats} runs each")
            results: dict[str, dict[str, list[tuple[float, float]]]] = {"ref": {}, "current": {}}
            for run in range(args.repeats):
                for label, root in (("ref", ref_root), ("current", ROOT)):
                    home = tmp / f"{label}-{run}"
                    shutil.copytree(data, home)
                    for step in STEPS:
                        measured = _measure(root, home, step, as_of)
                        results[label].setdefault(step, []).append(measured)
                        print(f"  run {run + 1} {label:<7} {step:<9} {measured[0]:6.1f} s {measured[1]:7.0f} MB",
                              flush=True)
                    shutil.rmtree(home)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(ref_root)], check=False)
    lines = [f"\n### Current vs {args.ref} — {datetime.now():%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
             f"{events:,} event rows ({args.customers:,} customers × {args.days} days), "
             f"medians of {args.repeats} alternating runs\n",
             "| step | ref wall (s) | current wall (s) | ratio | ref peak RSS (MB) | current peak RSS (MB) |",
             "|---|---|---|---|---|---|"]
    for step in STEPS:
        ref_wall = statistics.median(w for w, _ in results["ref"][step])
        cur_wall = statistics.median(w for w, _ in results["current"][step])
        ref_rss = statistics.median(r for _, r in results["ref"][step])
        cur_rss = statistics.median(r for _, r in results["current"][step])
        lines.append(f"| {step} | {ref_wall:.1f} | {cur_wall:.1f} | {cur_wall / ref_wall:.2f}× | {ref_rss:,.0f} | "
                     f"{cur_rss:,.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(text)
        print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
