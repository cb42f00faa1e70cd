"""One module per validated frame; each exposes NAME, build_suite() and what decides its bounded frame
(KEY, RANGED, IN_SET, NOT_NULL, FLAGGED, MASKED; see segflow.jobs.dq_frames).

``SUITES`` are validated on rows read from the warehouse; ``run_metrics`` on one row of whole-table
aggregates (segflow.jobs.dq_metrics).
"""

import logging

# before any suite imports GX: its import logs hundreds of INFO lines ("Skipping registering function ...").
# Set here and in expectations.runner rather than only in expectations/__init__.py, which a `tests/expectations`
# folder on sys.path can shadow (a namespace package of the same name)
logging.getLogger("great_expectations").setLevel(logging.WARNING)

from expectations.suites import (  # noqa: E402
    customer_features,
    customer_profiles,
    orders,
    raw_loads,
    run_metrics,
    sessions,
    staged_events,
)

SUITES = {module.NAME: module for module in (raw_loads, staged_events, sessions, orders, customer_profiles,
                                              customer_features)}
ALL_SUITES = {**SUITES, run_metrics.NAME: run_metrics}
