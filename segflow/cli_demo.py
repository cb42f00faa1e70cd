"""``segflow demo`` and ``segflow airflow``: the embedded Airflow and the demo that runs the DAGs through it."""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta

from segflow.errors import InputError, SegflowError


def _print(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_airflow(args) -> None:
    from segflow import airflow_local

    if args.action == "init":
        _print(airflow_local.init())
    elif args.action == "env":
        env = airflow_local.airflow_env()
        for key in sorted(k for k in env if k.startswith(("AIRFLOW", "SEGFLOW"))):
            print(f"export {key}={env[key]!r}")
    elif args.action == "ui":
        sys.exit(airflow_local.standalone())


def cmd_demo(args) -> None:
    from segflow import airflow_local
    from segflow.jobs.status import summary
    from segflow.jobs.status_format import format_summary
    from segflow.settings import get_settings
    from segflow.sources.generator import GeneratorConfig, generate

    if args.weeks < 2:
        raise InputError("--weeks must be at least 2: the demo segments the last two weeks")
    if args.customers < 100:
        raise InputError("--customers must be at least 100 for the demo's data gate and clustering")
    settings = get_settings()
    settings.ensure_dirs()
    started = time.monotonic()
    cfg = GeneratorConfig(customers=args.customers, days=7 * args.weeks, seed=args.seed,
                          drift_week=args.weeks - 1)
    marker = settings.truth_dir / "generation.json"
    wanted = json.dumps(cfg.__dict__, default=str, sort_keys=True)
    stamp = settings.truth_dir / ".config"
    if marker.exists() and stamp.exists() and stamp.read_text() == wanted:
        print(f"[demo] synthetic data already generated in {settings.landing_dir} (same config): reusing")
    else:
        print(f"[demo] generating {cfg.customers} customers x {cfg.days} days (seed {cfg.seed}, "
              f"drift from week {cfg.drift_week + 1}) into {settings.landing_dir}", flush=True)
        report = generate(cfg, settings.landing_dir, settings.truth_dir)
        stamp.write_text(wanted)
        print(f"[demo]   {report.events_delivered:,} event rows in {report.files} files "
              f"({report.duplicates} duplicates, {sum(report.malformed.values())} malformed, "
              f"{report.broken_lines} broken lines, {report.late_events} late)", flush=True)
    print(f"[demo] initialising Airflow in {settings.airflow_home} (SQLite, pool segflow_warehouse=1)", flush=True)
    airflow_local.init(settings)
    weeks = [cfg.start + timedelta(weeks=w) for w in range(args.weeks - 1, args.weeks + 1)]
    for week_end in weeks:
        for dag_id in ("segflow_elt", "segflow_segments_weekly"):
            t0 = time.monotonic()
            print(f"[demo] airflow dags test {dag_id} {week_end} ...", end=" ", flush=True)
            outcome = airflow_local.test_dag(dag_id, week_end.isoformat(), settings)
            print(f"{outcome.state} ({time.monotonic() - t0:.0f} s)", flush=True)
            if outcome.state != "success":
                raise SegflowError(f"DAG {dag_id} for {week_end} ended {outcome.state}. Log: {outcome.log}")
    text = format_summary(summary(settings))
    report = settings.artifacts_dir / "reports" / f"summary_{weeks[-1].isoformat()}.txt"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text.lstrip() + "\n")
    print(text)
    print(f"\n[demo] done in {time.monotonic() - started:.0f} s")
    print(f"""
Where to look next
  report        {report}
  data quality  {(settings.artifacts_dir / 'data_docs' / 'index.html').as_uri()}  (GX Data Docs, works offline)
                {settings.artifacts_dir / 'data_quality'}  (one JSON per suite and week; history: meta.dq_history)
  warehouse     {settings.warehouse_path}
                (python: duckdb.connect(path, read_only=True); schemas raw, meta, staging, intermediate, marts, ml)
  exports       {settings.exports_dir / 'segments'}
  airflow UI    make airflow   -> http://127.0.0.1:8080  user admin, password {airflow_local.admin_password(settings)}
                DAGs segflow_elt and segflow_segments_weekly show the demo's runs (Grid view, task logs)
  dbt docs      make docs      -> lineage graph of staging -> intermediate -> marts
  status        .venv/bin/segflow status""")
