"""The gate's bounded frame: a large table is validated on a sample plus the rows that decide strict checks,
so a single bad row anywhere in the table still fails the gate while memory stays bounded."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from expectations.runner import validate_frame
from expectations.suites import staged_events
from segflow.jobs.dq_frames import read_frame

PARAMETERS = {"min_events": 100, "max_quantity": 10_000, "max_price": 100_000.0, "min_identified_share": 0.01,
              "as_of": datetime(2025, 1, 2), "fresh_after": datetime(2025, 1, 1), "earliest_event": datetime(1980, 1, 1),
              "latest_event": datetime(2025, 1, 2, 1)}


@pytest.fixture()
def con():
    con = duckdb.connect()
    con.execute("create schema intermediate")
    con.execute(
        "create table intermediate.int_events_stitched as select 'e' || i as event_id, "
        "case when i % 3 = 0 then 'page_view' else 'product_view' end as event_type, "
        "timestamp '2025-01-01' + to_seconds(i) as occurred_at, timestamp '2025-01-01' + to_seconds(i) as received_at, "
        "'c' || (i % 500) as customer_id, 'web' as channel, cast(null as bigint) as quantity, "
        "cast(1 + i % 50 as decimal(18, 2)) as price, cast(null as decimal(18, 2)) as revenue, "
        "cast(null as integer) as scroll_depth from range(50000) as t(i)")
    yield con
    con.close()


def test_small_tables_are_read_whole(con):
    frame, total = read_frame(con, staged_events, sample_rows=60_000, seed=1)
    assert total == 50_000 and len(frame) == 50_000


def test_a_sample_is_bounded_repeatable_and_passes_clean_data(con):
    frame, total = read_frame(con, staged_events, sample_rows=2_000, seed=1)
    again, _ = read_frame(con, staged_events, sample_rows=2_000, seed=1)
    assert total == 50_000
    assert 2_000 <= len(frame) <= 2_020
    assert sorted(frame.event_id) == sorted(again.event_id)
    assert validate_frame(frame, staged_events, PARAMETERS).success


@pytest.mark.parametrize("corruption, failing", [
    ("update intermediate.int_events_stitched set price = 250000 where event_id = 'e31337'", "price"),
    ("update intermediate.int_events_stitched set price = -1 where event_id = 'e4242'", "price"),
    ("update intermediate.int_events_stitched set event_type = 'clickk' where event_id = 'e777'", "event_type"),
    ("update intermediate.int_events_stitched set occurred_at = null where event_id = 'e12345'", "occurred_at"),
    ("update intermediate.int_events_stitched set occurred_at = timestamp '2099-01-01' where event_id = 'e2718'",
     "occurred_at"),
])
def test_one_bad_row_anywhere_fails_the_sampled_gate(con, corruption, failing):
    con.execute(corruption)
    frame, _ = read_frame(con, staged_events, sample_rows=2_000, seed=1)
    assert len(frame) < 2_100
    summary = validate_frame(frame, staged_events, PARAMETERS)
    assert not summary.success
    assert {o.column for o in summary.failures()} == {failing}


def test_row_rules_and_masked_ids_on_a_sample(con):
    """A session that ends before it starts is found anywhere in a large table, and GX sees tokens, not ids."""
    from expectations.suites import sessions
    from segflow.jobs.dq_frames import FrameScope

    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_sessions as select 's' || i as session_id, 'c' || (i % 700) as customer_id, "
        "'web' as channel, 'mobile' as device_type, 3 as event_count, 2 as page_view_count, 1 as product_view_count, "
        "0 as cart_add_count, 0 as order_count, cast(0 as decimal(18, 2)) as revenue, 50 as scroll_depth_max, "
        "120 as duration_seconds, timestamp '2025-01-01' + to_seconds(i) as started_at, "
        "timestamp '2025-01-01' + to_seconds(i + 120) as ended_at from range(30000) as t(i)")
    con.execute("update marts.fct_sessions set ended_at = started_at - interval 5 minute where session_id = 's23456'")
    scope = FrameScope(as_of=datetime(2025, 2, 1), salt="run-salt")
    frame, total = read_frame(con, sessions, sample_rows=1_000, seed=3, scope=scope)
    assert total == 30_000 and len(frame) < 1_100
    assert not frame["session_id"].str.startswith("s").any() and not frame["customer_id"].str.startswith("c").any()
    assert frame["session_id"].is_unique
    params = {**PARAMETERS, "as_of": datetime(2025, 2, 1), "max_session_seconds": 86_400}
    summary = validate_frame(frame, sessions, params)
    assert [(o.expectation, o.column) for o in summary.failures()] == [
        ("expect_column_pair_values_a_to_be_greater_than_b", "ended_at")]
    again, _ = read_frame(con, sessions, sample_rows=1_000, seed=3, scope=FrameScope(as_of=scope.as_of, salt="other"))
    assert set(again["session_id"]).isdisjoint(frame["session_id"])  # tokens do not outlive the run's salt
