"""The scoped `unique_since_last_build` test: in an incremental build it checks only rows newer than the last
successful build's bound (among themselves and against older rows); in a full refresh it checks every row."""

from __future__ import annotations

import pytest

from segflow.errors import BuildFailed
from segflow.jobs.build import run_dbt
from segflow.warehouse import connect

SELECT = ["test", "--select", "int_events_sessionized,test_name:unique_since_last_build"]


def _bounds(con) -> dict[str, str]:
    seq, = con.execute("select max(_build_seq) from intermediate.int_events_sessionized").fetchone()
    load_seq, = con.execute("select max(_load_seq) from staging.stg_raw__events").fetchone()
    return {"SEGFLOW_RUN_SINCE_BUILD_SEQ": str(seq), "SEGFLOW_RUN_SINCE_LOAD_SEQ": str(load_seq),
            "SEGFLOW_RUN_SINCE_AS_OF": "2100-01-01 00:00:00"}


def _duplicate(con, build_seq_sql: str) -> None:
    """Copy one stored row, stamped with the given build sequence (older or newer than the bound)."""
    con.execute("insert into intermediate.int_events_sessionized select * replace ("
                f"{build_seq_sql} as _build_seq) from intermediate.int_events_sessionized "
                "order by event_id limit 1")


def _run(settings, env) -> str:
    try:
        run_dbt(SELECT, settings, run_env=env)
    except BuildFailed as failed:
        return f"failed: {failed}"
    return "passed"


@pytest.mark.slow
def test_scoped_unique_finds_new_duplicates_and_skips_old_rows(home_copy):
    with connect(home_copy) as con:
        env = _bounds(con)
        seq = int(env["SEGFLOW_RUN_SINCE_BUILD_SEQ"])
    assert _run(home_copy, env) == "passed"  # the built warehouse is unique

    # a duplicate written before the bound was checked by the build that wrote it: the scoped test skips it,
    # the full test (no bounds: a full refresh or dbt by hand) still finds it
    with connect(home_copy) as con:
        _duplicate(con, str(seq))
    assert _run(home_copy, env) == "passed"
    full = _run(home_copy, {})
    assert full.startswith("failed") and "unique_since_last_build" in full

    # a new row (this build's sequence) that repeats an older row's event id fails the scoped test
    with connect(home_copy) as con:
        con.execute(f"delete from intermediate.int_events_sessionized where _build_seq = {seq} and event_id = "
                    "(select min(event_id) from intermediate.int_events_sessionized)")
        _duplicate(con, str(seq + 1))
    assert "unique_since_last_build" in _run(home_copy, env)
