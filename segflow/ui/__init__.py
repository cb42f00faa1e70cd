"""The Segments page inside the Airflow UI (mounted by ``plugins/segflow_ui.py``; docs/ui.md).

A FastAPI app, served by Airflow's api-server behind Airflow's login: the page, its JSON, and the dbt docs, GX
Data Docs and weekly report as static files. It reads only published artifacts (``exports/status/``, the docs
and report folders), never the warehouse, so it never waits for or takes the warehouse lock.
"""
