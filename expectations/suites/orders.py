"""Suite for ``marts.fct_orders`` (one row per order document): keys, nulls and ranges.

An order has at least one line, non-negative revenue, never more reversed (returned or cancelled) than it
was worth, and was placed before the run's as-of. Unit prices and quantities are checked per line on the
staged events (``staged_events``).
"""

import great_expectations as gx
import great_expectations.expectations as gxe

NAME = "orders"
TABLE = "marts.fct_orders"
COLUMNS = ("order_id", "customer_id", "channel", "line_count", "item_count", "revenue", "reversed_revenue",
           "net_revenue", "ordered_at")
KEY = "order_id"
RANGED = ("line_count", "item_count", "revenue", "reversed_revenue", "ordered_at")
IN_SET = ("channel",)
NOT_NULL = ("order_id", "line_count", "revenue", "ordered_at")
FLAGGED = ("reversed_revenue > revenue",)
MASKED = ("customer_id",)
CHANNELS = ["web", "app", "email", "support", "store", "other"]


def build_suite(provided: set[str] | None = None) -> gx.ExpectationSuite:
    provided = set(COLUMNS) if provided is None else provided
    suite = gx.ExpectationSuite(name=NAME)
    for column in NOT_NULL:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="order_id"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="line_count", min_value=1))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="item_count", min_value=0))
    for column in ("revenue", "reversed_revenue"):
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0))
    suite.add_expectation(gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="revenue", column_B="reversed_revenue", or_equal=True, ignore_row_if="either_value_is_missing",
        notes="Returns and cancellations never take back more than the order was worth."))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
        column="ordered_at", min_value={"$PARAMETER": "earliest_event"}, max_value={"$PARAMETER": "as_of"}))
    if "channel" in provided:
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="channel", value_set=CHANNELS))
    return suite
