"""Suite for staging.stg_raw__events: the typed, valid events before deduplication."""

import great_expectations as gx
import great_expectations.expectations as gxe

NAME = "staged_events"
TABLE = "staging.stg_raw__events"
EVENT_TYPES = [
    "page_view", "product_view", "add_to_cart", "remove_from_cart", "checkout", "purchase", "app_open",
    "feature_use", "in_app_purchase", "support_ticket", "email_send", "email_open", "email_click",
]
CHANNELS = ["web", "app", "email", "support"]


def build_suite() -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=NAME)
    suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value={"$PARAMETER": "min_events"}))
    for column in ("event_id", "event_type", "occurred_at", "received_at"):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=EVENT_TYPES))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="channel", value_set=CHANNELS, mostly=0.99))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0, max_value=100_000))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=1, max_value=1_000))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="scroll_depth", min_value=0, max_value=100))
    # the share of events without any identity must stay tiny (they cannot be attributed)
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="anonymous_id", mostly=0.5))
    return suite
