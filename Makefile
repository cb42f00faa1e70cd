# segflow — the two commands: `make demo` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False

.PHONY: install demo test test-fast bench docs airflow lint clean help

help:
	@echo "make demo     install, generate demo data, run the DAGs through Airflow, print a summary"
	@echo "make test     install and run the whole test suite (unit, dbt, DAGs, GX, end-to-end)"
	@echo "make airflow  Airflow UI on http://127.0.0.1:8080 (SEGFLOW_AIRFLOW_PORT) with the demo's runs; quiet, logs to .segflow/artifacts/airflow/services"
	@echo "make docs     dbt docs (lineage) as one HTML file"
	@echo "make bench    scale benchmarks at 1M and 10M events (about 20 minutes) -> docs/benchmarks.md"
	@echo "make lint     ruff"

# The venv is (re)built when pyproject.toml changes. uv installs the stack in seconds; pip is the fallback.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "segflow needs Python >= 3.11 (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv || true
	@if [ -x $(VENV)/bin/uv ]; then \
		$(VENV)/bin/uv pip install -q --python $(PY) -e '.[dev]'; \
	else \
		$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'; \
	fi
	@touch $(STAMP)

# The dbt manifest the Airflow DAG renders its per-model dbt tasks from (docs/airflow.md): `dbt parse`, no
# warehouse needed; rewritten when a file of the dbt project changes.
MANIFEST := dbt_project/target/manifest.json
$(MANIFEST): $(STAMP) $(shell find dbt_project -type f -not -path 'dbt_project/target/*' -not -path 'dbt_project/logs/*')
	@$(PY) -m segflow.dbt_manifest >/dev/null

install: $(STAMP) $(MANIFEST)

demo: install
	@$(VENV)/bin/segflow demo

test: install
	@$(VENV)/bin/pytest

test-fast: install
	@$(VENV)/bin/pytest -m "not e2e and not slow"

bench: $(STAMP)
	@$(PY) bench/scale.py --events 1000000 10000000 --out docs/benchmarks.md

docs: $(STAMP)
	@$(VENV)/bin/segflow docs

airflow: install
	@$(VENV)/bin/segflow airflow ui

lint: $(STAMP)
	@$(VENV)/bin/ruff check segflow ml expectations dags tests bench

clean:
	rm -rf .segflow build *.egg-info .pytest_cache .ruff_cache
