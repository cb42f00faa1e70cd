"""One module per validated table; each exposes NAME, TABLE and build_suite()."""

from expectations.suites import customer_features, staged_events

SUITES = {module.NAME: module for module in (staged_events, customer_features)}
