"""Great Expectations suites as code, a runner that validates pandas frames, and offline Data Docs.
No Airflow, no DuckDB."""

import logging

# GX logs hundreds of INFO lines while it imports ("Skipping registering function ..."): the suites import
# GX at module level, so the level is set here, before any of them
logging.getLogger("great_expectations").setLevel(logging.WARNING)
