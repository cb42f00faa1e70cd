"""Suite for the run's metrics: one row of aggregates over whole tables (segflow.jobs.dq_metrics), so the
checks are exact whatever the table sizes and the gate's memory stays bounded.

* **Volume change vs the previous run**: events received, sessions started and orders placed in the
  ``SEGFLOW_DQ_WINDOW_DAYS`` before the as-of may move by at most ``SEGFLOW_DQ_MAX_VOLUME_CHANGE`` against
  the latest earlier passing run.
* **Distributions learned from history**: the share of order lines among events, the median session length
  and the median order value must lie in a band around their median over the last
  ``SEGFLOW_DQ_BASELINE_RUNS`` passing runs (``SEGFLOW_DQ_DISTRIBUTION_TOLERANCE``, widened to 3 MADs when
  the history is noisy).
* **Delivery**: of the rows delivered since the previous run, at most ``SEGFLOW_DQ_MAX_REJECT_RATE`` were
  rejected at load and at most ``SEGFLOW_DQ_MAX_QUARANTINE_RATE`` quarantined by staging.

A comparison needs a reference: the first run, or a metric whose reference (or current basis) counts fewer
than ``SEGFLOW_DQ_MIN_ROWS_FOR_COMPARISON`` rows, is not compared, and the gate's result says so. ``provided``
names the metrics that have bounds this run (parameters ``<metric>_min`` / ``<metric>_max``).
"""

import great_expectations as gx
import great_expectations.expectations as gxe

NAME = "run_metrics"
TABLE = None  # one row computed by segflow.jobs.dq_metrics
VOLUMES = ("events_in_window", "sessions_in_window", "orders_in_window")
LEARNED = ("purchase_share", "median_session_minutes", "median_order_value")
RATES = ("reject_rate", "quarantine_rate")
COLUMNS = VOLUMES + LEARNED + RATES
NOTES = {
    "events_in_window": "Events received in the window; bounds: the previous passing run's count "
                        "± SEGFLOW_DQ_MAX_VOLUME_CHANGE.",
    "sessions_in_window": "Sessions started in the window; bounds: the previous passing run's count "
                          "± SEGFLOW_DQ_MAX_VOLUME_CHANGE.",
    "orders_in_window": "Orders placed in the window; bounds: the previous passing run's count "
                        "± SEGFLOW_DQ_MAX_VOLUME_CHANGE.",
    "purchase_share": "Order lines / events received in the window; band learned from earlier passing runs.",
    "median_session_minutes": "Median length of the sessions started in the window; band learned from earlier "
                              "passing runs.",
    "median_order_value": "Median revenue of the orders placed in the window; band learned from earlier "
                          "passing runs.",
    "reject_rate": "Rows rejected at load / rows delivered since the previous run (SEGFLOW_DQ_MAX_REJECT_RATE).",
    "quarantine_rate": "Rows quarantined by staging / rows loaded since the previous run "
                       "(SEGFLOW_DQ_MAX_QUARANTINE_RATE).",
}


def build_suite(provided: set[str] | None = None) -> gx.ExpectationSuite:
    provided = set(COLUMNS) if provided is None else provided
    suite = gx.ExpectationSuite(name=NAME)
    suite.add_expectation(gxe.ExpectTableRowCountToEqual(value=1))
    for metric in COLUMNS:
        if metric not in provided:
            continue
        if metric not in RATES:  # a rate is null when nothing was delivered: nothing to judge
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=metric, notes=NOTES[metric]))
        # on a one-row frame the maximum is the value: GX then reports (and Data Docs show) the observed value
        suite.add_expectation(gxe.ExpectColumnMaxToBeBetween(
            column=metric, min_value={"$PARAMETER": f"{metric}_min"}, max_value={"$PARAMETER": f"{metric}_max"},
            notes=NOTES[metric]))
    return suite
