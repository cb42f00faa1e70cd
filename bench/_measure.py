"""Helpers of bench/scale.py: run one step in a fresh interpreter and measure it, and the steps themselves.

The parent (bench/scale.py) imports only the light top of this module. A step runs as
``python bench/_measure.py STEP PARAMS_JSON RESULT_JSON``: it imports what it needs (segflow from this
checkout), does its work and writes what it found (row counts, dbt's own timings) to RESULT_JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SESSION_GAP_MINUTES = 30
SESSION_NODE = "model.segflow.int_events_sessionized"


class StepFailed(Exception):
    def __init__(self, step: str, code: int, log: Path) -> None:
        super().__init__(f"step {step!r} failed (exit code {code}); log: {log}")
        self.step, self.code, self.log = step, code, log


def measure(step: str, name: str, params: dict, log: Path, cwd: Path) -> tuple[float, float, dict]:
    """Run ``step`` in a fresh interpreter: (wall seconds, peak RSS in MB of its process tree, its result).

    Peak RSS is ru_maxrss from os.wait4: the largest single process of the tree (dbt runs as a child)."""
    result = log.with_suffix(".json")
    result.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGFLOW_")}
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, step, json.dumps(params), str(result)], cwd=cwd,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise StepFailed(name, code, log)
    return elapsed, usage.ru_maxrss / 1024, json.loads(result.read_text()) if result.exists() else {}


def machine() -> str:
    import platform
    from importlib.metadata import version

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(f"{p} {version(p)}" for p in ("duckdb", "dbt-core", "dbt-duckdb", "pandas", "pyarrow"))
    return (f"{os.cpu_count()} cores ({cpu}), {ram:.1f} GiB RAM, Python {platform.python_version()}, "
            f"{versions}")


# --- the steps (child side) -------------------------------------------------------------------------------

def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _settings(p: dict):
    import segflow
    from segflow.settings import Settings

    if not Path(segflow.__file__).is_relative_to(ROOT):
        raise SystemExit(f"segflow imported from {segflow.__file__}, not from {ROOT}")
    limit = {"duckdb_memory_limit": p["memory_limit"]} if p.get("memory_limit") else {}
    return Settings(home=Path(p["home"]), **limit)


def _as_of(p: dict):
    from datetime import datetime

    return datetime.fromisoformat(p["as_of"])


def step_generate(p: dict) -> dict:
    from datetime import date

    from segflow.sources.generator import GeneratorConfig, generate

    cfg = GeneratorConfig(customers=p["customers"], days=p["days"], start=date.fromisoformat(p["start"]))
    report = generate(cfg, Path(p["landing"]), Path(p["truth"]))
    return {"events": report.events_delivered, "customers": report.customers, "files": report.files}


def step_load(p: dict) -> dict:
    from segflow.jobs.load import load_landing

    report = load_landing(_settings(p))
    failed = [f"{f.file}: {f.reason}" for f in report.files if f.status in ("rejected", "ignored")]
    streams: dict[str, int] = {}
    for f in report.files:
        for stream, rows in f.streams.items():
            streams[stream] = streams.get(stream, 0) + rows
    return {"files": report.count("loaded"), "skipped": report.count("skipped"), "streams": streams,
            "rejected_rows": report.rows_rejected, "failed_files": failed}


def step_build(p: dict) -> dict:
    from segflow.jobs.build import build

    settings = _settings(p)
    kwargs = {"full_refresh": True} if p.get("full_refresh") else {}
    result = build(settings, as_of=_as_of(p), **kwargs)
    manifest = json.loads((settings.dbt_target_dir / "manifest.json").read_text())
    incremental = sorted(n["name"] for n in manifest["nodes"].values()
                         if n["resource_type"] == "model" and n["config"].get("materialized") == "incremental")
    return {"statuses": result.statuses, "dbt_seconds": result.elapsed_seconds, "incremental_models": incremental}


def step_validate(p: dict) -> dict:
    from segflow.jobs.validate import validate

    result = validate(_settings(p), as_of=_as_of(p), raise_on_failure=False)
    return {"success": result.success,
            "failures": {n: s["failures"] for n, s in result.suites.items() if not s["success"]}}


def step_export(p: dict) -> dict:
    """The sessionization input, once, from the warehouse (read-only), plus counts for the report."""
    import duckdb

    settings = _settings(p)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    con.execute("copy (select person_key, event_id, occurred_at from intermediate.int_events_stitched "
                f"where is_interactive) to {_literal(p['parquet'])} (format parquet)")
    rows, persons = con.execute(f"select count(*), count(distinct person_key) from {_literal(p['parquet'])}").fetchone()
    sessions = con.execute("select count(distinct session_id) from intermediate.int_events_sessionized").fetchone()[0]
    raw = con.execute("select sum(rows_in_file) from meta.load_manifest where source = 'events'").fetchone()[0]
    con.close()
    return {"rows": rows, "persons": persons, "sessions": sessions, "raw_event_rows": raw,
            "warehouse_mb": settings.warehouse_path.stat().st_size / 1e6}


def step_sess_segflow(p: dict) -> dict:
    from segflow.jobs.build import run_dbt

    settings = _settings(p)
    run_dbt(["run", "--select", "int_events_sessionized", "--full-refresh"], settings, _as_of(p))
    results = json.loads((settings.dbt_target_dir / "run_results.json").read_text())["results"]
    node = next(r for r in results if r["unique_id"] == SESSION_NODE)
    return {"work": node["execution_time"]}


FLOOR_SQL = f"""
create table sessionized as
with flagged as (
    select person_key, event_id, occurred_at,
        coalesce(occurred_at > (lag(occurred_at) over w) + interval {SESSION_GAP_MINUTES} minute, true) as is_start
    from read_parquet({{parquet}})
    window w as (partition by person_key order by occurred_at, event_id)
)
select person_key, event_id, occurred_at,
    sum(is_start::int) over w as session_number,
    md5(coalesce(person_key, '_null_') || '|'
        || coalesce(last_value(case when is_start then event_id end ignore nulls) over w, '_null_')) as session_id
from flagged
window w as (partition by person_key order by occurred_at, event_id rows between unbounded preceding and current row)
"""


def step_sess_duckdb(p: dict) -> dict:
    import duckdb

    out = Path(p["out"])
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    con = duckdb.connect(str(out))
    con.execute(FLOOR_SQL.format(parquet=_literal(p["parquet"])))
    con.close()
    return {"work": time.perf_counter() - t0}


def step_sess_pandas(p: dict) -> dict:
    from hashlib import md5

    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_parquet(p["parquet"])
    df = df.sort_values(["person_key", "occurred_at", "event_id"], ignore_index=True)
    gap = df.groupby("person_key", sort=False)["occurred_at"].diff()
    is_start = gap.isna() | (gap > pd.Timedelta(minutes=SESSION_GAP_MINUTES))
    df["session_number"] = is_start.astype("int64").groupby(df["person_key"], sort=False).cumsum()
    # the session's first event is its start (rows are sorted), so hash once per session and fill forward
    keys = df["person_key"][is_start] + "|" + df["event_id"][is_start]
    ids = pd.Series([md5(k.encode()).hexdigest() for k in keys], index=keys.index)
    df["session_id"] = ids.reindex(df.index).ffill()
    df.to_parquet(p["out"], index=False)
    return {"work": time.perf_counter() - t0}


def step_check(p: dict) -> dict:
    """Events whose session id differs from segflow's (floor and pandas), joined on event_id."""
    import duckdb

    settings = _settings(p)
    con = duckdb.connect()
    con.execute(f"attach {_literal(str(settings.warehouse_path))} as wh (read_only)")
    con.execute(f"attach {_literal(p['floor'])} as fl (read_only)")
    out = {}
    for name, rel in (("floor", "fl.sessionized"), ("pandas", f"read_parquet({_literal(p['pandas'])})")):
        out[name] = con.execute(
            f"select count(*) filter (where o.session_id is distinct from s.session_id), count(*) "
            f"from wh.intermediate.int_events_sessionized s full join {rel} o using (event_id)").fetchone()
    return out


# identifiers made distinct in each copy, so K copies are K times the customers, devices, events and orders
_COPY_IDS = ("event_id", "user_id", "anonymous_id", "email", "order_id", "original_order_id", "ticket_id",
             "customer_id", "identity_id", "previous_id")


def step_replicate(p: dict) -> dict:
    """Copy every original load (load_id without '~') that has no copies yet ``copies - 1`` times inside the
    warehouse, with distinct identifiers and its own manifest rows (load_seq after the originals): replicated
    generated history, for the 100M-event measurement."""
    import duckdb

    from segflow.sources import canonical

    settings = _settings(p)
    con = duckdb.connect(str(settings.warehouse_path))
    loads = [r[0] for r in con.execute(
        "select load_id from meta.load_manifest where load_id not like '%~%' and load_id || '~1' not in "
        "(select load_id from meta.load_manifest) order by load_seq").fetchall()]
    rows = 0
    con.execute("begin transaction")
    for k in range(1, p["copies"]):
        suffix = f"~{k}"
        for stream in canonical.STREAMS:
            cols = canonical.columns(stream)
            replace = ", ".join(f"case when {c} is null then null else {c} || '{suffix}' end as {c}"
                                for c in cols if c in _COPY_IDS)
            load_list = ", ".join(_literal(x) for x in loads) or "null"
            rows += con.execute(
                f"insert into raw.{stream} select * replace ({replace}, _load_id || '{suffix}' as _load_id) "
                f"from raw.{stream} where _load_id in ({load_list})").fetchall()[0][0]
        con.execute(
            "insert into meta.load_manifest select * replace (load_id || ? as load_id, checksum || ? as checksum, "
            "(select max(load_seq) from meta.load_manifest) + row_number() over (order by load_seq) as load_seq) "
            f"from meta.load_manifest where load_id in ({', '.join(_literal(x) for x in loads) or 'null'})",
            [suffix, suffix])
        con.execute(
            "insert into meta.load_outputs select load_id || ? as load_id, stream, rows_written "
            f"from meta.load_outputs where load_id in ({', '.join(_literal(x) for x in loads) or 'null'})", [suffix])
    con.execute("commit")
    events = sum(con.execute(f"select count(*) from raw.{s}").fetchall()[0][0] for s in canonical.EVENT_STREAMS)
    con.close()
    return {"loads": len(loads), "rows_added": rows, "event_rows": events}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # this checkout's segflow, not the one installed in the venv
    step, params, result_path = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    found = globals()[f"step_{step}"](params)
    result_path.write_text(json.dumps(found, default=str))
