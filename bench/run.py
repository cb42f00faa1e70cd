"""segflow benchmarks: wall time and peak memory of each pipeline step at a few data sizes.

    python bench/run.py [--customers 2000 8000] [--days 63] [--out docs/benchmarks.md]

Each size runs in a fresh SEGFLOW_HOME under a temp folder: generate -> load -> dbt build -> GX gate ->
recluster -> drift. Peak RSS is per step: this process's high-water mark for in-process steps, the children's
(the dbt subprocess) for the build. Results are appended to the output file as a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _step(name: str, func, rows: list, children: bool = False):
    before = _rss_mb(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    result = func()
    elapsed = time.perf_counter() - t0
    after = _rss_mb(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    rows.append((name, elapsed, after if after > before else None))
    print(f"  {name:<10} {elapsed:7.1f} s", flush=True)
    return result


def run_size(customers: int, days: int) -> dict:
    from segflow.jobs.build import build
    from segflow.jobs.load import load_landing
    from segflow.jobs.segment import check_drift, recluster
    from segflow.jobs.validate import validate
    from segflow.settings import Settings
    from segflow.sources.generator import GeneratorConfig, generate

    start = date(2025, 9, 1)
    as_of = datetime.combine(start + timedelta(days=days), datetime.min.time())
    with tempfile.TemporaryDirectory(prefix="segflow-bench-") as tmp:
        settings = Settings(home=Path(tmp) / "home")
        settings.ensure_dirs()
        steps: list = []
        print(f"{customers} customers x {days} days", flush=True)
        report = _step("generate", lambda: generate(GeneratorConfig(customers=customers, days=days, start=start),
                                                    settings.landing_dir, settings.truth_dir), steps)
        _step("load", lambda: load_landing(settings), steps)
        _step("dbt build", lambda: build(settings, as_of=as_of), steps, children=True)
        _step("GX gate", lambda: validate(settings, as_of=as_of), steps)
        run = _step("recluster", lambda: recluster(settings, as_of=as_of), steps)
        _step("drift", lambda: check_drift(settings, as_of=as_of), steps)
        size_mb = settings.warehouse_path.stat().st_size / 1e6
    return {"customers": customers, "days": days, "events": report.events_delivered, "steps": steps,
            "k": run.k, "silhouette": run.silhouette, "warehouse_mb": size_mb}


def to_markdown(results: list[dict]) -> str:
    lines = [f"\n### Pipeline steps — {datetime.now():%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}\n",
             "| customers × days | event rows | step | wall (s) | events/s | peak RSS (MB) |",
             "|---|---|---|---|---|---|"]
    for r in results:
        for name, elapsed, rss in r["steps"]:
            rate = f"{r['events'] / elapsed:,.0f}" if name in ("generate", "load", "dbt build") else ""
            lines.append(f"| {r['customers']:,} × {r['days']} | {r['events']:,} | {name} | {elapsed:.1f} | {rate} | "
                         f"{rss:,.0f} |" if rss else
                         f"| {r['customers']:,} × {r['days']} | {r['events']:,} | {name} | {elapsed:.1f} | {rate} | "
                         "(below earlier peak) |")
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
    args = parser.parse_args()
    results = [run_size(c, args.days) for c in args.customers]
    text = to_markdown(results)
    print(text)
    with open(args.out, "a") as fh:
        fh.write(text)
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
