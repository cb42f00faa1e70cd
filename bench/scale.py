"""segflow at scale: load, full and 1-day builds, the gate, and sessionization against a DuckDB floor and pandas.

    python bench/scale.py --events 1000000 10000000 [--days 30] [--repeats 3] [--out docs/benchmarks.md]
                          [--memory-limit 3GB] [--keep DIR]

Per size: the seeded generator writes `days` + 1 received days once (the customer count comes from a small
calibration run, so the files hold about the requested number of event rows). In a fresh SEGFLOW_HOME the
first `days` are loaded, built with --full-refresh (with the default DuckDB memory limit, half the RAM, then
again with --memory-limit) and validated; then the held-back last day is loaded,
built incrementally and validated again. Then sessionization alone, on the same events exported once to
Parquet, alternating in every repeat: segflow's dbt model, a hand-written single DuckDB query (the floor) and
a pandas + pyarrow version. Every step runs in a fresh interpreter (as an Airflow task does, imports
included); wall time and peak RSS are those of its process tree (os.wait4). Medians over the repeats; the
result is appended to --out as markdown and printed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

from _measure import ROOT, StepFailed, machine, measure

START = date(2025, 9, 1)
CALIBRATION_CUSTOMERS = 300
VARIANTS = {
    "segflow": "segflow: `dbt run -s int_events_sessionized --full-refresh`",
    "duckdb": "DuckDB floor: one query, Parquet → table",
    "pandas": "pandas + pyarrow: sort, diff, cumsum, md5 → Parquet",
}


def _midnight(day: date) -> str:
    return datetime.combine(day, datetime.min.time()).isoformat()


def calibrate(work: Path, days: int) -> float:
    """Event rows per customer over `days` + 1 days, from a small run of the same generator."""
    folder = work / "calibration"
    folder.mkdir(parents=True)
    params = {"customers": CALIBRATION_CUSTOMERS, "days": days + 1, "start": START.isoformat(),
              "landing": str(folder / "landing"), "truth": str(folder / "truth")}
    _, _, found = measure("generate", "calibration", params, work / "logs" / "calibration.log", work)
    shutil.rmtree(folder)
    per_customer = found["events"] / CALIBRATION_CUSTOMERS
    print(f"calibration: {per_customer:.1f} event rows per customer over {days + 1} days "
          f"({per_customer / (days + 1):.2f} per customer per day)", flush=True)
    return per_customer


def _hold_back(landing: Path, aside: Path, day: date) -> list[Path]:
    """Move the files of received day `day` (every stream folder) aside; returns where they were."""
    moved = []
    for path in sorted(landing.glob(f"*/*_{day.isoformat()}.*")):
        target = aside / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
        moved.append(path)
    return moved


def _load_notes(f: dict) -> str:
    rows = ", ".join(f"{stream} {n:,}" for stream, n in sorted(f["streams"].items()))
    return (f"{f['files']} files; rows: {rows}; {f['rejected_rows']:,} lines rejected"
            + (f", {f['skipped']} files already loaded (skipped)" if f["skipped"] else "")
            + (f"; NOT LOADED: {'; '.join(f['failed_files'])}" if f["failed_files"] else ""))


def _build_notes(f: dict) -> str:
    return (", ".join(f"{n} {s}" for s, n in sorted(f["statuses"].items())) + f"; dbt {f['dbt_seconds']:.1f} s; "
            f"incremental models: {', '.join(f['incremental_models']) or 'none'}")


def _gate_notes(f: dict) -> str:
    return "passed" if f["success"] else f"FAILED: {f['failures']}"


def run_size(work: Path, events: int, per_customer: float, days: int, repeats: int, memory_limit: str
             ) -> dict:
    customers = max(1, round(events / per_customer))
    base = work / f"events-{events}"
    home, logs = base / "home", work / "logs"
    full_as_of, incr_as_of = _midnight(START + timedelta(days=days)), _midnight(START + timedelta(days=days + 1))
    steps: list[tuple[str, float, float, str]] = []

    def step(name: str, kind: str, params: dict, notes=lambda found: "") -> dict:
        slug = f"{events}-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}"
        wall, rss, found = measure(kind, name, params, logs / f"{slug}.log", work)
        steps.append((name, wall, rss, notes(found)))
        print(f"  {name:<26} {wall:8.1f} s {rss:8.0f} MB  {steps[-1][3]}", flush=True)
        return found

    print(f"\n{events:,} event rows requested: {customers:,} customers × {days} + 1 days", flush=True)
    gen = step("generate (setup)", "generate", {
        "customers": customers, "days": days + 1, "start": START.isoformat(),
        "landing": str(home / "landing"), "truth": str(home / "truth")},
        lambda f: f"{f['events']:,} event rows in {f['files']} files (not a pipeline step)")
    last_day = START + timedelta(days=days)
    held = _hold_back(home / "landing", base / "held-back", last_day)
    h = {"home": str(home)}
    step("load", "load", h, _load_notes)
    step("full build", "build", {**h, "as_of": full_as_of, "full_refresh": True}, _build_notes)
    if memory_limit:
        step(f"full build, {memory_limit} memory limit", "build",
             {**h, "as_of": full_as_of, "full_refresh": True, "memory_limit": memory_limit}, _build_notes)
    step("validate", "validate", {**h, "as_of": full_as_of}, _gate_notes)
    for path in held:
        shutil.move(base / "held-back" / path.parent.name / path.name, path)
    step("load 1 day", "load", h, _load_notes)
    step("1-day incremental build", "build", {**h, "as_of": incr_as_of}, _build_notes)
    step("validate after 1 day", "validate", {**h, "as_of": incr_as_of}, _gate_notes)

    parquet, floor_db, pandas_out = base / "sessionize_input.parquet", base / "floor.duckdb", base / "pandas.parquet"
    _, _, info = measure("export", "export", {**h, "parquet": str(parquet)}, logs / f"{events}-export.log", work)
    print(f"  sessionization input: {info['rows']:,} interactive events, {info['persons']:,} persons, "
          f"{info['sessions']:,} segflow sessions; {repeats} alternating repeats", flush=True)
    params = {"segflow": {**h, "as_of": incr_as_of}, "duckdb": {"parquet": str(parquet), "out": str(floor_db)},
              "pandas": {"parquet": str(parquet), "out": str(pandas_out)}}
    sess: dict[str, list[tuple[float, float, float]]] = {v: [] for v in VARIANTS}
    order = list(VARIANTS)
    for run in range(repeats):
        for variant in order[run % 3:] + order[:run % 3]:  # rotate, so no variant always runs first
            wall, rss, found = measure(f"sess_{variant}", f"sessionization {variant}", params[variant],
                                       logs / f"{events}-sess-{variant}-{run + 1}.log", work)
            sess[variant].append((wall, rss, found["work"]))
            print(f"  run {run + 1} {variant:<8} {wall:7.1f} s (work {found['work']:6.1f} s) {rss:7.0f} MB",
                  flush=True)
    _, _, check = measure("check", "check", {**h, "floor": str(floor_db), "pandas": str(pandas_out)},
                          logs / f"{events}-check.log", work)
    return {"events": events, "customers": customers, "days": days, "generated": gen["events"], "steps": steps,
            "sess": sess, "info": info, "check": check, "repeats": repeats}


def _median(values: list[tuple], i: int) -> float:
    return statistics.median(v[i] for v in values)


def size_markdown(r: dict) -> str:
    info, steps = r["info"], {s[0]: s for s in r["steps"]}
    lines = [f"\n#### {r['events']:,} event rows requested — {r['customers']:,} customers × {r['days']} + 1 days\n",
             f"{r['generated']:,} event rows generated ({info['raw_event_rows']:,} lines in the loaded event files); "
             f"warehouse {info['warehouse_mb']:,.0f} MB after the 1-day build.\n",
             "| step | wall (s) | peak RSS (MB) | notes |", "|---|---|---|---|"]
    lines += [f"| {name} | {wall:.1f} | {rss:,.0f} | {notes} |" for name, wall, rss, notes in r["steps"]]
    full = steps["full build"][1]
    lines += ["", f"- 1-day incremental / full build: **{steps['1-day incremental build'][1] / full:.2f}×** wall",
              f"- validate / full build: **{steps['validate'][1] / full:.2f}×** wall "
              f"(after 1 day: {steps['validate after 1 day'][1] / full:.2f}×)", ""]
    lines += [f"Sessionization of {info['rows']:,} interactive events ({info['persons']:,} persons, "
              f"{info['sessions']:,} sessions), each run a fresh process, medians of {r['repeats']} alternating "
              "runs. *work* = segflow: the dbt node's execution_time; floor: connect + query; pandas: read to "
              "write. segflow's model writes 8 columns (the event -> session map with person, customer and session start); the others write 5.\n",
              "| variant | process wall (s) | work (s) | peak RSS (MB) |", "|---|---|---|---|"]
    med = {v: [_median(r["sess"][v], i) for i in range(3)] for v in VARIANTS}
    lines += [f"| {VARIANTS[v]} | {m[0]:.1f} | {m[2]:.1f} | {m[1]:,.0f} |" for v, m in med.items()]

    def ratio(a: str, b: str) -> str:
        return " | ".join(f"{med[a][i] / med[b][i]:.2f}×" for i in (0, 2, 1))

    lines += ["", "| ratio | process wall | work | peak RSS |", "|---|---|---|---|",
              f"| segflow / DuckDB floor | {ratio('segflow', 'duckdb')} |",
              f"| pandas / segflow | {ratio('pandas', 'segflow')} |", ""]
    agree = "; ".join(f"{name}: {diff:,} of {total:,} events differ" for name, (diff, total) in r["check"].items())
    lines.append(f"Session ids against segflow's `int_events_sessionized` (joined on event_id): {agree}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", required=True, help="event rows per size (approximate)")
    parser.add_argument("--days", type=int, default=30, help="days loaded before the 1-day increment")
    parser.add_argument("--repeats", type=int, default=3, help="sessionization runs per variant")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--memory-limit", default="3GB",
                        help="also time the full build with this SEGFLOW_DUCKDB_MEMORY_LIMIT ('' to skip)")
    parser.add_argument("--keep", type=Path, help="keep the data (homes, logs, Parquet) in this folder")
    args = parser.parse_args()
    if args.days < 1 or args.repeats < 1 or min(args.events) < 1:
        parser.error("--events, --days and --repeats must be positive")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        if any(args.keep.iterdir()):
            parser.error(f"--keep folder {args.keep} is not empty")
    work = (args.keep or Path(tempfile.mkdtemp(prefix="segflow-scale-"))).resolve()
    (work / "logs").mkdir()
    started = datetime.now().astimezone()
    print(f"work folder {work}", flush=True)
    try:
        per_customer = calibrate(work, args.days)
        sections = []
        for events in args.events:
            sections.append(size_markdown(run_size(work, events, per_customer, args.days, args.repeats, args.memory_limit)))
            if not args.keep:
                shutil.rmtree(work / f"events-{events}")
    except StepFailed as exc:
        tail = exc.log.read_text(errors="replace").strip().splitlines()[-15:]
        print(f"\n{exc}\n  " + "\n  ".join(tail) + f"\ndata and logs kept in {work}", file=sys.stderr)
        sys.exit(1)
    text = (f"\n### Scale benchmark — {started:%Y-%m-%d %H:%M %Z}, `bench/scale.py --events "
            f"{' '.join(map(str, args.events))} --days {args.days} --repeats {args.repeats}`\n\n"
            f"{machine()}. Each step in a fresh interpreter; peak RSS = largest process of its tree.\n"
            + "".join(sections))
    print(text)
    with open(args.out, "a") as fh:
        fh.write(text)
    print(f"appended to {args.out}")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
