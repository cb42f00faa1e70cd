"""When a build may be incremental and when segflow rebuilds everything (meta.build_state decisions)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from segflow.ddl import ensure_schema
from segflow.jobs import build_state
from segflow.jobs.build import dbt_vars
from segflow.settings import Settings

DAY = datetime(2025, 9, 2)
LATER = datetime(2025, 9, 3)


@pytest.fixture()
def con():
    con = duckdb.connect()
    ensure_schema(con)
    for seq in (1, 2):
        con.execute("insert into meta.load_manifest (load_id, load_seq, source, stream, file_name, file_path, "
                    "checksum, file_format, rows_in_file, rows_loaded, rows_rejected, loaded_at) values "
                    "(?, ?, 'events', 'events', 'f', 'f', ?, 'csv', 1, 1, 0, now())", [f"l{seq}", seq, f"c{seq}"])
    yield con
    con.close()


def _plan(con, settings, as_of=LATER, full_refresh=False):
    return build_state.plan(con, settings, dbt_vars(settings), as_of, full_refresh)


def _succeed(con, settings, as_of=DAY):
    plan = _plan(con, settings, as_of)
    build_state.record_start(con, plan, as_of)
    build_state.record_end(con, plan, "success", as_of)
    return plan


def test_first_build_is_full_then_incremental_since_the_last_success(con, tmp_path):
    settings = Settings(home=tmp_path)
    first = _succeed(con, settings)
    assert first.full_refresh and first.reason == "first build" and first.build_seq == 1
    nxt = _plan(con, settings)
    assert not nxt.full_refresh and nxt.build_seq == 2
    assert (nxt.since_build_seq, nxt.since_as_of, nxt.since_load_seq) == (1, DAY, 2)
    assert nxt.run_env() == {"SEGFLOW_RUN_BUILD_SEQ": "2", "SEGFLOW_RUN_SINCE_BUILD_SEQ": "1",
                             "SEGFLOW_RUN_SINCE_AS_OF": "2025-09-02 00:00:00", "SEGFLOW_RUN_SINCE_LOAD_SEQ": "2"}


@pytest.mark.parametrize("change, reason", [
    ("asked", "full refresh asked for"),
    ("failed", "did not finish (failed)"),
    ("backwards", "is before the previous build's"),
    ("setting", "settings that shape the tables"),
    ("replaced", "was replaced or removed"),
])
def test_what_forces_a_full_rebuild(con, tmp_path, change, reason):
    settings = Settings(home=tmp_path)
    _succeed(con, settings)
    as_of, full_refresh = LATER, False
    if change == "asked":
        full_refresh = True
    elif change == "failed":
        failed = _plan(con, settings)
        build_state.record_start(con, failed, LATER)
        build_state.record_end(con, failed, "failed", None)
    elif change == "backwards":
        as_of = datetime(2025, 9, 1)
    elif change == "setting":
        settings = Settings(home=tmp_path, session_timeout_minutes=45)
    elif change == "replaced":
        # `segflow load --replace` removes the earlier load and writes it again with a new sequence number
        con.execute("update meta.load_manifest set load_seq = 3 where load_id = 'l1'")
    plan = _plan(con, settings, as_of, full_refresh)
    assert plan.full_refresh
    assert reason in plan.reason
    assert "SEGFLOW_RUN_SINCE_BUILD_SEQ" not in plan.run_env()


def test_a_new_load_alone_stays_incremental(con, tmp_path):
    settings = Settings(home=tmp_path)
    _succeed(con, settings)
    con.execute("insert into meta.load_manifest (load_id, load_seq, source, stream, file_name, file_path, checksum, "
                "file_format, rows_in_file, rows_loaded, rows_rejected, loaded_at) values "
                "('l3', 3, 'events', 'events', 'f', 'f', 'c3', 'csv', 1, 1, 0, now())")
    plan = _plan(con, settings)
    assert not plan.full_refresh and plan.since_load_seq == 2 and plan.max_load_seq == 3
