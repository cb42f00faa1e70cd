"""Suite for ``marts.fct_sessions`` (one row per session): keys, nulls, ranges and allowed values.

A session lasts from 0 to ``SEGFLOW_MAX_SESSION_HOURS`` (longer ones are quarantined as runaway sessions, so a
longer one here is a broken build), ends no earlier than it starts, starts before the run's as-of, and has
at least one event. Channel and device follow the mart's documented values.
"""

import great_expectations as gx
import great_expectations.expectations as gxe

NAME = "sessions"
TABLE = "marts.fct_sessions"
COLUMNS = ("session_id", "customer_id", "channel", "device_type", "event_count", "page_view_count",
           "product_view_count", "cart_add_count", "order_count", "revenue", "scroll_depth_max",
           "duration_seconds", "started_at", "ended_at")
KEY = "session_id"
RANGED = ("event_count", "page_view_count", "product_view_count", "cart_add_count", "order_count", "revenue",
          "scroll_depth_max", "duration_seconds", "started_at")
IN_SET = ("channel", "device_type")
NOT_NULL = ("session_id", "event_count", "duration_seconds", "started_at", "ended_at")
FLAGGED = ("ended_at < started_at",)
MASKED = ("session_id", "customer_id")  # a session id is derived from the person: tokens only in the results
COUNTS = ("page_view_count", "product_view_count", "cart_add_count", "order_count")
CHANNELS = ["web", "app", "email", "support", "store", "other"]
DEVICES = ["desktop", "mobile", "tablet", "other", "mixed"]


def build_suite(provided: set[str] | None = None) -> gx.ExpectationSuite:
    provided = set(COLUMNS) if provided is None else provided
    suite = gx.ExpectationSuite(name=NAME)
    for column in NOT_NULL:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="session_id"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="event_count", min_value=1))
    for column in COUNTS:
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
        column="duration_seconds", min_value=0, max_value={"$PARAMETER": "max_session_seconds"},
        notes="Sessions longer than SEGFLOW_MAX_SESSION_HOURS are quarantined as runaway sessions before the mart."))
    suite.add_expectation(gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="ended_at", column_B="started_at", or_equal=True))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
        column="started_at", min_value={"$PARAMETER": "earliest_event"}, max_value={"$PARAMETER": "as_of"}))
    if "revenue" in provided:
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="revenue", min_value=0))
    if "scroll_depth_max" in provided:
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="scroll_depth_max", min_value=0,
                                                                max_value=100))
    if "channel" in provided:
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="channel", value_set=CHANNELS))
    if "device_type" in provided:
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="device_type", value_set=DEVICES))
    return suite
