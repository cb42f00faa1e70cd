"""The warehouse's own tables (raw landing tables, load and build bookkeeping, data-quality results and the
ML jobs' tables): the one place their DDL lives.

dbt owns staging, intermediate and marts, and reads raw.*, meta.* and ml.segments / ml.segment_assignments /
ml.model_runs as sources, so all of them exist before the first build. Every raw table has every canonical
column of its stream (as text), so a source that lacks optional columns still builds.
"""

from __future__ import annotations

import duckdb

from segflow.sources import canonical

META_COLUMNS = ("_load_id", "_source_file", "_source_row")

_META_DDL = """
create schema if not exists raw;
create schema if not exists meta;
create table if not exists meta.load_manifest (
    load_id varchar primary key,
    load_seq bigint not null,
    source varchar not null,
    stream varchar not null,
    file_name varchar not null,
    file_path varchar not null,
    checksum varchar not null unique,
    file_format varchar not null,
    mapping_name varchar,
    mapping_checksum varchar,
    partition_date date,
    rows_in_file bigint,
    rows_loaded bigint not null,
    rows_rejected bigint not null,
    columns_dropped varchar,
    loaded_at timestamp not null,
    damage varchar,
    previous_load_id varchar
);
create table if not exists meta.load_outputs (
    load_id varchar not null,
    stream varchar not null,
    rows_written bigint not null
);
create table if not exists meta.load_rejects (
    load_id varchar not null,
    source varchar not null,
    file_name varchar not null,
    line_number bigint,
    reason varchar not null,
    raw_line varchar,
    reason_code varchar
);
create table if not exists meta.file_index (
    file_path varchar not null,
    size_bytes bigint not null,
    mtime_ns bigint not null,
    checksum varchar not null
);
create table if not exists meta.build_state (
    build_seq bigint primary key,
    as_of timestamp,
    mode varchar not null,
    reason varchar not null,
    max_load_seq bigint not null,
    loads_count bigint not null,
    fingerprint varchar not null,
    status varchar not null,
    started_at timestamp not null,
    finished_at timestamp
);
create table if not exists meta.dq_results (
    as_of timestamp not null,
    suite varchar not null,
    success boolean not null,
    evaluated integer not null,
    failed integer not null,
    rows bigint not null,
    failures varchar,
    result_file varchar,
    validated_at timestamp not null
);
-- one row per data-quality gate run (segflow.jobs.dq_metrics): what the report, the UI and the next run's
-- volume and distribution checks read; rates are shares (0..1), missing_pct a percentage
create table if not exists meta.dq_history (
    as_of timestamp not null,
    success boolean not null,
    checks_evaluated integer not null,
    checks_passed integer not null,
    checks_failed integer not null,
    failures varchar,
    window_days integer not null,
    events_in_window bigint,
    sessions_in_window bigint,
    orders_in_window bigint,
    hours_since_last_event double,
    purchase_share double,
    median_session_minutes double,
    median_order_value double,
    reference_as_of timestamp,
    baseline_runs integer not null,
    files_loaded bigint,
    rows_delivered bigint,
    rows_loaded bigint,
    reject_rate double,
    duplicate_rate double,
    quarantine_rate double,
    quarantine_by_reason varchar,
    missing_pct double,
    missing_by_field varchar,
    outlier_rate double,
    customers bigint,
    max_load_seq bigint,
    data_docs varchar,
    validated_at timestamp not null
);
-- one row per raw table and PII column a `segflow purge-pii` emptied (rows_purged may be 0): the audit of the
-- retention policy (SEGFLOW_PII_RETENTION_DAYS). key_id names the PII key the kept pseudonyms were made with.
create table if not exists meta.pii_purges (
    purged_at timestamp not null,
    table_name varchar not null,
    column_name varchar not null,
    rows_purged bigint not null,
    loaded_before timestamp not null,
    retention_days integer not null,
    key_id varchar not null
);
create table if not exists meta.landing_entries (
    entry_path varchar primary key,
    source varchar,
    entry_name varchar not null,
    status varchar not null,
    reason varchar,
    size_bytes bigint,
    records_in_file bigint,
    rows_loaded bigint,
    rows_rejected bigint,
    load_id varchar,
    checked_at timestamp not null
);
drop table if exists meta.file_rejects;
create table if not exists meta.run_log (
    run_id varchar primary key,
    step varchar not null,
    status varchar not null,
    as_of timestamp,
    invoked_by varchar not null,
    pid integer not null,
    started_at timestamp not null,
    finished_at timestamp not null,
    duration_seconds double not null,
    error varchar,
    summary varchar
);
"""


_ML_DDL = """
create schema if not exists ml;
create table if not exists ml.model_runs (
    run_id varchar primary key, as_of timestamp not null, status varchar not null, algorithm varchar,
    k integer, silhouette double, scores varchar, params varchar, features varchar, customer_count bigint,
    data_fingerprint varchar, code_version varchar, library_versions varchar, previous_run_id varchar,
    created_at timestamp
);
create table if not exists ml.segments (
    as_of timestamp not null, run_id varchar not null, segment_id varchar not null, segment_name varchar,
    customer_count bigint, share double, is_new boolean, profile varchar, log_centroid varchar
);
create table if not exists ml.segment_assignments (
    as_of timestamp not null, run_id varchar not null, customer_id varchar not null, segment_id varchar not null
);
-- issue 9 segmentation: what happened to each segment id from one accepted run to the next (continued, split,
-- merge, birth, death; related_segment_id = the previous segment of a continuation, split or merge), how many
-- customers moved between segment ids (from null = new this week, to null = gone), and the hybrid rule
-- segments (config predicates over features) beside the clusters
create table if not exists ml.segment_lineage (
    as_of timestamp not null, run_id varchar not null, previous_run_id varchar, event varchar not null,
    segment_id varchar not null, related_segment_id varchar, overlap double, centroid_distance double
);
create table if not exists ml.segment_transitions (
    as_of timestamp not null, run_id varchar not null, previous_run_id varchar, from_segment_id varchar,
    to_segment_id varchar, customers bigint not null
);
create table if not exists ml.rule_segments (
    as_of timestamp not null, run_id varchar not null, rule_name varchar not null, predicate varchar not null,
    customer_count bigint not null
);
create table if not exists ml.rule_segment_members (
    as_of timestamp not null, run_id varchar not null, rule_name varchar not null, customer_id varchar not null
);
create table if not exists ml.drift_runs (
    as_of timestamp not null, reference_as_of timestamp, verdict varchar not null, max_psi double,
    drifted_features varchar, created_at timestamp
);
create table if not exists ml.drift_metrics (
    as_of timestamp not null, reference_as_of timestamp not null, feature varchar not null, psi double,
    verdict varchar, reference_mean double, current_mean double
);
-- drift and monitoring (segflow.jobs.drift, segflow.jobs.monitoring; docs/drift.md)
create table if not exists ml.drift_bins (
    as_of timestamp not null, comparison varchar not null, reference_as_of timestamp not null,
    feature varchar not null, cuts varchar
);
create table if not exists ml.segment_kpi_series (
    as_of timestamp not null, segment_id varchar not null, customers bigint, conversion double,
    aov double, revenue double, sessions double
);
create table if not exists ml.spc_signals (
    as_of timestamp not null, segment_id varchar not null, kpi varchar not null, value double, center double,
    sigma double, rule integer not null, side integer not null, created_at timestamp
);
create table if not exists ml.trend_breaks (
    as_of timestamp not null, segment_id varchar not null, metric varchar not null, kind varchar not null,
    activity_date date not null, value double, trend double, seasonal double, resid double, threshold double,
    created_at timestamp
);
create table if not exists ml.recluster_triggers (
    as_of timestamp not null, reason varchar not null, triggered_at timestamp not null, dag_run_id varchar
);
-- anomaly detection (segflow.jobs.anomalies): one row per week, and one per customer scored that week
create table if not exists ml.anomaly_runs (
    as_of timestamp not null, run_id varchar not null, customer_count bigint, flagged_count bigint,
    excluded_from_segments boolean, features varchar, params varchar, feature_medians varchar,
    code_version varchar, library_versions varchar, created_at timestamp
);
create table if not exists ml.customer_anomalies (
    as_of timestamp not null, run_id varchar not null, customer_id varchar not null, isolation_score double,
    density_score double, max_abs_z double, is_flagged boolean not null, reasons varchar
);
create table if not exists ml.publications (
    as_of timestamp not null, run_id varchar not null, path varchar not null, row_count bigint,
    published_at timestamp
);
-- CLV (segflow.jobs.clv, docs/clv.md): one row per week's fit - status fitted | not_ready | not_converged |
-- failed, BG/NBD (r, alpha, a, b; time unit weeks) and Gamma-Gamma (p, q, gamma) estimates and log-likelihoods
create table if not exists ml.clv_models (
    as_of timestamp not null, status varchar not null, reason varchar, customer_count bigint,
    repeat_customer_count bigint, spend_customer_count bigint, r double, alpha double, a double, b double,
    bgnbd_log_likelihood double, p double, q double, gamma double, gamma_gamma_log_likelihood double,
    converged boolean, spend_frequency_correlation double, horizon_weeks integer, annual_discount_rate double,
    margin double, observation_end_date date, data_fingerprint varchar, code_version varchar,
    library_versions varchar, fit_seconds double, created_at timestamp
);
-- one row per customer of a fitted week: predictions over the horizon of that week's ml.clv_models row
create table if not exists ml.customer_clv (
    as_of timestamp not null, customer_id varchar not null, expected_purchases double, probability_alive double,
    expected_avg_spend double, predictive_clv double, historic_clv double
);
-- business validation (segflow.jobs.segment_kpis, segflow ab-readout; docs/business-metrics.md): one row per
-- week, segment ('(all)' = every customer) and KPI; one per week and KPI; one per experiment, week, segment, metric
create table if not exists ml.segment_kpis (
    as_of timestamp not null, run_id varchar not null, segment_id varchar not null, kpi varchar not null,
    value double, ci_low double, ci_high double, n bigint not null
);
create table if not exists ml.segment_separation (
    as_of timestamp not null, kpi varchar not null, test varchar not null, statistic double, effect_size double,
    p_value double, n bigint not null, groups integer not null
);
create table if not exists ml.ab_readouts (
    experiment_id varchar not null, as_of timestamp not null, segment_id varchar not null, metric varchar not null,
    control double, treatment double, uplift double, ci_low double, ci_high double, n_control bigint not null,
    n_treatment bigint not null, small_sample boolean not null
);
-- model registry (segflow.jobs.registry, docs/model-registry.md): one row per weekly model version (version =
-- the week's ml.model_runs.run_id). status: champion (the one version in use: assignments, drift scoring) |
-- retired (was champion, replaced by a later promotion) | rejected (missed a floor: reason lists which).
-- params / metrics / floors / library_versions are JSON; artifact_dir holds segmentation.joblib + classifier.joblib
create table if not exists ml.model_registry (
    version varchar primary key, as_of timestamp not null, run_id varchar not null, created_at timestamp not null,
    code_version varchar, library_versions varchar, data_snapshot_id varchar, build_seq bigint, params varchar,
    metrics varchar, floors varchar, promoted boolean not null, status varchar not null, reason varchar,
    champion_before varchar, artifact_dir varchar
);
-- daily assignment between re-clusterings (segflow.jobs.assign): the champion's classifier on new customers and
-- customers whose features changed since the last weekly clustering (reason new | changed), and on every
-- customer of a week whose own model was rejected (reason champion_fallback)
create table if not exists ml.segment_assignments_daily (
    as_of timestamp not null, customer_id varchar not null, segment_id varchar not null, probability double,
    model_version varchar not null, reason varchar not null, reference_as_of timestamp, created_at timestamp
);
"""


# Privacy bookkeeping (segflow.jobs.erase, segflow.jobs.consent, the loader's erasure filter). None of these
# tables holds an erased identifier: the erasure list keeps keyed hashes (HMAC-SHA-256), the logs counts.
_PRIVACY_DDL = """
create table if not exists meta.erasure_log (
    erasure_id varchar primary key,
    action varchar not null,
    requested_by varchar not null,
    reference varchar,
    subjects integer not null,
    subject_digests varchar,
    identifiers integer not null,
    rows_erased bigint not null,
    files_changed integer not null,
    status varchar not null,
    detail varchar,
    started_at timestamp not null,
    finished_at timestamp
);
create table if not exists meta.erasure_log_detail (
    erasure_id varchar not null,
    target_kind varchar not null,
    target varchar not null,
    rows_erased bigint not null
);
create table if not exists meta.erasure_list (
    digest varchar not null,
    identifier_kind varchar not null,
    key_id varchar not null,
    erasure_id varchar not null,
    added_at timestamp not null
);
create table if not exists meta.erased_rows (
    load_id varchar not null,
    stream varchar not null,
    rows_erased bigint not null,
    erasure_id varchar,
    erased_at timestamp not null
);
"""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def raw_table_ddl(stream: str) -> str:
    columns = (*canonical.columns(stream), *canonical.pseudonym_columns(stream))
    cols = ", ".join(f"{_quote(c)} varchar" for c in columns)
    return (f"create table if not exists raw.{stream} (_load_id varchar not null, _source_file varchar not null, "
            f"_source_row bigint not null, {cols})")


# columns added to meta (bare name) and ml (schema.table) tables after they first shipped: appended to a warehouse created before them
_ADDED_COLUMNS = (
    ("load_manifest", "damage", "varchar"),
    ("load_manifest", "previous_load_id", "varchar"),
    ("load_rejects", "reason_code", "varchar"),
    # drift: pinned-bin PSI + KS per test, multiplicity-corrected verdict (docs/drift.md)
    ("ml.drift_runs", "run_kind", "varchar"),
    ("ml.drift_runs", "baseline_as_of", "timestamp"),
    ("ml.drift_runs", "tests", "integer"),
    ("ml.drift_runs", "drift_tests", "integer"),
    ("ml.drift_runs", "reasons", "varchar"),
    ("ml.drift_runs", "max_centroid_shift", "double"),
    ("ml.drift_runs", "silhouette_drop", "double"),
    ("ml.drift_metrics", "comparison", "varchar"),
    ("ml.drift_metrics", "scope", "varchar"),
    ("ml.drift_metrics", "ks_stat", "double"),
    ("ml.drift_metrics", "p_value", "double"),
    ("ml.drift_metrics", "p_adjusted", "double"),
    ("ml.drift_metrics", "n_reference", "bigint"),
    ("ml.drift_metrics", "n_current", "bigint"),
    ("ml.segments", "name_rule", "varchar"),  # the naming rule behind segment_name (issue 9)
)


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    return {c for (c,) in con.execute(
        "select column_name from duckdb_columns() where database_name = current_database() "
        "and schema_name = ? and table_name = ?", [schema, table]).fetchall()}


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw, meta and ml tables (idempotent); a column added since a table was created is appended
    to it (null for the rows written before)."""
    con.execute(_META_DDL)
    con.execute(_ML_DDL)
    con.execute(_PRIVACY_DDL)
    for qualified, column, kind in _ADDED_COLUMNS:
        schema, _, table = qualified.rpartition(".")
        schema = schema or "meta"
        if column not in _columns(con, schema, table):
            con.execute(f"alter table {schema}.{table} add column {column} {kind}")
    for stream in canonical.STREAMS:
        con.execute(raw_table_ddl(stream))
        present = _columns(con, "raw", stream)
        for column in (*canonical.columns(stream), *canonical.pseudonym_columns(stream)):
            if column not in present:
                con.execute(f"alter table raw.{stream} add column {_quote(column)} varchar")


# The activation store (segflow.activation; docs/activation.md): its own DuckDB file, <home>/activation.duckdb,
# whose catalog is named `activation` (so `activation.trigger_outbox`, also from a warehouse session that ATTACHes
# it). Apart from the warehouse so that sending and the near-real-time triggers never wait for a dbt build.
_ACTIVATION_DDL = """
-- the delivery ledger: one row per batch (idempotency key) and destination; a delivered batch is never sent again
create table if not exists deliveries (
    idempotency_key varchar not null, destination varchar not null, kind varchar not null, reference varchar,
    records integer not null, status varchar not null, attempts integer not null, http_status integer,
    last_error varchar, first_attempt_at timestamp not null, finished_at timestamp not null,
    primary key (idempotency_key, destination)
);
-- batches that still failed after the retries (or got a permanent 4xx): the payload, to replay
create table if not exists dead_letter (
    idempotency_key varchar not null, destination varchar not null, kind varchar not null, reference varchar,
    records integer not null, payload varchar not null, attempts integer not null, http_status integer,
    last_error varchar, dead_at timestamp not null, replayed_at timestamp,
    primary key (idempotency_key, destination)
);
-- one row per trigger ever detected (trigger_key unique: emitted exactly once); status pending | sent | dead
create table if not exists trigger_outbox (
    trigger_key varchar primary key, trigger_type varchar not null, customer_id varchar not null,
    product_id varchar, reference_event_id varchar not null, event_at timestamp not null, details varchar,
    source_file varchar, file_landed_at timestamp, detected_at timestamp not null, status varchar not null,
    idempotency_key varchar, sent_at timestamp
);
-- the trigger detector's recent events (trigger_state_hours of event time) and the landing files it has read
create table if not exists trigger_events (
    event_id varchar primary key, customer_id varchar not null, event_type varchar not null,
    occurred_at timestamp not null, product_id varchar, price double, source_file varchar,
    file_landed_at timestamp, ingest_run bigint not null
);
create table if not exists trigger_files (
    file_path varchar not null, size_bytes bigint not null, mtime_ns bigint not null, stream varchar not null,
    rows_read bigint not null, read_at timestamp not null, primary key (file_path, size_bytes, mtime_ns)
);
-- consent decisions found in landing files not yet built (a withdrawal suppresses triggers at once)
create table if not exists consent_updates (
    customer_id varchar not null, purpose varchar not null, is_granted boolean not null,
    recorded_at timestamp not null, source_file varchar
);
create table if not exists trigger_runs (
    run_seq bigint primary key, started_at timestamp not null, finished_at timestamp not null,
    files_read integer not null, events_read bigint not null, watermark timestamp, reference_from varchar,
    detected integer not null, suppressed integer not null, sent integer not null, dead integer not null
);
"""


def ensure_activation_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the activation store's tables (idempotent); ``con`` is a connection to activation.duckdb."""
    con.execute(_ACTIVATION_DDL)
