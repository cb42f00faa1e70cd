# segflow's Airflow image: the official Airflow image, extended the documented way (pip as the `airflow`
# user), plus the segflow package, its DAGs, plugins and dbt project. One image serves every Airflow
# service in docker-compose.yml.
#
# The base tag must equal the apache-airflow pin in pyproject.toml (tests/unit/test_compose.py checks it):
# installing segflow must not swap the Airflow version underneath the image's entrypoint.
FROM apache/airflow:3.3.2-python3.11

# Image layout, read by segflow's settings (prefix SEGFLOW_) and by dbt.
# - SEGFLOW_HOME holds all segflow state; docker-compose.yml mounts a named volume here.
# - SEGFLOW_DBT_PROJECT_DIR must be explicit: the default in segflow/settings.py is relative to the source
#   checkout, which for a package installed into site-packages would point into site-packages.
# - DBT_PROFILES_DIR: profiles.yml ships inside the dbt project and reads SEGFLOW_HOME.
ENV SEGFLOW_HOME=/opt/segflow/home \
    SEGFLOW_DBT_PROJECT_DIR=/opt/airflow/dbt_project \
    DBT_PROFILES_DIR=/opt/airflow/dbt_project \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false

# Mount points of the named volumes, created owned by airflow: Docker seeds an empty named volume with the
# image's directory (ownership included), so the containers never need to run as root to write there.
USER root
RUN mkdir -p /opt/segflow/home /opt/segflow/src /opt/airflow/auth /opt/airflow/logs \
 && chown -R airflow:0 /opt/segflow /opt/airflow/auth /opt/airflow/logs
USER airflow

# Dependencies first, so editing a DAG does not reinstall the world.
# README* is a wildcard on purpose: pyproject.toml names README.md, but its absence must not fail the build.
COPY --chown=airflow:0 pyproject.toml README* /opt/segflow/src/
COPY --chown=airflow:0 segflow/ /opt/segflow/src/segflow/
COPY --chown=airflow:0 ml/ /opt/segflow/src/ml/
COPY --chown=airflow:0 expectations/ /opt/segflow/src/expectations/

# apache-airflow==${AIRFLOW_VERSION} (set by the base image) keeps pip from moving Airflow itself.
# segflow's `celery` extra (pyproject.toml) pins the Celery provider, celery[redis]<5.7 (5.7 breaks the provider),
# the Postgres provider and psycopg2: the same pins the dev install and the process-topology test use.
RUN pip install --no-cache-dir \
      "apache-airflow==${AIRFLOW_VERSION}" \
      "/opt/segflow/src[celery]"

COPY --chown=airflow:0 dbt_project/ /opt/airflow/dbt_project/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
# One-shot setup run by the airflow-init service (migrations, pool, auth passwords, state folders).
COPY --chown=airflow:0 docker/ /opt/segflow/docker/
