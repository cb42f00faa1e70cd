"""``segflow demo`` and ``segflow airflow``: the embedded Airflow, and the demo that runs the DAGs through its
scheduler (backfills of segflow_elt, asset-triggered runs of segflow_segments_weekly)."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import date, timedelta

from segflow.cli_types import count, iso_date
from segflow.errors import SegflowError

ELT, WEEKLY = "segflow_elt", "segflow_segments_weekly"

DEMO_HELP = """\
Generate synthetic data (--weeks whole weeks ending at the last week close before --until, default today),
start the embedded Airflow (api-server, scheduler, dag-processor, triggerer; their logs go to
$SEGFLOW_HOME/artifacts/airflow/services/) and run the DAGs through the scheduler: a backfill of segflow_elt
for the day that closes each of the last two weeks, each followed by the run of segflow_segments_weekly that
the week's asset triggers; segflow_elt's scheduled run for today finds no delivery for its day and ends green
with load_raw skipped ("no new data"). Then stop Airflow and print a summary. The UI (`segflow airflow ui`)
shows the runs with their real task logs and durations.

The demo data moves with the calendar: run again in the same week and it reuses the data (nothing is loaded
twice); in a later week, or with other options, the demo's earlier state in SEGFLOW_HOME is replaced. Both
DAGs are left paused; unpaused, every scheduled run of segflow_elt ends green ("no new data") until new files
land. See docs/demo.md.
"""


def airflow_args(p: argparse.ArgumentParser) -> None:
    p.description = ("init: create the metadata DB, the warehouse pool and the login. env: print the AIRFLOW_* "
                     "variables to use the airflow CLI on this home. ui: start Airflow quietly (logs to "
                     "$SEGFLOW_HOME/artifacts/airflow/services/) and print the URL and login; Ctrl-C stops it.")
    p.add_argument("action", choices=["init", "env", "ui"], help="init | env | ui (see above)")
    p.set_defaults(func=cmd_airflow)


def demo_args(p: argparse.ArgumentParser) -> None:
    p.description = DEMO_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--customers", type=count(100), default=2000,
                   help="synthetic customers (at least 100, for the data gate and the clustering; default 2000)")
    p.add_argument("--weeks", type=count(2), default=9,
                   help="weeks of history, at least 2; the last two are segmented (default 9)")
    p.add_argument("--seed", type=int, default=42, help="random seed of the generator (default 42)")
    p.add_argument("--until", type=iso_date, default=None, metavar="DATE",
                   help="today, for the demo (default: the real today): the data ends at the last week close before it")
    p.set_defaults(func=cmd_demo)


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
        _airflow_ui()


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both end the command through its cleanup (which stops Airflow's components); SIGINT is
    restored too, since a command started with `&` from a script inherits it ignored."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def _airflow_ui() -> None:
    from segflow import airflow_local
    from segflow.airflow_services import running
    from segflow.settings import get_settings

    settings = get_settings()
    _stop_on_signals()
    print(f"starting Airflow in {settings.airflow_home} ...", flush=True)
    airflow_local.init(settings)
    with running(settings, wait=False) as services:
        services.wait_ready()
        print(f"""Airflow UI   {services.base_url}
  login      user {airflow_local.ADMIN_USER}, password {airflow_local.admin_password(settings)}
  logs       {services.log_dir}/<component>.log (api-server, scheduler, dag-processor, triggerer);
             task logs in {settings.airflow_home / 'logs'}
Ctrl-C stops it.""", flush=True)
        try:
            while True:
                services.check_alive()
                time.sleep(2)
        except KeyboardInterrupt:
            print("\nstopping Airflow ...", flush=True)


def demo_dates(weeks: int, until: date, week_start_weekday: int) -> tuple[date, int, list[date]]:
    """(first day, days of data, the two week closes the demo runs): whole weeks ending at the last week close
    strictly before ``until``, so the scheduled run of ``until`` (and every later one) finds no delivery for its
    day and ends green with "no new data"."""
    last_close = until - timedelta(days=(until.weekday() - week_start_weekday - 1) % 7 + 1)
    start = last_close - timedelta(weeks=weeks)
    return start, (last_close - start).days, [last_close - timedelta(weeks=1), last_close]


def _reset_demo_home(settings) -> None:
    """Remove the demo's earlier state (its data no longer matches the calendar); the Airflow login stays."""
    keep = settings.airflow_home / "passwords.json"
    for entry in settings.home.iterdir():
        if entry == settings.airflow_home:
            for inner in entry.iterdir():
                if inner != keep:
                    shutil.rmtree(inner) if inner.is_dir() else inner.unlink()
        elif entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _generate(args, settings, start: date, days: int):
    from segflow import progress
    from segflow.sources.generator import GeneratorConfig, generate

    cfg = GeneratorConfig(customers=args.customers, days=days, seed=args.seed, start=start,
                          drift_week=args.weeks - 1)
    wanted = json.dumps(cfg.__dict__, default=str, sort_keys=True)
    stamp = settings.truth_dir / ".config"
    if stamp.exists() and (settings.truth_dir / "generation.json").exists() and stamp.read_text() == wanted:
        print(f"[demo] demo data already generated in {settings.landing_dir} (same days and options): reusing")
        return cfg
    if stamp.exists():
        print(f"[demo] the demo data in {settings.home} is for other days or options: starting the demo afresh",
              flush=True)
        _reset_demo_home(settings)
        settings.ensure_dirs()
    print(f"[demo] generating {cfg.customers} customers x {cfg.days} days ({start} to "
          f"{start + timedelta(days=days - 1)}, seed {cfg.seed}, drift from week {cfg.drift_week + 1}) into "
          f"{settings.landing_dir}", flush=True)
    with progress.reporting():
        report = generate(cfg, settings.landing_dir, settings.truth_dir)
    stamp.write_text(wanted)
    print(f"[demo]   {report.events_delivered:,} event rows in {report.files} files "
          f"({report.duplicates} duplicates, {sum(report.malformed.values())} malformed, "
          f"{report.broken_lines} broken lines, {report.late_events} late)", flush=True)
    return cfg


def _run_week(api, services, settings, close: date) -> None:
    """Backfill segflow_elt for the day closing the week, then wait for the weekly run its asset triggers."""
    from segflow.airflow_api import iso_utc, run_seconds

    print(f"[demo] {ELT}: backfill {close} ...", end=" ", flush=True)
    backfill = api.backfill(ELT, close, close)
    day = f"{close.isoformat()}T00:00:00Z"  # the run's data_interval_end: its as-of and its run id
    elt_run, = api.wait_for_runs(ELT, 1, settings.demo_run_timeout_seconds, services.check_alive,
                                 run_after_gte=day, run_after_lte=day, run_type="backfill")
    print(f"{elt_run['state']} in {run_seconds(elt_run):.0f} s (run {elt_run['dag_run_id']})", flush=True)
    if elt_run["state"] != "success":
        raise SegflowError(f"{ELT} for {close} ended {elt_run['state']}: see its task logs in the UI "
                           f"(`segflow airflow ui`) or under {settings.airflow_home / 'logs'}")
    print(f"[demo] {WEEKLY}: run triggered by the week's asset ...", end=" ", flush=True)
    since = iso_utc(elt_run["start_date"]).isoformat()
    runs = api.wait_for_runs(WEEKLY, 1, settings.demo_run_timeout_seconds, services.check_alive,
                             run_after_gte=since)
    states = "/".join(sorted({r["state"] for r in runs}))
    print(f"{states} in {max(run_seconds(r) for r in runs):.0f} s (run {runs[0]['dag_run_id']})", flush=True)
    if states != "success":
        raise SegflowError(f"{WEEKLY} after the {close} week close ended {states}: see its task logs in the UI "
                           f"(`segflow airflow ui`) or under {settings.airflow_home / 'logs'}")
    api.wait_for_backfill(backfill["id"], settings.demo_run_timeout_seconds, services.check_alive)


def _scheduled_run(api, services, settings) -> None:
    from segflow.airflow_api import run_seconds

    print(f"[demo] {ELT}: today's scheduled run ...", end=" ", flush=True)
    from datetime import UTC, datetime

    today = f"{datetime.now(UTC).date().isoformat()}T00:00:00Z"  # the scheduler's run for today, not an earlier one
    run = api.wait_for_runs(ELT, 1, settings.demo_run_timeout_seconds, services.check_alive, run_type="scheduled",
                            run_after_gte=today)[0]
    skipped = {ti["task_id"] for ti in api.task_instances(ELT, run["dag_run_id"]) if ti["state"] == "skipped"}
    outcome = "no new data (load_raw skipped)" if "load_raw" in skipped else "with data"
    print(f"{run['state']}, {outcome} in {run_seconds(run):.0f} s (run {run['dag_run_id']})", flush=True)
    if run["state"] != "success":
        raise SegflowError(f"{ELT}'s scheduled run {run['dag_run_id']} ended {run['state']}: see its task logs")


def cmd_demo(args) -> None:
    from segflow import airflow_local
    from segflow.airflow_api import AirflowApi
    from segflow.airflow_services import running
    from segflow.settings import get_settings

    settings = get_settings()
    settings.ensure_dirs()
    _stop_on_signals()
    started = time.monotonic()
    start, days, closes = demo_dates(args.weeks, args.until or date.today(), settings.week_start_weekday)
    print(f"[demo] initialising Airflow in {settings.airflow_home} (SQLite, pool segflow_warehouse=1)", flush=True)
    if (settings.truth_dir / ".config").exists():
        _generate(args, settings, start, days)  # a reset must come before Airflow starts on this home
    airflow_local.init(settings)
    with running(settings, wait=False) as services:
        print(f"[demo] Airflow starting on {services.base_url} (logs: {services.log_dir})", flush=True)
        if not (settings.truth_dir / ".config").exists():
            _generate(args, settings, start, days)  # while Airflow starts
        services.wait_ready()
        api = AirflowApi(services.base_url, airflow_local.ADMIN_USER, airflow_local.admin_password(settings))
        api.wait_for_dags([ELT, WEEKLY], settings.airflow_start_timeout_seconds, services.check_alive)
        # the scheduler runs only unpaused DAGs, backfills included. Unpaused, segflow_elt also gets its scheduled
        # run for today: its day has no delivery (the data ends at the last week close), so it ends green with
        # load_raw skipped ("no new data"), just as every scheduled run after the demo will.
        api.cancel_unfinished_backfills(ELT)  # left by an interrupted demo
        api.set_paused(WEEKLY, False)  # the week's asset event triggers it, as in production
        api.set_paused(ELT, False)
        try:
            for close in closes:
                _run_week(api, services, settings, close)
            _scheduled_run(api, services, settings)
        finally:
            api.set_paused(ELT, True)
            api.set_paused(WEEKLY, True)
        print("[demo] stopping Airflow", flush=True)
    _summary(settings, closes[-1], started)


def _summary(settings, last_close: date, started: float) -> None:
    from segflow import airflow_local
    from segflow.jobs.status import summary
    from segflow.jobs.status_format import format_summary

    text = format_summary(summary(settings))
    report = settings.artifacts_dir / "reports" / f"summary_{last_close.isoformat()}.txt"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text.lstrip() + "\n")
    print(text)
    print(f"\n[demo] done in {time.monotonic() - started:.0f} s")
    port = airflow_local.airflow_env(settings)["AIRFLOW__API__PORT"]
    print(f"""
Where to look next
  report        {report}
  data quality  {(settings.artifacts_dir / 'data_docs' / 'index.html').as_uri()}  (GX Data Docs, works offline)
                {settings.artifacts_dir / 'data_quality'}  (one JSON per suite and week; history: meta.dq_history)
  warehouse     {settings.warehouse_path}
                (python: duckdb.connect(path, read_only=True); schemas raw, meta, staging, intermediate, marts, ml)
  exports       {settings.exports_dir / 'segments'}
  airflow UI    make airflow   -> http://127.0.0.1:{port}  user admin, password {airflow_local.admin_password(settings)}
                DAGs segflow_elt (backfill runs) and segflow_segments_weekly (asset-triggered runs): Grid view,
                task logs. Both are paused: unpause segflow_elt to let it run daily from today.
  dbt docs      make docs      -> lineage graph of staging -> intermediate -> marts
  status        .venv/bin/segflow status""")

