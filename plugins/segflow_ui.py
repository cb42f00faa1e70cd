"""Airflow plugin: the segflow Segments page (logic in segflow.ui; docs/ui.md)."""

from airflow.plugins_manager import AirflowPlugin

from segflow.ui.app import URL_PREFIX, create_app


class SegflowUIPlugin(AirflowPlugin):
    name = "segflow_ui"
    fastapi_apps = [{"name": "segflow", "app": create_app(), "url_prefix": URL_PREFIX}]
    # a nav entry showing the page inside Airflow's UI (an iframe at /plugin/segments); href is relative to
    # Airflow's base URL
    external_views = [{"name": "Segments", "href": URL_PREFIX.lstrip("/") + "/", "url_route": "segments",
                       "destination": "nav"}]
