"""segflow benchmarks: wall time and peak memory of each pipeline step at a few data sizes.

    python bench/run.py [--customers 2000 8000] [--days 63] [--out docs/benchmarks.md]

Each size runs in a fresh SEGFLOW_HOME under a temp folder: generate -> load -> dbt build -> GX gate ->
recluster -> drift. Every step runs in a fresh interpreter (as an Airflow task does, imports included);
wall time and peak RSS are those of that process tree (os.wait4). Results are appended to the output
file as a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


STEPS = ("generate", "load", "dbt build", "GX gate", "recluster", "drift")


def _step_in_process(step: str, home: Path, customers: int, days: int) -> None:
    """Run one step (in a fresh interpreter, like an Airflow task)."""
    from segflow.jobs.build import build
    from segflow.jobs.drift import check_drift
    from segflow.jobs.load import load_landing
    from segflow.jobs.segment import recluster
    from segflow.jobs.validate import validate
    from segflow.settings import Settings
    from segflow.sources.generator import GeneratorConfig, generate

    start = date(2025, 9, 1)
    as_of = datetime.combine(start + timedelta(days=days), datetime.min.time())
    settings = Settings(home=home)
    settings.ensure_dirs()
    {
        "generate": lambda: generate(GeneratorConfig(customers=customers, days=days, start=start),
                                     settings.landing_dir, settings.truth_dir),
        "load": lambda: load_landing(settings),
        "dbt build": lambda: build(settings, as_of=as_of),
        "GX gate": lambda: validate(settings, as_of=as_of),
        "recluster": lambda: recluster(settings, as_of=as_of),
        "drift": lambda: check_drift(settings, as_of=as_of),
    }[step]()


def _measure(step: str, home: Path, customers: int, days: int) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of the step's process tree (dbt runs as a child of it)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--step", step, "--home", str(home),
                             "--customers", str(customers), "--days", str(days)])
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench step {step!r} failed")
    return elapsed, usage.ru_maxrss / 1024


def run_size(customers: int, days: int) -> dict:
    import duckdb

    with tempfile.TemporaryDirectory(prefix="segflow-bench-") as tmp:
        home = Path(tmp) / "home"
        print(f"{customers} customers x {days} days", flush=True)
        steps = []
        for step in STEPS:
            elapsed, rss = _measure(step, home, customers, days)
            steps.append((step, elapsed, rss))
            print(f"  {step:<10} {elapsed:7.1f} s  {rss:8.0f} MB", flush=True)
        con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
        events = con.execute("select sum(rows_in_file) from meta.load_manifest where source = 'events'").fetchone()[0]
        k, silhouette = con.execute("select k, silhouette from ml.model_runs").fetchone()
        con.close()
        size_mb = (home / "warehouse.duckdb").stat().st_size / 1e6
    return {"customers": customers, "days": days, "events": events, "steps": steps, "k": k,
            "silhouette": silhouette, "warehouse_mb": size_mb}


def to_markdown(results: list[dict]) -> str:
    lines = [f"\n### Pipeline steps — {datetime.now():%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}\n",
             "| customers × days | event rows | step | wall (s) | events/s | peak RSS (MB) |",
             "|---|---|---|---|---|---|"]
    for r in results:
        for name, elapsed, rss in r["steps"]:
            rate = f"{r['events'] / elapsed:,.0f}" if name in ("generate", "load", "dbt build") else ""
            lines.append(f"| {r['customers']:,} × {r['days']} | {r['events']:,} | {name} | {elapsed:.1f} | {rate} | "
                         f"{rss:,.0f} |")
        total = sum(s[1] for s in r["steps"])
        lines.append(f"| {r['customers']:,} × {r['days']} | {r['events']:,} | **total** | **{total:.1f}** | | |")
    lines.append("")
    for r in results:
        lines.append(f"- {r['customers']:,} customers: warehouse {r['warehouse_mb']:.0f} MB, k={r['k']}, "
                     f"silhouette {r['silhouette']:.3f}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--days", type=int, default=63)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        _step_in_process(args.step, args.home, args.customers[0], args.days)
        return
    results = [run_size(c, args.days) for c in args.customers]
    text = to_markdown(results)
    print(text)
    with open(args.out, "a") as fh:
        fh.write(text)
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
