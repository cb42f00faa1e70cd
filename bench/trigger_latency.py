"""Latency from an event file landing to its trigger in the outbox (docs/activation.md).

Copies the warehouse of a built home (``--home``, default $SEGFLOW_HOME) into a scratch home, starts the real
``segflow triggers --watch INTERVAL --no-send`` as a separate process, then lands ``--files`` event files one
after the other the way a producer does (written under a temporary name, renamed, ``.ready`` marker), each with
three views of a high-value product by a consenting customer. The outbox records, per trigger, when its file
landed (the file's mtime) and when the trigger was committed (``detected_at``): latency = the difference.

    .venv/bin/python bench/trigger_latency.py --home .segflow --files 10 --interval 1
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _customer(warehouse: Path) -> str:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "select d.customer_id from marts.dim_customers d join intermediate.int_identity_graph g "
            "on g.customer_id = d.customer_id and g.identifier_kind = 'user_id' and g.identifier = d.customer_id "
            "where d.has_marketing_consent and d.has_analytics_consent order by 1 limit 1").fetchall()[0][0]
    finally:
        con.close()


def _land(folder: Path, n: int, customer: str) -> float:
    start = datetime(2026, 1, 1) + timedelta(hours=3 * n)  # a new session each time (in the past: see clock skew)
    name = f"events_bench_{n:04d}.csv"
    tmp = folder / f"_{name}"
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["event_id", "event_type", "occurred_at", "user_id", "product_id", "price"])
        for i in range(3):
            writer.writerow([f"bench-{n}-{i}", "product_view", (start + timedelta(minutes=i)).isoformat() + "Z",
                             customer, "P-BENCH", "999.00"])
    landed = time.time()
    tmp.rename(folder / name)
    (folder / f"{name}.ready").touch()
    return landed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("SEGFLOW_HOME", ROOT / ".segflow")),
                        help="a built segflow home (its warehouse is copied, never changed)")
    parser.add_argument("--files", type=int, default=10, help="event files to land (default 10)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between trigger runs (default 1)")
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between two files (default 3)")
    args = parser.parse_args()
    warehouse = args.home / "warehouse.duckdb"
    if not warehouse.is_file():
        print(f"no warehouse at {warehouse}: build a home first (segflow generate/load/build)", file=sys.stderr)
        return 2
    customer = _customer(warehouse)
    with tempfile.TemporaryDirectory(prefix="segflow-trigger-bench-") as scratch:
        home = Path(scratch) / "home"
        (home / "landing" / "events").mkdir(parents=True)
        shutil.copy2(warehouse, home / "warehouse.duckdb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGFLOW_")} | {"SEGFLOW_HOME": str(home)}
        log = open(Path(scratch) / "watch.log", "w")
        watcher = subprocess.Popen([str(Path(sys.executable).with_name("segflow")), "triggers", "--watch",
                                    str(args.interval), "--no-send"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 180
            while "run_seq" not in (Path(scratch) / "watch.log").read_text():  # the first run copies the reference
                if time.monotonic() > deadline or watcher.poll() is not None:
                    raise SystemExit("the trigger watcher did not complete a first run: "
                                     + (Path(scratch) / "watch.log").read_text()[-2000:])
                time.sleep(0.2)
            for n in range(args.files):
                _land(home / "landing" / "events", n, customer)
                time.sleep(args.gap)
            time.sleep(2 * args.interval + 2)
        finally:
            watcher.send_signal(signal.SIGINT)
            watcher.wait(timeout=30)
            log.close()
        if os.environ.get("BENCH_SHOW_LOG"):
            print((Path(scratch) / "watch.log").read_text()[-3000:], file=sys.stderr)
        import duckdb

        con = duckdb.connect(str(home / "activation.duckdb"), read_only=True)
        rows = con.execute("select epoch(detected_at) - epoch(file_landed_at) from trigger_outbox "
                           "where trigger_type = 'session_offer' order by event_at").fetchall()
        runs = [r[0] for r in con.execute("select epoch(finished_at) - epoch(started_at) from trigger_runs "
                                          "where files_read > 0").fetchall()]
        con.close()
    latencies = sorted(r[0] for r in rows)
    if len(latencies) != args.files:
        print(f"expected {args.files} triggers, found {len(latencies)}", file=sys.stderr)
        return 1
    result = {"files": args.files, "watch_interval_s": args.interval,
              "latency_s": {"median": round(statistics.median(latencies), 3),
                            "p90": round(latencies[int(0.9 * (len(latencies) - 1))], 3),
                            "max": round(latencies[-1], 3), "min": round(latencies[0], 3)},
              "run_with_one_new_file_s": {"median": round(statistics.median(runs), 3), "max": round(max(runs), 3)}}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
