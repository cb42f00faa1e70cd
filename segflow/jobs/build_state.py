"""Build state: what the last successful build covered, and whether the next build can be incremental.

Every ``segflow build`` gets a sequence number and a row in ``meta.build_state``. The incremental dbt models
select what changed since the last *successful* build (rows stamped with a higher ``_build_seq``, loads with a
higher ``load_seq``, events received or occurring at or after its as-of). A build is a full refresh when
incremental results could differ from a full rebuild: when asked for, on the first build, after a build that
did not finish, when the as-of moves backwards, when the settings that shape the tables or the dbt project
changed, when a load the last build saw was replaced or removed, or when a person was erased since (an erasure
deletes rows under the incremental models; the aggregates must be recomputed without them). The reason is
recorded and printed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from segflow.settings import Settings


@dataclass(frozen=True)
class BuildPlan:
    build_seq: int
    full_refresh: bool
    reason: str
    since_build_seq: int | None
    since_as_of: datetime | None
    since_load_seq: int | None
    max_load_seq: int
    loads_count: int
    fingerprint: str

    def run_env(self) -> dict[str, str]:
        """The build's bounds for dbt, as SEGFLOW_RUN_* environment variables (see the run_var macro)."""
        env = {"SEGFLOW_RUN_BUILD_SEQ": str(self.build_seq)}
        if not self.full_refresh:
            env.update(SEGFLOW_RUN_SINCE_BUILD_SEQ=str(self.since_build_seq),
                       SEGFLOW_RUN_SINCE_AS_OF=str(self.since_as_of),
                       SEGFLOW_RUN_SINCE_LOAD_SEQ=str(self.since_load_seq))
        return env


def fingerprint(settings: Settings, variables: dict) -> str:
    """A hash of what shapes the tables: the dbt vars from settings (the per-build as-of and bounds travel as
    SEGFLOW_RUN_* variables, not vars) and every file of the dbt project."""
    digest = hashlib.sha256()
    digest.update(json.dumps(variables, sort_keys=True, default=str).encode())
    project = Path(settings.dbt_project_dir)
    for folder in ("models", "macros", "seeds", "data-tests"):
        for path in sorted((project / folder).rglob("*")):
            if path.is_file():
                digest.update(str(path.relative_to(project)).encode())
                digest.update(path.read_bytes())
    digest.update((project / "dbt_project.yml").read_bytes())
    return digest.hexdigest()


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def plan(con: duckdb.DuckDBPyConnection, settings: Settings, variables: dict, as_of: datetime | None,
         full_refresh: bool = False) -> BuildPlan:
    """Decide how the next build runs (reads meta.build_state and meta.load_manifest)."""
    max_load_seq, loads_count = con.execute(
        "select coalesce(max(load_seq), 0), count(*) from meta.load_manifest").fetchall()[0]
    build_seq = con.execute("select coalesce(max(build_seq), 0) + 1 from meta.build_state").fetchall()[0][0]
    last = con.execute(
        "select build_seq, as_of, max_load_seq, loads_count, fingerprint, status, started_at from meta.build_state "
        "order by build_seq desc limit 1").fetchall()
    print_ = fingerprint(settings, variables)
    reason = None
    if full_refresh:
        reason = "full refresh asked for"
    elif not last:
        reason = "first build"
    else:
        seq, last_as_of, last_max_load, last_loads, last_print, status, last_started = last[0]
        still_there = con.execute("select count(*) from meta.load_manifest where load_seq <= ?",
                                  [last_max_load]).fetchall()[0][0]
        if status != "success":
            reason = f"the previous build (#{seq}) did not finish ({status})"
        elif last_as_of is None:
            reason = f"the previous build (#{seq}) recorded no as-of"
        elif as_of is not None and as_of < last_as_of:
            reason = f"as of {as_of} is before the previous build's {last_as_of}"
        elif last_print != print_:
            reason = "the settings that shape the tables (SEGFLOW_*) or the dbt project changed"
        elif still_there != last_loads:
            reason = "a load the previous build used was replaced or removed"
        elif _erased_since(con, last_started):
            reason = f"a person was erased since the previous build (#{seq})"
    if reason:
        return BuildPlan(build_seq, True, reason, None, None, None, max_load_seq, loads_count, print_)
    seq, last_as_of, last_max_load = last[0][0], last[0][1], last[0][2]
    return BuildPlan(build_seq, False, f"incremental since build #{seq} (as of {last_as_of})", seq, last_as_of,
                     last_max_load, max_load_seq, loads_count, print_)


def _erased_since(con: duckdb.DuckDBPyConnection, started_at: datetime) -> bool:
    """An erasure (segflow.jobs.erase) finished after the last build started."""
    return bool(con.execute("select count(*) from meta.erasure_log where action = 'erase' and finished_at >= ?",
                            [started_at]).fetchall()[0][0])


def record_start(con: duckdb.DuckDBPyConnection, build: BuildPlan, as_of: datetime | None) -> None:
    con.execute("insert into meta.build_state values (?, ?, ?, ?, ?, ?, ?, 'running', ?, null)",
                [build.build_seq, as_of, "full" if build.full_refresh else "incremental", build.reason,
                 build.max_load_seq, build.loads_count, build.fingerprint, _utc_now()])


def record_end(con: duckdb.DuckDBPyConnection, build: BuildPlan, status: str, as_of: datetime | None) -> None:
    con.execute("update meta.build_state set status = ?, as_of = coalesce(?, as_of), finished_at = ? "
                "where build_seq = ?", [status, as_of, _utc_now(), build.build_seq])
