"""Segment breakdowns in the marts: the weekly segmentation's assignments (ml.*) flow back into dbt.

A build as of week 4 takes the segments of the latest ACCEPTED run made for an earlier as-of: not a rejected
run, and not a run of week 4 itself (it is made after week 4's build, so a rebuild must not see it). The
per-segment counts are recomputed here from the session-level facts and the assignments written by the test.
"""

from __future__ import annotations

from collections import Counter

import pytest
from tests_support import week_end

from segflow.jobs.build import build
from segflow.warehouse import connect

pytestmark = pytest.mark.slow


def _write_run(con, run_id: str, as_of, status: str, assignments: dict[str, str], names: dict[str, str]) -> None:
    con.execute("insert into ml.model_runs (run_id, as_of, status) values (?, ?, ?)", [run_id, as_of, status])
    con.executemany("insert into ml.segments (as_of, run_id, segment_id, segment_name) values (?, ?, ?, ?)",
                    [(as_of, run_id, sid, name) for sid, name in names.items()])
    con.executemany("insert into ml.segment_assignments values (?, ?, ?, ?)",
                    [(as_of, run_id, customer, sid) for customer, sid in assignments.items()])


def test_breakdowns_use_the_latest_accepted_run_before_the_as_of(home_copy):
    with connect(home_copy) as con:
        customers = [c for (c,) in con.execute(
            "select customer_id from marts.customer_features order by customer_id").fetchall()]
        chosen = {c: ("S01" if i % 3 else "S02") for i, c in enumerate(customers[: len(customers) // 2])}
        _write_run(con, "accepted-w3", week_end(3), "accepted", chosen, {"S01": "Alpha", "S02": "Beta"})
        _write_run(con, "rejected-w3b", week_end(3).replace(hour=12), "rejected",
                   dict.fromkeys(customers, "S09"), {"S09": "Rejected"})
        _write_run(con, "accepted-w4", week_end(4), "accepted", dict.fromkeys(customers, "S07"), {"S07": "Later"})
    build(home_copy, as_of=week_end(4))
    names = {"S01": "Alpha", "S02": "Beta"}
    with connect(home_copy, read_only=True) as con:
        segments = dict(con.execute("select customer_id, segment_name from intermediate.int_customer_segments")
                        .fetchall())
        entered = con.execute("select customer_id from marts.fct_funnel_sessions "
                              "where funnel = 'purchase' and is_entered").fetchall()
        daily = con.execute("select customer_id, activity_date, session_count, order_count "
                            "from marts.fct_customer_daily_activity").fetchall()
        lens = con.execute("select segment_kind, activity_date, segment, customers, session_count, order_count "
                           "from marts.agg_daily_activity_by_segment").fetchall()
        by_segment = dict(con.execute(
            "select customer_segment, sum(sessions_entered) from marts.agg_funnel_daily "
            "where funnel = 'purchase' and step_number = 1 group by 1").fetchall())
    assert segments == {c: names[s] for c, s in chosen.items()}
    expected = Counter("(anonymous)" if c is None else segments.get(c, "(unsegmented)") for (c,) in entered)
    assert {k: int(v) for k, v in by_segment.items()} == dict(expected)
    assert {"Alpha", "Beta", "(unsegmented)"} <= set(by_segment)
    # the daily series per ML segment, recounted from the customer-day facts and the assignments written above
    expected_daily: dict[tuple, list[int]] = {}
    for customer, day, sessions, orders in daily:
        key = (day, names[chosen[customer]] if customer in chosen else "(unsegmented)")
        totals = expected_daily.setdefault(key, [0, 0, 0])
        totals[0] += 1
        totals[1] += sessions
        totals[2] += orders
    assert {(day, seg): [c, s_, o] for kind, day, seg, c, s_, o in lens if kind == "ml_segment"} == expected_daily
    # the other lenses cover the same customer-days
    for kind in ("rfm_segment", "lifecycle_stage"):
        assert sum(c for k, *_, c, _s, _o in lens if k == kind) == len(daily)
