"""Great Expectations suites as code and a runner that validates pandas frames. No Airflow, no DuckDB."""
