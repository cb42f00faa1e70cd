"""How far one machine goes: a daily incremental build over ~100M events of history.

    python bench/replicated.py --landing DIR --copies 10 [--days 30] [--work DIR] [--out docs/benchmarks.md]

Takes generated landing files (e.g. the 10M-event set `bench/scale.py --keep` leaves), loads the first `days`
received days, copies that history `copies - 1` times inside the warehouse with distinct identifiers
(replicated generated data: K times the customers, devices, events), builds it in full, then loads the next
day (also replicated) and measures the incremental build — the daily run of a warehouse with that history.
Each step runs in a fresh interpreter; wall time and peak RSS as in bench/scale.py.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path

from _measure import ROOT, StepFailed, machine, measure

START = date(2025, 9, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="segflow-replicated-"))
    home, logs, aside = work / "home", work / "logs", work / "held-back"
    logs.mkdir(parents=True, exist_ok=True)
    shutil.copytree(args.landing, home / "landing")
    last_day = START + timedelta(days=args.days)
    held = sorted((home / "landing").glob(f"*/*_{last_day.isoformat()}.*"))
    for path in held:
        (aside / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.move(path, aside / path.parent.name / path.name)
    full_as_of = datetime.combine(last_day, datetime.min.time()).isoformat()
    incr_as_of = datetime.combine(last_day + timedelta(days=1), datetime.min.time()).isoformat()
    h = {"home": str(home)}
    rows = []

    def step(name: str, kind: str, params: dict) -> dict:
        wall, rss, found = measure(kind, name, params, logs / f"{kind}-{len(rows)}.log", work)
        rows.append((name, wall, rss, found))
        print(f"  {name:<34} {wall:8.1f} s {rss:8.0f} MB  {found}", flush=True)
        return found

    try:
        step(f"load {args.days} days", "load", h)
        step(f"replicate history x{args.copies}", "replicate", {**h, "copies": args.copies})
        step("full build (setup)", "build", {**h, "as_of": full_as_of, "full_refresh": True})
        for path in held:
            shutil.move(aside / path.parent.name / path.name, path)
        step("load 1 day", "load", h)
        replicated = step(f"replicate the day x{args.copies}", "replicate", {**h, "copies": args.copies})
        step("1-day incremental build", "build", {**h, "as_of": incr_as_of})
    except StepFailed as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None
    lines = [f"\n### Daily incremental build over replicated history — {datetime.now():%Y-%m-%d %H:%M} UTC, "
             f"`bench/replicated.py --copies {args.copies}`\n", machine() + ".\n",
             f"{replicated['event_rows']:,} event rows in raw after the last load.\n",
             "| step | wall (s) | peak RSS (MB) |", "|---|---|---|"]
    lines += [f"| {name} | {wall:.1f} | {rss:,.0f} |" for name, wall, rss, _ in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(text)
    print(f"work folder {work} (delete it when done)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
