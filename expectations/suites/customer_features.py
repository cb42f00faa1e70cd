"""Suite for marts.customer_features: the input of the weekly segmentation.

A feature that is constant across all customers carries no signal, so its standard deviation must be
positive - but only for features the configured sources can produce (``provided``): a purchase-only feed
has no sessions, and a feed of one day has no spread in recency.
"""

import great_expectations as gx
import great_expectations.expectations as gxe

NAME = "customer_features"
TABLE = "marts.customer_features"
COLUMNS = None  # every column
RATES = ("cart_abandonment_rate", "app_event_share")
NON_NEGATIVE = (
    "recency_days", "tenure_days", "frequency", "monetary", "avg_order_value", "orders_28d", "revenue_28d",
    "session_count", "sessions_28d", "sessions_7d", "active_days_28d", "pages_per_session",
    "avg_session_minutes", "email_click_rate", "support_tickets_90d", "returned_revenue",
)
VARYING = ("recency_days", "sessions_28d", "monetary")
# what decides the strict checks when a large table is validated on a sample (segflow.jobs.validate.read_frame)
KEY = "customer_id"
RANGED = NON_NEGATIVE + RATES
IN_SET = ()
NOT_NULL = NON_NEGATIVE
FLAGGED: tuple[str, ...] = ()
# the key is replaced by a per-run token before GX sees it: a failed uniqueness check lists tokens, never ids
MASKED = ("customer_id",)


def build_suite(provided: set[str] | None = None) -> gx.ExpectationSuite:
    provided = set(VARYING) if provided is None else provided
    suite = gx.ExpectationSuite(name=NAME)
    suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value={"$PARAMETER": "min_customers"}))
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column="customer_id"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="customer_id"))
    for column in NON_NEGATIVE:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0))
    for column in RATES:
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=1))
    for column in VARYING:
        if column in provided:
            suite.add_expectation(gxe.ExpectColumnStdevToBeBetween(column=column, min_value=1e-9))
    return suite
