"""dbt-duckdb builds the real project on generated data; its tests, unit tests and accounting hold."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest
from tests_support import table_fingerprint, week_end

from segflow.errors import BuildFailed
from segflow.jobs.build import build, run_dbt
from segflow.warehouse import connect


def test_build_succeeds_with_data_tests(built_home):
    result = built_home._build
    assert result.failures == []
    assert result.statuses.get("error", 0) == 0 and result.statuses.get("fail", 0) == 0
    assert result.statuses.get("pass", 0) >= 30 and result.statuses.get("success", 0) >= 14


def test_unit_tests_pass(home_copy):
    """The dbt unit tests (sessionization, deliveries, stitching, ...) run here, not in production builds."""
    result = run_dbt(["test", "--select", "test_type:unit"], home_copy)
    run_results = json.loads((home_copy.dbt_target_dir / "run_results.json").read_text())
    kinds = Counter(r["unique_id"].split(".")[0] for r in run_results["results"])
    assert set(kinds) <= {"unit_test", "operation"} and kinds["unit_test"] >= 6  # operation: the on-run-start hook
    assert result.failures == [] and result.statuses["pass"] == kinds["unit_test"]


def test_quarantine_reasons_match_injected_faults(built_home):
    injected = built_home._generation.malformed
    with connect(built_home, read_only=True) as con:
        found = dict(con.execute(
            "select quarantine_reason, count(*) from staging.stg_raw__events_quarantine group by 1").fetchall())
    assert found == injected


def test_every_row_is_loaded_or_quarantined(built_home):
    with connect(built_home, read_only=True) as con:
        raw, = con.execute("select count(*) from raw.events").fetchone()
        staged, = con.execute("select count(*) from staging.stg_raw__events").fetchone()
        quarantined, = con.execute("select count(*) from staging.stg_raw__events_quarantine").fetchone()
        duplicates, = con.execute("select count(*) from staging.stg_raw__events_duplicates").fetchone()
        rejected, in_files = con.execute("select sum(rows_rejected), sum(rows_in_file) from meta.load_manifest "
                                         "where source = 'events'").fetchone()
        unbalanced, = con.execute("select count(*) from marts.fct_load_audit where not is_balanced").fetchone()
    assert raw == staged + quarantined + duplicates
    # the generator's report counts what it wrote, independently of the loader and dbt
    generation = built_home._generation
    assert duplicates == generation.duplicates
    assert in_files == raw + rejected
    assert in_files == generation.events_delivered
    assert unbalanced == 0


def test_dedup_keeps_one_row_per_event_and_respects_as_of(built_home):
    as_of = week_end(4)
    with connect(built_home, read_only=True) as con:
        deduped, distinct_ids, late = con.execute(
            "select count(*), count(distinct event_id), count(*) filter (where received_at >= ?) "
            "from intermediate.int_events_deduplicated", [as_of]).fetchone()
        expected, = con.execute(
            "select count(distinct event_id) from staging.stg_raw__events where received_at < ?", [as_of]).fetchone()
        raw_dupes, = con.execute(
            "select count(*) - count(distinct event_id) from raw.events where event_id is not null").fetchone()
        dropped, = con.execute("select count(*) from staging.stg_raw__events_duplicates").fetchone()
    assert deduped == distinct_ids == expected
    assert late == 0
    assert raw_dupes > 0, "the generator injects duplicate deliveries; raw must still contain them"
    assert dropped == raw_dupes


def test_sessions_follow_the_inactivity_timeout(built_home):
    """Inside a session no gap exceeds 30 min; between a person's consecutive sessions every gap does."""
    with connect(built_home, read_only=True) as con:
        inside, = con.execute("""
            select count(*) from (
                select occurred_at - lag(occurred_at) over (partition by session_id order by occurred_at, event_id) as gap
                from intermediate.int_events_sessionized
            ) where gap > interval 30 minute""").fetchone()
        between, total = con.execute("""
            select count(*) filter (where gap <= interval 30 minute), count(*) from (
                select started_at - lag(ended_at) over (partition by person_key order by started_at) as gap
                from marts.fct_sessions
            ) where gap is not null""").fetchone()
    assert inside == 0
    assert total > 100
    assert between == 0


def test_stitching_attributes_anonymous_events(built_home):
    with connect(built_home, read_only=True) as con:
        stitched, pre_login = con.execute(
            "select count(*) filter (where is_stitched), "
            "count(*) filter (where d.user_id is null and d.anonymous_id is not null) "
            "from intermediate.int_events_deduplicated d join intermediate.int_events_stitched s using (event_id)"
        ).fetchone()
    assert pre_login > 0
    # devices that log in later: their earlier anonymous events are attributed retroactively
    assert 0 < stitched <= pre_login


def test_customer_features_exclude_opted_out_and_cover_the_rest(built_home):
    with connect(built_home, read_only=True) as con:
        opted_out_in_features, = con.execute(
            "select count(*) from marts.customer_features f join marts.dim_customers c using (customer_id) "
            "where not c.has_analytics_consent").fetchone()
        consenting, features, as_of_dates = con.execute(
            "select (select count(*) from marts.dim_customers where has_analytics_consent), "
            "(select count(*) from marts.customer_features), "
            "(select count(distinct as_of) from marts.customer_features)").fetchone()
    assert opted_out_in_features == 0
    assert features == consenting > 0
    assert as_of_dates == 1


def test_rebuild_of_same_interval_is_identical(home_copy):
    tables = ["marts.fct_sessions", "marts.fct_orders", "marts.customer_features", "marts.dim_customers"]
    with connect(home_copy, read_only=True) as con:
        before = {t: table_fingerprint(con, t) for t in tables}
    build(home_copy, as_of=week_end(4))
    with connect(home_copy, read_only=True) as con:
        after = {t: table_fingerprint(con, t) for t in tables}
    assert before == after


def test_earlier_as_of_sees_less(home_copy):
    build(home_copy, as_of=week_end(2))
    with connect(home_copy, read_only=True) as con:
        max_received, = con.execute("select max(received_at) from intermediate.int_events_deduplicated").fetchone()
        as_of, = con.execute("select distinct as_of from marts.customer_features").fetchone()
    assert max_received < week_end(2)
    assert as_of == week_end(2)
    assert week_end(2) - max_received < timedelta(days=1)


def test_invalid_var_gives_a_clear_build_error(home_copy):
    with pytest.raises(BuildFailed) as err:
        run_dbt(["build", "--select", "int_run_context"], home_copy, extra_vars={"segflow__as_of": "not-a-date"})
    message = str(err.value)
    assert "int_run_context" in message and "Full log:" in message
    assert "Traceback" not in message
