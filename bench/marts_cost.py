"""What a change of the dbt project costs at scale: this checkout against a reference checkout, side by side.

    python bench/marts_cost.py --base PATH [--events 10000000] [--days 30] [--repeats 3] [--out docs/benchmarks.md]

PATH is another checkout of segflow (e.g. `git worktree add --detach /tmp/base <rev>`) with its own .venv
(`make install` there). The reference checkout's generator writes `days` + 1 received days once; each checkout
loads them into its own SEGFLOW_HOME with its own loader. Then, alternating (the order rotates every repeat):
a full build of the first `days` with each checkout; then the held-back day is loaded and a 1-day incremental
build runs from a copy of each home's warehouse, again alternating. Every step runs in a fresh interpreter of
the checkout's own venv (bench/_measure.py of that checkout); wall time and peak RSS of its process tree.
For this checkout's builds, dbt's run_results.json also splits the node time into the nodes (models, tests)
the reference project has too and the nodes it does not have: the cost of the new models and their tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from _measure import ROOT, StepFailed, machine

START = date(2025, 9, 1)


def run_step(checkout: Path, step: str, params: dict, log: Path) -> tuple[float, float, dict]:
    """``bench/_measure.py STEP`` of ``checkout`` in its own venv: (wall s, peak RSS MB, its result)."""
    result = log.with_suffix(".json")
    result.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGFLOW_")}
    command = [str(checkout / ".venv" / "bin" / "python"), str(checkout / "bench" / "_measure.py"), step,
               json.dumps(params), str(result)]
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, cwd=checkout, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise StepFailed(step, os.waitstatus_to_exitcode(status), log)
    return elapsed, usage.ru_maxrss / 1024, json.loads(result.read_text()) if result.exists() else {}


def node_split(home: Path, reference_nodes: set[str]) -> tuple[float, float, int]:
    """(node-seconds of nodes the reference also has, node-seconds of new nodes, new node count)."""
    results = json.loads((home / "artifacts" / "dbt" / "target" / "run_results.json").read_text())["results"]
    old = sum(r["execution_time"] for r in results if r["unique_id"] in reference_nodes)
    new = [r["execution_time"] for r in results if r["unique_id"] not in reference_nodes
           and not r["unique_id"].startswith("operation.")]
    return old, sum(new), len(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="reference checkout with its own .venv")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--customers-per-million", type=int, default=7_290,
                        help="customers per 1M requested events (the generator gives about 1M event rows from 7,290 customers over 31 days)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    base = args.base.resolve()
    if not (base / ".venv" / "bin" / "python").exists() or not (base / "bench" / "_measure.py").exists():
        parser.error(f"{base} is not a segflow checkout with a .venv (run `make install` there)")
    checkouts = {"reference": base, "this": ROOT}
    revs = {name: subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path, capture_output=True,
                                 text=True).stdout.strip() for name, path in checkouts.items()}
    work = Path(tempfile.mkdtemp(prefix="segflow-marts-cost-"))
    logs = work / "logs"
    logs.mkdir()
    started = datetime.now().astimezone()
    try:
        landing, truth = work / "landing", work / "truth"
        customers = max(1, args.events * args.customers_per_million // 1_000_000)
        _, _, gen = run_step(base, "generate", {"customers": customers, "days": args.days + 1,
                             "start": START.isoformat(), "landing": str(landing), "truth": str(truth)},
                             logs / "generate.log")
        print(f"generated {gen['events']:,} event rows for {customers:,} customers", flush=True)
        last_day = (START + timedelta(days=args.days)).isoformat()
        held = sorted(landing.glob(f"*/*_{last_day}.*"))
        full_as_of = datetime.combine(START + timedelta(days=args.days), datetime.min.time()).isoformat()
        incr_as_of = datetime.combine(START + timedelta(days=args.days + 1), datetime.min.time()).isoformat()
        homes = {name: work / name / "home" for name in checkouts}
        for name, home in homes.items():
            (home / "landing").mkdir(parents=True)
            for folder in landing.iterdir():
                shutil.copytree(folder, home / "landing" / folder.name,
                                ignore=lambda _d, files: [f for f in files if f"_{last_day}." in f])
            wall, _, _ = run_step(checkouts[name], "load", {"home": str(home)}, logs / f"load-{name}.log")
            print(f"load ({name}) {wall:.1f} s", flush=True)
        timings: dict[str, dict[str, list[tuple[float, float]]]] = {"full": {}, "incremental": {}}
        splits: list[tuple[float, float, int]] = []
        names = list(checkouts)
        reference_nodes: set[str] = set()
        for run in range(args.repeats):
            for name in names[run % 2:] + names[:run % 2]:
                wall, rss, _ = run_step(checkouts[name], "build", {"home": str(homes[name]), "as_of": full_as_of,
                                        "full_refresh": True}, logs / f"full-{name}-{run + 1}.log")
                timings["full"].setdefault(name, []).append((wall, rss))
                if name == "reference":
                    reference_nodes = {r["unique_id"] for r in json.loads(
                        (homes[name] / "artifacts/dbt/target/run_results.json").read_text())["results"]}
                print(f"run {run + 1} full build {name:<9} {wall:7.1f} s {rss:7.0f} MB", flush=True)
            splits.append(node_split(homes["this"], reference_nodes))
        for name, home in homes.items():
            for path in held:
                target = home / "landing" / path.parent.name / path.name
                shutil.copy(path, target)
            run_step(checkouts[name], "load", {"home": str(home)}, logs / f"load-day-{name}.log")
            shutil.copy(home / "warehouse.duckdb", home.parent / "after-full.duckdb")
        incr_splits = []
        for run in range(args.repeats):
            for name in names[run % 2:] + names[:run % 2]:
                shutil.copy(homes[name].parent / "after-full.duckdb", homes[name] / "warehouse.duckdb")
                wall, rss, _ = run_step(checkouts[name], "build", {"home": str(homes[name]), "as_of": incr_as_of},
                                        logs / f"incr-{name}-{run + 1}.log")
                timings["incremental"].setdefault(name, []).append((wall, rss))
                print(f"run {run + 1} 1-day build {name:<9} {wall:7.1f} s {rss:7.0f} MB", flush=True)
            incr_splits.append(node_split(homes["this"], reference_nodes))
    except StepFailed as exc:
        tail = exc.log.read_text(errors="replace").strip().splitlines()[-15:]
        print(f"\n{exc}\n  " + "\n  ".join(tail) + f"\ndata and logs kept in {work}", file=sys.stderr)
        sys.exit(1)

    def med(values, i):
        return statistics.median(v[i] for v in values)

    rows = []
    for kind, label, split in (("full", "full build", splits), ("incremental", "1-day incremental build",
                                                                 incr_splits)):
        ref, this = timings[kind]["reference"], timings[kind]["this"]
        rows.append(f"| {label} | {med(ref, 0):.1f} s / {med(ref, 1) / 1024:.2f} GB | {med(this, 0):.1f} s / "
                    f"{med(this, 1) / 1024:.2f} GB | {med(this, 0) / med(ref, 0):.2f}× | "
                    f"{med(split, 0):.1f} node-s old, {med(split, 1):.1f} node-s in {split[0][2]} new nodes |")
    text = (f"\n### Cost of the project change {revs['reference']} → {revs['this']} — {started:%Y-%m-%d %H:%M %Z}, "
            f"`bench/marts_cost.py --events {args.events} --days {args.days} --repeats {args.repeats}`\n\n"
            f"{machine()}. {gen['events']:,} generated event rows ({customers:,} customers, {args.days} + 1 "
            f"days); each checkout loads and builds its own home; alternating order; medians of "
            f"{args.repeats}. Node-seconds (dbt's per-node times, 2 threads) of this checkout's builds are split "
            "into nodes the reference also has and new nodes (models and their tests).\n\n"
            f"| build | reference {revs['reference']} | this {revs['this']} | ratio | where this checkout's node "
            "time goes |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    print(text)
    with open(args.out, "a") as fh:
        fh.write(text)
    print(f"appended to {args.out}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
