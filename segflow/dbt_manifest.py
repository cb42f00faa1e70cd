"""The dbt manifest the Airflow DAG is rendered from: written by ``dbt parse`` at install time, read at DAG parse.

Airflow parses DAG files every few seconds, so the per-model dbt tasks of ``segflow_elt`` come from a manifest
on disk (astronomer-cosmos ``LoadMode.DBT_MANIFEST``), never from running dbt during a parse. ``dbt parse``
needs no warehouse (no connection is opened): ``make install`` runs ``python -m segflow.dbt_manifest`` and so
does ``segflow airflow init`` (the demo, ``make airflow``) when the project changed since. The manifest lives
in the project's ``target/`` folder (git-ignored), apart from the builds' artifacts in ``$SEGFLOW_HOME``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from segflow.errors import SegflowError
from segflow.settings import Settings, get_settings

SKIP_DIRS = {"target", "logs", "dbt_packages"}


class ManifestMissing(SegflowError):
    """No (current) dbt manifest for the DAG to be rendered from."""


def manifest_path(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).dbt_project_dir / "target" / "manifest.json"


def _newest_source_mtime(project_dir: Path) -> float:
    newest = 0.0
    for root, dirs, files in os.walk(project_dir):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
        for name in files:
            newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
    return newest


def is_current(settings: Settings | None = None) -> bool:
    """The manifest exists and is newer than every file of the dbt project."""
    settings = settings or get_settings()
    path = manifest_path(settings)
    return path.exists() and path.stat().st_mtime >= _newest_source_mtime(settings.dbt_project_dir)


def write_manifest(settings: Settings | None = None) -> Path:
    """``dbt parse`` into the project's ``target/``: no warehouse, no PII key, no network."""
    from segflow.jobs.build import _dbt_executable, dbt_vars

    settings = settings or get_settings()
    target = manifest_path(settings).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_ENV_SECRET_", "SEGFLOW_PII_KEY"))}
    env.update({"DBT_PROFILES_DIR": str(settings.dbt_project_dir), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                "DBT_USE_COLORS": "false",
                # never opened by `dbt parse`; a path that cannot be a real warehouse makes that visible
                "SEGFLOW_WAREHOUSE_PATH": str(target / "parse-only.duckdb")})
    command = [*_dbt_executable(settings), "parse", "--target-path", str(target), "--log-path",
               str(target / "logs"), "--vars", json.dumps(dbt_vars(settings))]
    proc = subprocess.run(command, cwd=settings.dbt_project_dir, env=env, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-6:])
        raise ManifestMissing(f"`dbt parse` failed: {tail}")
    return manifest_path(settings)


def ensure_manifest(settings: Settings | None = None) -> Path:
    """Write the manifest unless it is current; returns its path."""
    settings = settings or get_settings()
    if not is_current(settings):
        write_manifest(settings)
    return manifest_path(settings)


def require_manifest(settings: Settings | None = None) -> Path:
    """The manifest's path for a DAG parse: never runs dbt; a clear message when it is missing."""
    path = manifest_path(settings)
    if not path.exists():
        raise ManifestMissing(f"No dbt manifest at {path}: run `make install` (or `python -m "
                              "segflow.dbt_manifest`) to write it; the DAG's dbt tasks are rendered from it.")
    return path


if __name__ == "__main__":
    try:
        print(ensure_manifest())
    except SegflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
