"""The gate's bounded frame: a large table is validated on a sample plus the rows that decide strict checks,
so a single bad row anywhere in the table still fails the gate while memory stays bounded."""

from __future__ import annotations

import duckdb
import pytest

from expectations.runner import validate_frame
from expectations.suites import staged_events
from segflow.jobs.validate import read_frame

PARAMETERS = {"min_events": 100, "max_quantity": 10_000, "max_price": 100_000.0, "min_identified_share": 0.01}


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
])
def test_one_bad_row_anywhere_fails_the_sampled_gate(con, corruption, failing):
    con.execute(corruption)
    frame, _ = read_frame(con, staged_events, sample_rows=2_000, seed=1)
    assert len(frame) < 2_100
    summary = validate_frame(frame, staged_events, PARAMETERS)
    assert not summary.success
    assert {o.column for o in summary.failures()} == {failing}
