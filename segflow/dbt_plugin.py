"""dbt-duckdb plugin (``plugins:`` in dbt_project/profiles.yml): ``segflow_pseudonymize`` on every connection.

dbt-duckdb calls ``configure_connection`` on the database connection and ``configure_cursor`` on each cursor
its threads use; DuckDB variables and temporary macros belong to one connection, so both define them. The
key comes from this process's environment (segflow's build puts it there), never from SQL text or dbt vars:
see :mod:`segflow.privacy`.
"""

from __future__ import annotations

import os
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from segflow.privacy import install_pseudonymizer, secret_from_env


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self._secret = secret_from_env(dict(os.environ))

    def configure_connection(self, conn) -> None:
        install_pseudonymizer(conn, self._secret)

    def configure_cursor(self, cursor) -> None:
        install_pseudonymizer(cursor, self._secret)
