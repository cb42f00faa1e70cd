"""Suite for the events of the run (``intermediate.int_events_stitched``: deduplicated, identity-stitched,
received before the run's as-of bound).

Business thresholds arrive as runtime parameters (``$PARAMETER``) from settings: ``max_quantity``,
``max_price``, ``min_identified_share``, ``min_events``; the time bounds from the run: ``as_of``,
``fresh_after`` (as-of minus ``SEGFLOW_DQ_MAX_STALENESS_HOURS``), ``earliest_event`` and ``latest_event``
(``SEGFLOW_MIN_EVENT_DATE`` and as-of plus ``SEGFLOW_CLOCK_SKEW_MINUTES``). Checks on a column are only added
when the configured sources provide it (at least one non-null value), so a purchase-only feed is not judged
on scroll depth or channels it never sends.
"""

import great_expectations as gx
import great_expectations.expectations as gxe

NAME = "staged_events"
TABLE = "intermediate.int_events_stitched"
COLUMNS = ("event_id", "event_type", "occurred_at", "received_at", "customer_id", "channel", "quantity", "price",
           "revenue", "scroll_depth")
# what decides the strict checks when a large table is validated on a sample (segflow.jobs.validate.read_frame)
KEY = "event_id"
RANGED = ("price", "quantity", "revenue", "scroll_depth", "occurred_at", "received_at")
IN_SET = ("event_type",)
NOT_NULL = ("event_type", "occurred_at", "received_at")
FLAGGED: tuple[str, ...] = ()
MASKED: tuple[str, ...] = ()
CHANNELS = ["web", "app", "email", "support", "store", "other"]


def event_types() -> list[str]:
    """The canonical event types: the dbt seed is the one list."""
    import csv
    from pathlib import Path

    seed = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "event_types.csv"
    with open(seed, newline="") as fh:
        return [row["event_type"] for row in csv.DictReader(fh)]


def build_suite(provided: set[str] | None = None) -> gx.ExpectationSuite:
    provided = set(COLUMNS) if provided is None else provided
    suite = gx.ExpectationSuite(name=NAME)
    suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value={"$PARAMETER": "min_events"}))
    for column in ("event_id", "event_type", "occurred_at", "received_at"):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="event_id"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=event_types()))
    # identity: enough events resolve to a known customer (a broken user-id mapping drops this to zero)
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(
        column="customer_id", mostly={"$PARAMETER": "min_identified_share"}))
    # time: nothing dated before the plausible start or after the as-of (plus clock skew) ...
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
        column="occurred_at", min_value={"$PARAMETER": "earliest_event"}, max_value={"$PARAMETER": "latest_event"},
        notes="No event dated before SEGFLOW_MIN_EVENT_DATE or after the run's as-of plus SEGFLOW_CLOCK_SKEW_MINUTES."))
    # ... and freshness: the newest delivery is recent relative to the run's as-of (never the wall clock)
    suite.add_expectation(gxe.ExpectColumnMaxToBeBetween(
        column="received_at", min_value={"$PARAMETER": "fresh_after"}, max_value={"$PARAMETER": "as_of"},
        notes="Freshness: the newest event was received at most SEGFLOW_DQ_MAX_STALENESS_HOURS before the "
              "run's as-of."))
    if "channel" in provided:
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column="channel", value_set=CHANNELS, mostly=0.99))
    if "price" in provided:
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
            column="price", min_value=0, max_value={"$PARAMETER": "max_price"}))
    if "quantity" in provided:
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
            column="quantity", min_value=0, max_value={"$PARAMETER": "max_quantity"}))
    if "revenue" in provided:
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="revenue", min_value=0))
    if "scroll_depth" in provided:
        suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column="scroll_depth", min_value=0, max_value=100))
    return suite
