"""Run dbt (dbt-core + dbt-duckdb) against the warehouse.

dbt runs as a subprocess: it holds DuckDB's write lock only while it runs, its global state never leaks
into an Airflow worker, and a crash cannot take the caller down. It runs under segflow's warehouse lock and a
guard that takes it down with its parent (docs/architecture.md, "Locks, crashes and concurrent runs"). Artifacts (target/, logs) go to
``$SEGFLOW_HOME/artifacts/dbt`` so the source checkout stays clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from segflow import procguard, progress
from segflow.errors import BuildFailed, NotReady
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, duckdb_holder, is_lock_error
from segflow.warehouse_lock import hold, locked_error, warehouse_step


@dataclass
class BuildResult:
    command: str
    as_of: str | None
    elapsed_seconds: float
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    log_file: str = ""
    mode: str = ""
    reason: str = ""
    consent_redaction: dict = field(default_factory=dict)  # what segflow.jobs.consent removed after the build

    def as_dict(self) -> dict:
        out = {"command": self.command, "as_of": self.as_of, "elapsed_seconds": round(self.elapsed_seconds, 2),
               "statuses": self.statuses, "failures": self.failures, "log_file": self.log_file}
        if self.mode:
            out.update(mode=self.mode, reason=self.reason)
        if self.consent_redaction:
            out["consent_redaction"] = self.consent_redaction
        return out


def dbt_env(settings: Settings, as_of: datetime | None = None, run: dict[str, str] | None = None
            ) -> dict[str, str]:
    """The dbt child's environment. Values that change with every build (the as-of, the build's bounds) go in
    SEGFLOW_RUN_* variables rather than --vars, so dbt keeps its partial parse between builds. The PII key goes
    only in the variables :func:`segflow.privacy.dbt_secret_env` names (never in vars or on the command line);
    raises :class:`segflow.privacy.PiiKeyError` when this home may not use the key it has."""
    from segflow.privacy import dbt_secret_env

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SEGFLOW_RUN_", "DBT_ENV_SECRET_SEGFLOW_")) and k != "SEGFLOW_PII_KEY"}
    env["SEGFLOW_RUN_AS_OF"] = as_of.strftime("%Y-%m-%d %H:%M:%S") if as_of else ""
    env.update(run or {})
    env.update({
        "SEGFLOW_WAREHOUSE_PATH": str(settings.warehouse_path),
        "SEGFLOW_DBT_THREADS": str(settings.dbt_threads),
        "SEGFLOW_DUCKDB_MEMORY": settings.duckdb_memory,
        "SEGFLOW_DUCKDB_THREAD_COUNT": str(settings.duckdb_thread_count),
        "SEGFLOW_DUCKDB_TEMP_PATH": str(settings.duckdb_temp_path),
        "DBT_PROFILES_DIR": str(settings.dbt_project_dir),
        "DBT_PROJECT_DIR": str(settings.dbt_project_dir),
        "DBT_TARGET_PATH": str(settings.dbt_target_dir),
        "DBT_LOG_PATH": str(settings.dbt_log_dir),
        "PGTZ": "UTC",  # PostgreSQL target: a delivered time without an offset is UTC, as on DuckDB
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PARTIAL_PARSE": "true",
        "DBT_USE_COLORS": "false",
    })
    env.update(dbt_secret_env(settings, os.environ.get("PGOPTIONS", "")))
    return env


def dbt_vars(settings: Settings) -> dict:
    """The dbt vars that come from settings: the same from build to build, so dbt's partial parse holds."""
    return {
        "segflow__session_timeout_minutes": settings.session_timeout_minutes,
        "segflow__recent_window_days": settings.recent_window_days,
        "segflow__max_session_hours": settings.max_session_hours,
        "segflow__max_lateness_hours": settings.max_lateness_hours,
        "segflow__clock_skew_minutes": settings.clock_skew_minutes,
        "segflow__default_currency_minor_units": settings.default_currency_minor_units,
        "segflow__min_event_date": settings.min_event_date.isoformat(),
        "segflow__consent_default": settings.consent_policy == "collected_under_consent",
        "segflow__identity_max_links": settings.identity_max_links,
        "segflow__identity_max_component_size": settings.identity_max_component_size,
        "segflow__clv_calibration_end": (settings.clv_calibration_end.isoformat()
                                         if settings.clv_calibration_end else None),
    }


def _dbt_executable(settings: Settings) -> list[str]:
    if settings.dbt_executable:
        return [str(settings.dbt_executable)]
    candidate = Path(sys.executable).with_name("dbt")
    return [str(candidate)] if candidate.exists() else [sys.executable, "-m", "dbt.cli.main"]


def run_dbt(
    args: list[str], settings: Settings | None = None, as_of: datetime | None = None, check: bool = True,
    extra_vars: dict | None = None, run_env: dict[str, str] | None = None,
    on_event: Callable[[str], None] | None = None,
) -> BuildResult:
    """Run ``dbt <args>`` with segflow's vars; raises :class:`BuildFailed` (naming the failed nodes).

    dbt is a warehouse writer like any other: it runs under the warehouse lock (waiting for it like
    :func:`segflow.warehouse.connect`, with the same message), and under a guard (:mod:`segflow.procguard`) that
    takes it down, with anything it started, when this process dies or is stopped.

    With ``on_event``, dbt logs structured events (``--log-format json``) and each one (a JSON line) is handed to
    ``on_event`` as dbt writes it (Airflow's per-model tasks follow the build that way, docs/airflow.md); the log
    file still gets dbt's readable lines."""
    settings = settings or get_settings()
    settings.ensure_dirs()
    settings.dbt_log_dir.mkdir(parents=True, exist_ok=True)
    variables = {**dbt_vars(settings), **(extra_vars or {})}
    json_log = ["--log-format", "json"] if on_event is not None else []
    command = [*_dbt_executable(settings), *args, *json_log, "--vars", json.dumps(variables)]
    log_file = settings.dbt_log_dir / f"{args[0]}.out"
    env = dbt_env(settings, as_of, run_env)
    deadline = time.monotonic() + settings.lock_timeout_seconds
    with hold(settings, exclusive=True, step=f"dbt {args[0]}") as lock_fd:
        while True:
            if env.get("SEGFLOW_DBT_TARGET", "duckdb") == "duckdb":
                # a process that does not take segflow's lock (a notebook, a BI tool) may hold DuckDB's own
                # lock: wait for it here, as connect() does, rather than let dbt fail on it
                with connect(settings, timeout=max(0.0, deadline - time.monotonic())):
                    pass
            started = datetime.now()
            with open(log_file, "w") as out, progress.follow(log_file, progress.dbt_node_progress(args[0])):
                try:
                    returncode = procguard.run(command, cwd=settings.dbt_project_dir, env=env, stdout=out,
                                               stderr=subprocess.STDOUT,
                                               keep_fds=(lock_fd,) if lock_fd is not None else (),
                                               on_line=_event_tee(out, on_event) if on_event else None)
                except procguard.Stopped:
                    raise BuildFailed(f"`dbt {args[0]}` was stopped (the task was killed). Log: {log_file}"
                                      ) from None
            if returncode == 0 or not is_lock_error(text := log_file.read_text()):
                break
            # such a process took DuckDB's lock after our check: dbt failed while opening the file, before it
            # ran anything, so it is safe to wait and run it again, within the same time limit
            if time.monotonic() >= deadline:
                raise locked_error(settings, duckdb_holder(text))
            time.sleep(0.5)
    elapsed = (datetime.now() - started).total_seconds()
    result = BuildResult(command=" ".join(["dbt", *args]), as_of=as_of.isoformat() if as_of else None,
                         elapsed_seconds=elapsed, log_file=str(log_file))
    run_results = settings.dbt_target_dir / "run_results.json"
    if run_results.exists() and run_results.stat().st_mtime >= started.timestamp() - 1:
        data = json.loads(run_results.read_text())
        for node in data.get("results", []):
            status = node.get("status", "unknown")
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status in ("error", "fail"):
                result.failures.append({"node": node.get("unique_id"), "status": status,
                                        "message": (node.get("message") or "").strip()[:500]})
    if check and returncode != 0:
        text = log_file.read_text()
        if result.failures:
            detail = "; ".join(f"{f['node']}: {f['message']}" for f in result.failures[:5])
        else:
            tail = text.strip().splitlines()[-8:]
            detail = " | ".join(tail)
        raise BuildFailed(f"`{result.command}` failed ({detail}). Full log: {log_file}")
    return result


def _event_tee(out, on_event: Callable[[str], None]) -> Callable[[str], None]:
    """One line of dbt's JSON log: its readable message to the log file, the line itself to ``on_event``."""

    def handle(line: str) -> None:
        try:
            message = json.loads(line).get("info", {}).get("msg")
        except (ValueError, AttributeError):
            message = None
        out.write(f"{line if message is None else message}\n")
        out.flush()
        on_event(line)

    return handle


@warehouse_step("build")
def build(settings: Settings | None = None, as_of: datetime | None = None, full_refresh: bool = False,
          on_event: Callable[[str], None] | None = None) -> BuildResult:
    """``dbt build`` (seeds, models and data tests) as of ``as_of``: incremental since the last
    successful build where that gives the same tables as a full rebuild, else a full refresh (see
    :mod:`segflow.jobs.build_state`). ``on_event`` receives dbt's structured log lines as they come
    (:func:`run_dbt`)."""
    from segflow.ddl import ensure_schema
    from segflow.jobs import build_state
    from segflow.jobs.purge_pii import check_key_matches_purges
    from segflow.privacy import resolve_pii_key
    from segflow.warehouse import table_exists

    settings = settings or get_settings()
    key = resolve_pii_key(settings)  # before anything runs: the demo key is refused outside a demo home
    if not settings.warehouse_path.exists():
        raise NotReady(f"No warehouse at {settings.warehouse_path} yet: run `segflow load` first.")
    from segflow.sources.canonical import EVENT_STREAMS

    with connect(settings, read_only=True) as con:
        loaded = table_exists(con, "meta", "load_manifest") and con.execute(
            "select count(*) from meta.load_manifest").fetchone()[0] > 0
        events = loaded and sum(con.execute(f"select count(*) from raw.{s}").fetchone()[0] for s in EVENT_STREAMS)
    if not loaded:
        raise NotReady(f"Nothing loaded yet: put files in {settings.landing_dir}/<stream or source>/ and run "
                       "`segflow load` first (see `segflow load --help`).")
    if not events:
        raise NotReady("No events loaded yet (raw.events, raw.orders, raw.support_tickets and raw.email_events are "
                       "empty): segments are built from behavior, so load an event source with `segflow load` first.")
    with connect(settings) as con:
        ensure_schema(con)
        check_key_matches_purges(con, key)
        plan = build_state.plan(con, settings, _shaping_values(settings, key.key_id), as_of, full_refresh)
        build_state.record_start(con, plan, as_of)
    # unit tests check the SQL, not the data: they run in `make test` / CI, not in every production build
    # (dbt's own advice), so a build spends its time on the models and the data tests
    args = ["build", "--exclude-resource-type", "unit_test", *(["--full-refresh"] if plan.full_refresh else [])]
    try:
        result = run_dbt(args, settings, as_of, run_env=plan.run_env(), on_event=on_event)
    except BaseException:
        with connect(settings) as con:
            build_state.record_end(con, plan, "failed", None)
        _explain_empty_staging(settings)
        raise
    with connect(settings) as con:
        effective_as_of = con.execute("select as_of from intermediate.int_run_context").fetchall()[0][0]
        build_state.record_end(con, plan, "success", effective_as_of)
    result.mode = "full" if plan.full_refresh else "incremental"
    result.reason = plan.reason
    # a revocation reaches what earlier runs wrote outside dbt: feature snapshots, assignments, exports
    from segflow.jobs.consent import redact_revoked

    redaction = redact_revoked(settings)
    if redaction.customers:
        result.consent_redaction = redaction.as_dict()
    return result


def _shaping_values(settings: Settings, key_id: str) -> dict:
    """What the build fingerprint covers besides the project: the dbt vars and which PII key made the
    pseudonyms (its id, not the key; never passed to dbt): a new key means a full refresh, so no table mixes
    pseudonyms of two keys."""
    return {**dbt_vars(settings), "segflow_pii_key_id": key_id}


def _explain_empty_staging(settings: Settings) -> None:
    """When no event survived staging, say so (dbt's own failure is then a confusing downstream test)."""
    from segflow.warehouse import table_exists

    with connect(settings, read_only=True) as con:
        if not table_exists(con, "staging", "base_raw__events"):
            return
        staged = con.execute("select count(*) from staging.base_raw__events where quarantine_reason is null"
                             ).fetchall()[0][0]
        if staged:
            return
        reasons = con.execute("select quarantine_reason, count(*) from staging.base_raw__events "
                              "group by 1 order by 2 desc").fetchall()
    detail = ", ".join(f"{reason} {count}" for reason, count in reasons)
    raise BuildFailed(f"No event passed staging: every loaded event row was quarantined ({detail}). Check the "
                      "source's mapping with `segflow mapping check`, fix it and reload with `segflow load FILE "
                      "--mapping M --replace`; the rows are in staging.stg_raw__events_quarantine.")


@warehouse_step("docs")
def docs(settings: Settings | None = None) -> Path:
    """Generate dbt docs (lineage + catalog) as one static HTML file; returns its path."""
    from segflow.ddl import ensure_schema
    from segflow.jobs import build_state

    settings = settings or get_settings()
    run_env = None
    if settings.warehouse_path.exists():
        # dbt compiles every model for the docs: incremental ones as the next build would run them, which needs
        # that build's bounds (since the last successful build)
        from segflow.privacy import resolve_pii_key

        key_id = resolve_pii_key(settings).key_id
        with connect(settings) as con:
            ensure_schema(con)
            run_env = build_state.plan(con, settings, _shaping_values(settings, key_id), None, False).run_env()
    run_dbt(["docs", "generate", "--static"], settings, run_env=run_env)
    return settings.dbt_target_dir / "static_index.html"
