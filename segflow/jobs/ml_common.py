"""What every weekly ML step shares: the as-of convention, the code version a run records, the latest week."""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from segflow.errors import NotReady
from segflow.settings import PROJECT_ROOT
from segflow.warehouse import table_exists


def to_naive_utc(value: datetime | None) -> datetime | None:
    """Airflow hands out aware datetimes; the warehouse stores naive UTC."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def code_version() -> str:
    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import version

    return f"segflow-{version('segflow')}"


def library_versions() -> dict[str, str]:
    import sklearn

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__, "numpy": np.__version__,
            "pandas": pd.__version__}


def resolve_as_of(con, table: str, as_of: datetime | None, missing: str) -> datetime:
    """``as_of`` if given, else the latest week in ``ml.<table>``; NotReady when that table holds no week."""
    if not table_exists(con, "ml", table):
        raise NotReady(missing)
    if as_of is None:
        as_of = con.execute(f"select max(as_of) from ml.{table}").fetchone()[0]
        if as_of is None:  # the table exists (segflow.ddl creates it) but no run wrote to it yet
            raise NotReady(missing)
    return as_of
