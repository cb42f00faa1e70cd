#!/usr/bin/env bash
# One-shot setup of the segflow Airflow stack, run by the `airflow-init` service of docker-compose.yml.
# Every other Airflow service starts only after this exits 0 (service_completed_successfully).
# Idempotent: it runs again on every `docker compose up`.
set -euo pipefail

: "${SEGFLOW_HOME:?SEGFLOW_HOME must be set}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

echo "==> secrets in .env (placeholders from .env.example are refused)"
python "${here}/check_secrets.py"

# (the installed version from package metadata: `airflow version` would cost a whole CLI start-up)
echo "==> Airflow $(python -c 'from importlib.metadata import version; print(version("apache-airflow"))')"

echo "==> segflow state folders under ${SEGFLOW_HOME}"
# warehouse.duckdb itself is created by the first warehouse task.
mkdir -p "${SEGFLOW_HOME}/landing" "${SEGFLOW_HOME}/artifacts" "${SEGFLOW_HOME}/exports"

echo "==> metadata database migrations"
airflow db migrate

echo "==> pools"
# DuckDB allows a single writer process: every task that touches the warehouse runs in this 1-slot pool,
# whatever the number of Celery workers.
airflow pools set segflow_warehouse 1 "DuckDB allows one writer: every warehouse task runs in this pool"

echo "==> Simple auth manager passwords"
python "${here}/write_auth_passwords.py"

echo "==> init done"
