"""Drift evaluation: a 20-week generator simulation per seed, drift injected in a known week, scored per week.

    python bench/drift_eval.py [--customers 1000] [--seeds 7 13 99 123 2026] [--workdir DIR] [--out docs/benchmarks.md]

Per seed, a fresh SEGFLOW_HOME: the generator writes 20 weeks (140 days) with one persona drifting from week
``drift_week`` on (the persona and the week vary by seed, the generator itself is unchanged). Then, week by week
(as_of = start + w weeks, from week 4 when every 28-day window is full): load + dbt build (the GX gate is left
out: it changes no feature and costs a minute a week), recluster, then the drift check (:func:`segflow.jobs.drift.check_drift`) and the segment
monitoring (:func:`segflow.jobs.monitoring.monitor_segments`). Ground truth (which persona drifts, and when)
is used only to score:

- a *stable week* is one whose data window holds no drifted day (as_of <= drift start); a drift verdict there is
  a false alarm;
- the drift is *detected within one week* when the verdict is drift at the first weekly run whose window holds
  drifted days (as_of = drift start + 1 week); *within two weeks* when at that or the next run.

To keep the CPU cost down (one load + dbt build per week took 1-4 min on 2 cores shared with other jobs) the
pipeline runs until ``--weeks-after`` weeks past the onset (default 2, the detection window) rather than to week
20; the generated data still spans 20 weeks. ``--phase pipeline`` only builds the homes (resumable: weeks already reclustered are skipped),
``--phase drift`` only re-runs drift + monitoring on them (rows kept per seed in the work dir), ``--phase score``
only scores the rows already there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START = date(2025, 9, 1)
WEEKS = 20
FIRST_WEEK = 4
# seed -> (drifting persona, drift week): varied so the result is not about one persona or one calendar position
SCENARIOS = {7: ("loyal_high_spender", 9), 13: ("power_user", 7), 99: ("occasional_buyer", 7),
             123: ("window_shopper", 12), 2026: ("loyal_high_spender", 8)}


def week_end(w: int) -> datetime:
    return datetime.combine(START + timedelta(weeks=w), datetime.min.time())


def _settings(home: Path):
    from segflow.settings import Settings

    settings = Settings(home=home, load_min_file_age_seconds=0)
    settings.ensure_dirs()
    return settings


def run_pipeline(home: Path, seed: int, customers: int, last_week: int) -> None:
    import duckdb

    from segflow.jobs.build import build
    from segflow.jobs.elt import load_interval
    from segflow.jobs.segment import recluster
    from segflow.sources.generator import GeneratorConfig, generate

    settings = _settings(home)
    persona, drift_week = SCENARIOS.get(seed, ("loyal_high_spender", 10))
    if not (home / "truth").exists() or not any((home / "truth").iterdir()):
        generate(GeneratorConfig(customers=customers, days=WEEKS * 7, start=START, seed=seed, drift_week=drift_week,
                                 drift_persona=persona), settings.landing_dir, settings.truth_dir)
    for w in range(FIRST_WEEK, last_week + 1):
        as_of = week_end(w)
        done = False
        if settings.warehouse_path.exists():
            con = duckdb.connect(str(settings.warehouse_path), read_only=True)
            try:
                done = bool(con.execute("select count(*) from ml.model_runs where as_of = ?", [as_of]).fetchone()[0])
            except duckdb.Error:
                done = False
            con.close()
        if done:
            continue
        t0 = time.perf_counter()
        load_interval(settings, as_of)
        build(settings, as_of)
        run = recluster(settings, as_of)
        print(f"seed {seed} week {w}: load+build+recluster {time.perf_counter() - t0:.0f} s, k={run.k}", flush=True)


def run_drift(home: Path, seed: int, last_week: int) -> list[dict]:
    from segflow.jobs.drift import check_drift
    from segflow.jobs.monitoring import monitor_segments
    from segflow.jobs.registry import register_model

    settings = _settings(home)
    persona, drift_week = SCENARIOS.get(seed, ("loyal_high_spender", 10))
    rows = []
    for w in range(FIRST_WEEK, last_week + 1):
        as_of = week_end(w)
        if not os.environ.get("DRIFT_EVAL_NO_REGISTRY"):  # the weekly DAG's order: register, then drift
            register_model(settings, as_of)
        result = check_drift(settings, as_of)
        monitoring = monitor_segments(settings, as_of)
        phase = "stable" if w <= drift_week else ("onset" if w <= drift_week + 2 else "after")
        rows.append({"seed": seed, "week": w, "phase": phase, "verdict": result.verdict,
                     "scored_by": result.segments_scored_by,
                     "reasons": result.reasons[:4], "spc_signals": monitoring.spc_signals,
                     "trend_breaks": monitoring.trend_breaks})
        print(f"seed {seed} week {w:2d} {phase:6s} {result.verdict:12s} {result.reasons[:3]} "
              f"spc={monitoring.spc_signals} breaks={monitoring.trend_breaks}", flush=True)
    return rows


def score(rows: list[dict]) -> dict:
    by_seed: dict[int, dict] = {}
    for r in rows:
        s = by_seed.setdefault(r["seed"], {"stable_weeks": 0, "false_alarms": 0, "detected_week": None,
                                            "onset_weeks": [], "reason": "", "warns": 0, "spc": [0, 0],
                                            "breaks": [0, 0]})
        onset = r["phase"] == "onset"
        s["spc"][onset] += r["spc_signals"] if r["phase"] != "after" else 0
        s["breaks"][onset] += r["trend_breaks"] if r["phase"] != "after" else 0
        if r["phase"] == "stable" and r["verdict"] != "no_reference":
            s["stable_weeks"] += 1
            s["false_alarms"] += r["verdict"] == "drift"
            s["warns"] += r["verdict"] == "warn"
        if r["phase"] == "onset":
            s["onset_weeks"].append(r["verdict"])
            if r["verdict"] == "drift" and s["detected_week"] is None:
                s["detected_week"] = len(s["onset_weeks"])
                s["reason"] = (r["reasons"] or [""])[0]
    return by_seed


def to_markdown(by_seed: dict, customers: int, seconds: float) -> str:
    lines = [f"\n### Drift evaluation — {datetime.now():%Y-%m-%d %H:%M} UTC, {customers:,} customers, "
             f"{len(by_seed)} seeds (bench/drift_eval.py)\n",
             "| seed | drifting persona | drift week | stable weeks checked | false alarms (warns) | verdicts at "
             "onset +1, +2 weeks | detected within one week (two) | first reason | SPC signals stable / onset | "
             "STL breaks stable / onset |", "|---|---|---|---|---|---|---|---|---|---|"]
    for seed, s in by_seed.items():
        persona, week = SCENARIOS.get(seed, ("loyal_high_spender", 10))
        lines.append(f"| {seed} | {persona} | {week} | {s['stable_weeks']} | {s['false_alarms']} ({s['warns']}) | "
                     f"{', '.join(s['onset_weeks'])} | {'yes' if s['detected_week'] == 1 else 'no'} "
                     f"({'yes' if s['detected_week'] else 'no'}) | {s['reason']} | "
                     f"{s['spc'][0]} / {s['spc'][1]} | {s['breaks'][0]} / {s['breaks'][1]} |")
    detected = sum(1 for s in by_seed.values() if s["detected_week"] == 1)
    detected2 = sum(1 for s in by_seed.values() if s["detected_week"])
    alarms = [s["false_alarms"] for s in by_seed.values()]
    stable = sum(s["stable_weeks"] for s in by_seed.values())
    lines += ["", f"- detected within one week: **{detected} of {len(by_seed)}** seeds; within two weeks: "
              f"{detected2} of {len(by_seed)}",
              f"- false alarms in stable weeks: **{sum(alarms)} of {stable}** checks (mean {sum(alarms) / len(alarms):.1f}"
              f" per seed, worst {max(alarms)})",
              f"- wall time of the drift + monitoring pass: {seconds:.0f} s", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000, help="Customers per simulation.")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SCENARIOS), help="Generator seeds (not 42).")
    parser.add_argument("--weeks-after", type=int, default=2, help="Weeks run past the drift onset (max week 20).")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/segflow-drift-eval"),
                        help="Where the per-seed homes live (kept, so the drift pass can be re-run).")
    parser.add_argument("--phase", choices=["all", "pipeline", "drift", "score"], default="all",
                        help="pipeline: build homes only; drift: drift + monitoring on built homes; score: score the "
                        "stored rows; all: everything.")
    parser.add_argument("--out", type=Path, default=None, help="Append the markdown table to this file.")
    args = parser.parse_args()
    os.environ.setdefault("SEGFLOW_LOAD_MIN_FILE_AGE_SECONDS", "0")
    if 42 in args.seeds:
        raise SystemExit("seed 42 is the demo's: evaluate on other seeds")
    timing = args.workdir / "drift_seconds.json"
    seconds = json.loads(timing.read_text()) if timing.exists() else {}
    for seed in args.seeds:
        home = args.workdir / f"seed-{seed}" / "home"
        last_week = min(WEEKS, SCENARIOS.get(seed, ("", 10))[1] + args.weeks_after)
        if args.phase in ("all", "pipeline"):
            run_pipeline(home, seed, args.customers, last_week)
        if args.phase in ("all", "drift"):
            t0 = time.perf_counter()
            seed_rows = run_drift(home, seed, last_week)
            seconds[str(seed)] = time.perf_counter() - t0
            (args.workdir / f"drift_rows_{seed}.json").write_text(json.dumps(seed_rows, indent=1, default=str))
            timing.write_text(json.dumps(seconds))
    if args.phase in ("all", "drift", "score"):
        rows = []
        for seed in args.seeds:
            path = args.workdir / f"drift_rows_{seed}.json"
            if path.exists():
                rows += json.loads(path.read_text())
        if not rows:
            raise SystemExit("no drift rows yet: run --phase drift first")
        by_seed = score(rows)
        text = to_markdown(by_seed, args.customers, sum(seconds.get(str(s), 0.0) for s in by_seed))
        print(text)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(text)


if __name__ == "__main__":
    main()
