"""The one settings object of segflow.

Every tunable lives here, read from the environment (prefix ``SEGFLOW_``) or a ``.env`` file in the
working directory. ``SEGFLOW_HOME`` holds all state: the warehouse, landing files, artifacts and the
demo's Airflow home, so pointing it at an empty folder gives a clean, independent installation.
"""

from __future__ import annotations

import os
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from segflow.errors import InputError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
"""The source checkout (holds ``dbt_project/`` and ``dags/``)."""

DEFAULT_FEATURES = (
    # chosen on evidence (docs/segmentation.md: ARI per feature set on generator seeds 1-5)
    "recency_days",
    "days_since_last_activity",
    "tenure_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "sessions_28d",
    "sessions_per_week",  # marts.customer_engagement
    "pages_per_session",
    "avg_session_minutes",
    "cart_abandonment_rate",
    "app_event_share",
    "email_click_rate",
    "email_open_rate",
    "orders_per_session",  # derived: frequency / session_count (ml.features.DERIVED_FEATURES)
    "active_week_share",  # marts.customer_activity_trend
    "activity_trend",  # marts.customer_activity_trend
)
DEFAULT_LOG_FEATURES = (
    "recency_days", "days_since_last_activity", "tenure_days", "frequency", "monetary", "avg_order_value",
    "sessions_28d", "sessions_per_week", "pages_per_session", "avg_session_minutes",
)


def _default_home() -> Path:
    return PROJECT_ROOT / ".segflow"


class SettingsError(InputError):
    """A SEGFLOW_* setting that does not validate."""


class Settings(BaseSettings):
    # nan/inf are not thresholds: every comparison with nan is false, so a gate would silently pass
    model_config = SettingsConfigDict(env_prefix="SEGFLOW_", env_file=".env", extra="ignore", allow_inf_nan=False)

    home: Path = Field(default_factory=_default_home, description="Folder holding all segflow state.")

    # --- warehouse -------------------------------------------------------------------------------
    lock_timeout_seconds: float = Field(
        60.0, ge=0, description="How long a step (dbt included) waits for the warehouse lock before giving up."
    )
    duckdb_memory_limit: str = Field(
        "", pattern=r"^(|[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB))$",
        json_schema_extra={"allowed": "a size such as 4GB, 512MB or 1.5GiB, or empty for half the RAM"},
        description="DuckDB memory limit for builds and jobs (e.g. '4GB'); empty = half of this machine's RAM. "
        "Past it DuckDB spills to SEGFLOW_DUCKDB_TEMP_DIR instead of growing.")
    duckdb_threads: int = Field(0, ge=0, description="DuckDB worker threads; 0 = one per CPU core.")
    duckdb_temp_dir: Path | None = Field(
        None, description="Where DuckDB spills; default $SEGFLOW_HOME/tmp/duckdb.")

    # --- load ------------------------------------------------------------------------------------
    load_min_file_age_seconds: float = Field(
        60.0, ge=0, description="A landing file without a <name>.ready marker is loaded once it has not changed "
        "for this long (a file still being written is left for a later run).")
    load_max_record_bytes: int = Field(
        1 << 20, ge=1024, description="A record (line) longer than this is rejected at load (record_too_large) "
        "instead of being loaded; the rest of its file loads.")

    # --- dbt ---------------------------------------------------------------------------------------
    dbt_project_dir: Path = PROJECT_ROOT / "dbt_project"
    dbt_threads: int = Field(2, ge=1)
    dbt_executable: Path | None = Field(
        None, description="The dbt command (e.g. a wrapper script or dbt in another environment); default: the dbt "
        "installed beside segflow.", json_schema_extra={"allowed": "the path of an executable file, or empty"})
    session_timeout_minutes: int = Field(30, ge=1, description="Inactivity gap that ends a session.")
    clock_skew_minutes: int = Field(
        60, ge=0, description="An event dated later than its file's load time by more than this is quarantined "
        "(implausible_timestamp); it never moves the build's as-of bound.")
    min_event_date: date = Field(
        date(1980, 1, 1), description="Events dated before this are quarantined (implausible_timestamp): catches "
        "epoch-zero and 0001-01-01 defaults. Lower it for older history.")
    max_lateness_hours: int = Field(
        168, ge=1, description="An event received (received_at) more than this many hours after it occurred is "
        "quarantined as late_event instead of being merged into sessions closed long ago.")
    default_currency_minor_units: int = Field(
        2, ge=0, le=2, description="Decimals of an amount whose currency is missing or not in the currencies seed: "
        "a price or revenue with more (0.001 of a 2-decimal currency) is quarantined as price_precision, never "
        "rounded.")
    max_session_hours: float = Field(
        24, gt=0, description="A session longer than this from first to last event is quarantined as "
        "runaway_session (a bot, a stuck tracker) and kept out of fct_sessions.")
    recent_window_days: int = Field(28, ge=1, description="Window of the 'recent activity' features (e.g. "
                                    "sessions_28d).")
    clv_calibration_end: date | None = Field(
        None, description="Last day of the calibration period of customer_purchase_summary (the CLV purchase "
        "summary); the days after it, up to the as-of, are its holdout. Unset = no holdout.")

    # --- privacy (segflow/privacy.py, docs/privacy.md) --------------------------------------------------------
    pii_key: SecretStr | None = Field(
        None, description="Secret key of the HMAC-SHA-256 that pseudonymizes e-mail addresses (at least 32 "
        "characters). Unset: the public demo key, accepted only in a demo home (data written by the generator).")
    pii_key_file: Path | None = Field(
        None, description="A file holding the PII key (e.g. a Docker or Kubernetes secret), instead of "
        "SEGFLOW_PII_KEY.")
    pii_retention_days: int = Field(
        90, ge=0, description="Raw PII (raw.*.email) of files loaded more than this many days ago is removed by "
        "`segflow purge-pii` and the daily DAG (pseudonyms are kept); 0 = keep raw PII.")
    pii_salt: str | None = Field(None, description="Removed: e-mail is pseudonymized with SEGFLOW_PII_KEY.",
                                 json_schema_extra={"allowed": "nothing (unset it)"})

    # --- sources and identity -------------------------------------------------------------------------
    consent_policy: Literal["require_recorded", "collected_under_consent"] = Field(
        "require_recorded",
        description="Consent of a customer with no recorded decision (no consent record, no profile flag): "
        "require_recorded = not processed; collected_under_consent = the deployment's events were collected "
        "under consent, so they are processed.")
    identity_max_links: int = Field(
        20, ge=2, description="An e-mail or alias that links more distinct user ids than this is treated as a "
        "bad identifier: cut from the identity graph and reported.")
    identity_max_component_size: int = Field(
        50, ge=2, description="An identity-graph component with more user ids than this is not merged into one "
        "customer (each user stays itself) and is reported.")

    # --- data-quality gate: business thresholds --------------------------------------------------------
    dq_max_quantity: int = Field(
        10_000, ge=1, description="Largest plausible quantity on one cart or order line (raise it for wholesale).")
    dq_max_price: float = Field(100_000.0, gt=0, description="Largest plausible unit price.")
    dq_min_identified_share: float = Field(
        0.01, ge=0, le=1, description="Smallest share of events (as of the run) that must resolve to a known "
        "customer; below it identity is probably broken (e.g. a user-id column mapped wrongly).")
    dq_sample_rows: int = Field(
        200_000, ge=1000, description="A table larger than this is validated on a repeatable sample of this many "
        "rows plus every row that decides a strict check (each checked column's minimum and maximum, one row per "
        "value of a set-checked column, rows with nulls), so memory stays bounded whatever the history.")

    # --- data-quality gate: freshness, volume, learned distributions, profiles, alerts ------------------
    dq_window_days: int = Field(
        7, ge=1, description="Window (days before the run's as-of) of the gate's run metrics: events, sessions and "
        "orders in it, purchase share, median session length and order value. A whole week keeps the weekday "
        "rhythm out of the run-to-run comparison.")
    dq_max_staleness_hours: float = Field(
        48, gt=0, description="Freshness: the newest staged event must have been received at most this many hours "
        "before the run's as-of (not the wall clock).")
    dq_max_volume_change: float = Field(
        0.5, gt=0, description="Volume change vs the previous passing run: events, sessions and orders in the "
        "window may move by at most this fraction (0.5 = from half to one and a half times).")
    dq_distribution_tolerance: float = Field(
        0.5, gt=0, description="Learned distributions: purchase share, median session minutes and median order "
        "value must lie within this fraction of their median over earlier passing runs (the band widens to "
        "3 median absolute deviations when the history is noisier than that). Catches breakage, not drift.")
    dq_baseline_runs: int = Field(8, ge=1, description="Earlier passing runs that form the learned baseline.")
    dq_min_rows_for_comparison: int = Field(
        100, ge=1, description="A volume or distribution is compared only when it rests on at least this many "
        "rows, now and in the reference run (smaller counts are noise).")
    dq_max_reject_rate: float = Field(
        0.05, ge=0, le=1, description="Largest share of the rows delivered since the previous gate run that may "
        "be rejected at load.")
    dq_max_quarantine_rate: float = Field(
        0.05, ge=0, le=1, description="Largest share of the rows loaded since the previous gate run that staging "
        "may quarantine.")
    dq_outlier_iqr: float = Field(
        3.0, gt=0, description="Outlier rate (data-quality history): a customer feature further than this many "
        "interquartile ranges outside the quartiles counts as an outlier.")
    dq_min_age: int = Field(13, ge=0, description="Youngest plausible customer age (profile age band).")
    dq_max_age: int = Field(110, ge=1, description="Oldest plausible customer age (profile age band).")
    dq_min_valid_profile_share: float = Field(
        0.99, ge=0, le=1, description="Share of profile versions whose e-mail format and age band must be "
        "plausible (a few typos pass; a broken column does not).")
    alert_webhook_url: str = Field(
        "", description="When set, a failed gate or publication POSTs a JSON alert here (Airflow "
        "on_failure_callback); it is always logged. Empty = log only.")
    alert_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of the alert webhook request.")

    # --- Airflow: how dbt appears in segflow_elt (docs/airflow.md) ------------------------------------
    airflow_dbt_tasks: Literal["per_model", "single"] = Field(
        "per_model", description="per_model: every dbt model (and its tests) is a task of the segflow_elt DAG, "
        "rendered by astronomer-cosmos from the dbt manifest (one `dbt build` producer, per-model watcher "
        "tasks); single: one dbt_build task. Read when the DAG file is parsed.")
    airflow_dbt_watcher_timeout_seconds: float = Field(
        600.0, gt=0, description="How long a per-model watcher task may wait for the build to report its model "
        "before it fails (it never runs dbt itself).")

    # --- segmentation --------------------------------------------------------------------------------
    features: tuple[str, ...] = DEFAULT_FEATURES
    k_min: int = Field(3, ge=2)
    k_max: int = Field(10, ge=2)
    silhouette_sample: int = Field(4000, ge=100, description="Rows sampled to score silhouette.")
    min_silhouette: float = Field(0.10, ge=-1, le=1, description="Model-quality floor: below it nothing is published.")
    min_customers: int = Field(50, ge=2, description="Fewer customers than this fails the data gate.")
    min_events: int = Field(100, ge=1, description="Fewer staged events than this fails the data gate.")
    random_seed: int = Field(42, ge=0, le=2**32 - 1)
    segment_match_max_distance: float = Field(
        3.0, gt=0,
        description="Largest centroid distance (standard deviations of the previous run, over every feature) at "
        "which a cluster may keep a previous segment's id; beyond it the meaning has moved and the cluster gets "
        "a fresh id (docs/segmentation.md gives the distances measured week to week).",
    )

    # --- segmentation: features, model selection, identities, rule segments (issue 9, docs/segmentation.md) ---
    log_features: tuple[str, ...] = Field(
        DEFAULT_LOG_FEATURES, description="Features compressed with signed log1p before scaling (spend, counts, "
        "days: heavy right tails). Names not in `features` are ignored.")
    missing_flag_weight: float = Field(
        1.0, ge=0, le=10, description="Weight of the 0/1 missing-value flag appended for every feature that has "
        "missing values (e.g. no orders: no orders_per_session); 0 = impute without flags.")
    segment_algorithms: tuple[Literal["kmeans", "gmm", "agglomerative"], ...] = Field(
        ("kmeans", "gmm"), min_length=1, description="Algorithms the weekly model selection compares (simplest "
        "first: kmeans, gmm, agglomerative). k-means switches to MiniBatchKMeans above "
        "segment_minibatch_threshold rows; agglomerative fits on a sample.")
    selection_sample: int = Field(
        3000, ge=200, description="Rows sampled (seeded) on which every (algorithm, k) is fitted and scored.")
    bootstrap_runs: int = Field(
        2, ge=0, le=50, description="Resamples per candidate for bootstrap stability (mean ARI against the fit).")
    min_segment_share: float = Field(
        0.02, ge=0, lt=0.5, description="Over-segmentation guard: a candidate whose smallest segment holds less "
        "than this share of customers is not admissible.")
    min_stability: float = Field(
        0.6, ge=0, le=1, description="A candidate whose bootstrap stability (mean ARI) is below this is not "
        "admissible.")
    selection_tolerance: float = Field(
        0.5, ge=0, description="Candidates within this many composite ranks (mean rank on silhouette, "
        "Davies-Bouldin, Calinski-Harabasz, stability) of the best count as equally good: the simplest of them "
        "(fewest segments, then kmeans < gmm < agglomerative) is taken.")
    selection_keep_tolerance: float = Field(
        3.0, ge=0, description="Last week's (algorithm, k) is kept while within this many composite ranks of the "
        "best candidate (the evidence for a change is not clear); 0 = always re-choose.")
    segment_merge_distance: float = Field(
        1.0, ge=0, description="Segments whose centroids lie closer than this (model space: standard deviations) "
        "are merged after the fit (near-identical profiles).")
    segment_fit_sample: int = Field(
        20000, ge=1000, description="Rows a Gaussian mixture or agglomerative fit uses at most; every row is then "
        "assigned (posterior / nearest centroid).")
    segment_minibatch_threshold: int = Field(
        100_000, ge=1000, description="Above this many customers k-means runs as MiniBatchKMeans.")
    lineage_min_overlap: float = Field(
        0.5, gt=0, le=1, description="A cluster keeps a previous segment's id only if their members' Jaccard "
        "index (customers present both weeks) is at least this (and the centroids are within "
        "segment_match_max_distance).")
    lineage_event_share: float = Field(
        0.2, gt=0, le=1, description="A split (merge) is recorded when a previous segment gives (a current "
        "cluster takes) at least this share of its members to (from) a segment other than its continuation.")
    rule_segments_file: Path | None = Field(
        None, description="YAML of hybrid rule segments (name + predicate over features, e.g. `clv > 500 and "
        "days_since_last_order <= 30`); default: <home>/rule_segments.yml when it exists.")


    # --- drift and monitoring (segflow.jobs.drift, segflow.jobs.monitoring; docs/drift.md) ----------------
    psi_warn: float = Field(
        0.10, ge=0, description="Effect-size floor: a feature test (population or per segment) counts as drift "
        "only when it is significant after multiplicity correction AND its PSI on the pinned bins is at least this.")
    psi_bins: int = Field(10, ge=2, description="Quantile bins per feature, learned from the reference and kept.")
    drift_alpha: float = Field(
        0.01, gt=0, lt=1, description="Significance level of the week's drift tests after multiplicity correction "
        "(family-wise with Holm: the chance that a stable week shows any significant test).")
    drift_multiplicity: Literal["holm", "bh"] = Field(
        "holm", description="Correction over all of a week's tests: holm (family-wise error) or bh "
        "(Benjamini-Hochberg false discovery rate, more sensitive, more false alarms).")
    drift_share_psi_floor: float = Field(
        0.05, ge=0, description="Effect-size floor of segment-share drift (PSI of the share vector; 0.05 is e.g. "
        "a 10-point move between two segments of 20% and 30%).")
    drift_features: tuple[str, ...] = Field(
        ("sessions_7d", "sessions_28d", "orders_28d", "revenue_28d", "active_days_28d"),
        description="Features drift-tested (those present in the snapshot). Only counts over a fixed trailing "
        "window: ages and lifetime totals (recency, tenure, frequency, monetary) move every week by construction, "
        "and lifetime ratios (AOV, pages per session, click rates) narrow as each customer's history grows.")
    drift_baseline_weeks: int = Field(
        3, ge=1, description="The fixed reference: the first this-many accepted weeks (from "
        "drift_baseline_start), pooled. Slow drift accumulates against it; it does not move with last week.")
    drift_baseline_start: date | None = Field(
        None, description="First week of the fixed reference window (e.g. after a deliberate re-segmentation); "
        "empty = the first accepted week on record.")
    drift_segment_min_size: int = Field(
        50, ge=10, description="Segments with fewer customers (in either week) get no per-segment drift tests.")
    drift_centroid_shift_warn: float = Field(
        0.5, gt=0, description="Warn when a segment's profile moves more than this many population SDs "
        "(RMS over features) against last week.")
    drift_silhouette_drop_warn: float = Field(
        0.05, gt=0, description="Warn when this week's silhouette is this much below the median of the earlier "
        "weeks.")
    drift_recluster_on_drift: bool = Field(
        True, description="The daily drift screen (DAG segflow_elt) triggers an early run of "
        "segflow_segments_weekly when its verdict is drift (recorded in ml.recluster_triggers).")
    drift_segment_model: Literal["previous_champion", "current_champion", "own_fit"] = Field(
        "previous_champion", description="Which model labels the customers of both weeks for the per-segment and "
        "share tests: the registry's champion before this week's model was registered (previous_champion), the "
        "champion after it (current_champion), or each week its own clustering (own_fit, the pre-registry "
        "behaviour). See docs/model-registry.md for the measured false alarms of each.")
    spc_baseline_weeks: int = Field(
        6, ge=3, description="Weeks of a segment's KPI history that set its control chart's centre and sigma; "
        "no SPC before a segment has this many weeks plus one.")
    spc_rules: tuple[int, ...] = Field(
        (1, 2, 3, 4), description="Western Electric run rules applied (1: beyond 3 sigma, 2: 2 of 3 beyond 2, "
        "3: 4 of 5 beyond 1, 4: 8 on one side).")
    stl_days: int = Field(56, ge=21, description="Days of daily activity per segment fed to STL (weekly period).")
    stl_break_k: float = Field(
        6.0, gt=0, description="A day is an outlier break when its robust STL residual is beyond this many noise "
        "scales (1.4826 x MAD of the plain STL residuals); a level shift must also move this many scales. Only "
        "the latest week is recorded. 6 keeps pure noise under ~5% of segment-weeks (docs/drift.md).")
    stl_level_change: float = Field(
        0.25, gt=0, description="A level shift: the STL trend of a segment's daily sessions moved by at least this "
        "share of its level over the last 7 days.")

    @field_validator("sink_url")
    @classmethod
    def _sink_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return value

    @field_validator("spc_rules")
    @classmethod
    def _known_rules(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or not set(value) <= {1, 2, 3, 4}:
            raise ValueError("spc_rules must be a non-empty subset of 1, 2, 3, 4")
        return value

    # --- CLV (segflow/jobs/clv.py, docs/clv.md) ------------------------------------------------------------
    clv_horizon_weeks: int = Field(
        52, ge=1, le=520, description="Predictive CLV covers the purchases expected in this many weeks after the "
        "week's as-of (ml.customer_clv.expected_purchases and predictive_clv).")
    clv_annual_discount_rate: float = Field(
        0.10, ge=0, lt=1, description="Yearly rate at which future margin is discounted in predictive CLV (0.10 = "
        "a purchase a year ahead counts 1/1.1); each week's expected purchases are discounted from that week's end.")
    clv_margin: float = Field(
        1.0, gt=0, le=1, description="Share of revenue kept as margin: predictive CLV = margin x expected spend x "
        "discounted expected purchases. 1.0 (the default) gives CLV in revenue, comparable with historic CLV "
        "(net revenue to date); set your gross margin for a profit view.")
    clv_min_repeat_customers: int = Field(
        50, ge=2, description="Fewer customers with a repeat purchase day than this: the week's CLV fit is not "
        "attempted and ml.clv_models records status not_ready (BG/NBD's dropout and Gamma-Gamma's spend are "
        "learned from repeat customers only).")

    # --- scheduling ------------------------------------------------------------------------------------
    week_start_weekday: int = Field(0, ge=0, le=6, description="0=Monday: the day a segment week closes.")
    skip_when_no_new_data: bool = Field(
        True, description="A segflow_elt run whose interval received no landing file (none loaded now or before "
        "for its days) ends green with its load_raw task skipped ('no new data') and nothing downstream run, "
        "instead of building and gating unchanged data. False: the run builds and the gate judges freshness.")

    # --- embedded Airflow: `segflow demo`, `segflow airflow ui` (segflow/airflow_services.py) ------------
    airflow_port: int = Field(
        8080, ge=1, le=65535, description="Port of the embedded Airflow's api-server (UI, REST and the task "
        "Execution API). AIRFLOW__API__PORT, when exported, wins. Not 8793/8794 (Airflow's log servers).")
    airflow_start_timeout_seconds: float = Field(
        180.0, gt=0, description="How long the demo and `segflow airflow ui` wait for the api-server to answer "
        "and the dag-processor to register the DAGs.")
    demo_run_timeout_seconds: float = Field(
        1800.0, gt=0, description="How long the demo waits for one DAG run (a backfilled ELT day or a weekly run) "
        "to finish before giving up.")

    # --- anomalies (segflow.jobs.anomalies, ml.anomaly; docs/anomalies.md) ------------------------------
    anomaly_window_days: int = Field(
        28, ge=1, le=366, description="Days of sessions (before the as-of) the traffic features of the anomaly "
        "step are measured over; a customer without a session in it is scored on median values (never flagged).")
    anomaly_min_cadence_gaps: int = Field(
        10, ge=1, description="Fewest gaps between events (over the window) before events_per_minute is measured: "
        "a rate from two or three gaps is noise, and one short visit must not look like a bot.")
    anomaly_trees: int = Field(100, ge=10, le=5000, description="Isolation Forest: number of trees.")
    anomaly_tree_samples: int = Field(256, ge=16, description="Isolation Forest: rows each tree is grown on.")
    anomaly_isolation_threshold: float = Field(
        0.6, gt=0.5, lt=1, description="Isolation score s (Liu et al.: in (0, 1), 0.5 = nothing distinct) above "
        "which the forest calls a customer anomalous.")
    anomaly_density_neighbors: int = Field(
        25, ge=2, description="Local Outlier Factor neighbourhood. A group of similar customers smaller than "
        "neighbors / density_sample of the population (about 5% by default) counts as anomalous; a larger one "
        "is a segment.")
    anomaly_density_sample: int = Field(
        512, ge=100, description="Distinct customers drawn as LOF's reference set (keeps the step linear in the "
        "number of customers).")
    anomaly_density_threshold: float = Field(
        3.0, gt=1, description="LOF above which the density detector calls a customer anomalous (3: a third of "
        "the local density of its neighbours).")
    anomaly_rule: Literal["both", "either"] = Field(
        "both", description="'both': flagged only when the isolation and the density detector agree; 'either': "
        "when one of them fires.")
    anomaly_min_unusual_features: int = Field(
        2, ge=0, description="Features with |robust z| above anomaly_unusual_z a flagged customer needs (0 = no "
        "such condition): one extreme attribute alone is a quirk, not a different kind of customer.")
    anomaly_unusual_z: float = Field(
        3.5, gt=0, description="Robust z-score (median / MAD) beyond which a feature counts as unusual and is "
        "listed as a reason (3.5: Iglewicz & Hoaglin's cut-off for modified z-scores).")
    anomaly_reasons: int = Field(3, ge=1, le=10, description="Reasons (features) stored per customer, largest first.")
    anomaly_exclude_from_segments: bool = Field(
        True, description="Keep customers flagged for a week out of that week's segmentation and segment exports.")

    # --- business validation: segment KPIs and A/B readouts (docs/business-metrics.md) -----------------
    kpi_window_days: int = Field(
        28, ge=1, le=366, description="Segment KPIs: length in days of the current window (the days before "
        "as_of) for conversion, AOV, revenue and retention; retention compares it with the window of the same "
        "length before it.")
    kpi_active_on: Literal["order", "activity"] = Field(
        "order", description="What makes a customer 'active' for retention and churn: 'order' (placed an order "
        "that day) or 'activity' (an interactive event or an order).")
    churn_inactive_days: int = Field(
        60, ge=1, le=3660, description="Segment KPIs: a customer active at least once before as_of has churned "
        "when their last active day is this many days or more before as_of.")
    ab_min_arm_size: int = Field(
        100, ge=1, description="A/B readout: a segment row whose control or treatment arm has fewer customers "
        "is flagged small_sample (wide interval, normal approximation least reliable).")
    ab_confidence: float = Field(
        0.95, gt=0.5, lt=1, description="Confidence level of the A/B readout's uplift intervals and of the "
        "segment KPI intervals.")

    # --- weekly HTML report (segflow/report; docs/report.md) -------------------------------------------------
    report_projection_sample: int = Field(
        2000, ge=100, le=100_000, description="Customers drawn (seeded with random_seed) for the report's 2-D "
        "projection: enough to see the segments' shapes, few enough to keep the page light.")
    report_top_paths: int = Field(
        10, ge=1, le=100, description="Journey paths (marts.journey_top_paths, by sessions) listed in the report.")
    report_url_base: str = Field(
        "", description="URL at which a browser reaches <home>/reports (e.g. a web server or the Airflow UI "
        "plugin's route); the weekly DAG's 'Weekly report' task link is this + /weekly/<file>. Empty: in Airflow, "
        "the Segments plugin's route /segflow/report/<file> (behind the Airflow login); from the CLI, a file:// URL.")
    # --- Segments page in the Airflow UI (segflow.jobs.publish_status, segflow.ui; docs/ui.md) ---------------
    status_trend_weeks: int = Field(
        8, ge=2, le=104, description="Weeks of segment sizes the published status artifact "
        "(exports/status/latest.json) keeps for the Segments page's trend sparklines.")
    # --- activation: exports, CRM sink, campaigns, near-real-time triggers (segflow.activation; docs/activation.md)
    campaigns_file: Path | None = Field(
        None, description="YAML mapping segments to campaign actions (matched on segment id, name or naming "
        "rule), exported with each delta; default: <home>/campaigns.yml when it exists.")
    sink_url: str = Field(
        "", json_schema_extra={"allowed": "an http:// or https:// URL, or empty (sink disabled)"}, description="HTTP endpoint of the CRM / CDP that receives segment deltas and triggers as JSON "
        "batches (POST). Empty = sink disabled: exports and the trigger outbox are still written.")
    sink_token: SecretStr | None = Field(
        None, description="Bearer token sent to the sink (Authorization header); unset = no header.")
    sink_batch_size: int = Field(500, ge=1, le=100_000, description="Records per request to the sink.")
    sink_max_retries: int = Field(
        5, ge=0, le=50, description="Retries of a batch after a 5xx, 408, 425, 429 or a connection error, before "
        "the batch is dead-lettered (other 4xx answers dead-letter at once).")
    sink_backoff_seconds: float = Field(
        0.5, ge=0, description="Base of the exponential backoff between retries: attempt n waits a random time "
        "in [0, base x 2^n] (full jitter), at most sink_backoff_max_seconds.")
    sink_backoff_max_seconds: float = Field(
        30.0, ge=0, description="Longest wait between two attempts, a Retry-After answer included.")
    sink_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one request to the sink.")
    sink_rate_limit: float = Field(
        10.0, gt=0, description="Most requests per second sent to the sink (retries included).")
    trigger_cart_minutes: int = Field(
        60, ge=1, description="Abandoned cart: a customer's add_to_cart with no purchase within this many minutes "
        "(event time) of the session's last add_to_cart.")
    trigger_offer_min_views: int = Field(
        3, ge=2, description="Session offer: views of the same high-value product in one session that trigger it.")
    trigger_offer_min_price: float = Field(
        100.0, ge=0, description="Session offer: a product counts as high-value from this unit price.")
    trigger_state_hours: int = Field(
        48, ge=2, description="Events the trigger detector keeps (event time, before its newest event): must "
        "exceed a session plus the cart window.")
    trigger_reference_timeout_seconds: float = Field(
        5.0, ge=0, description="How long a trigger run waits for a warehouse reader slot to refresh consent, "
        "identities and bot flags; when the warehouse stays busy (a build) it uses its last copy.")
    # --- model registry, promotion floors, daily assignment (segflow.jobs.registry, segflow.jobs.assign;
    # docs/model-registry.md) ----------------------------------------------------------------------------------
    registry_min_silhouette: float = Field(
        0.10, ge=-1, le=1, description="Promotion floor: a weekly model version whose silhouette (sampled, model "
        "space) is below this is rejected and the champion stays.")
    registry_min_stability: float = Field(
        0.50, ge=-1, le=1, description="Promotion floor: adjusted Rand index between the new segmentation and the "
        "champion's segmentation of the same customers (the champion's model scores this week's rows). Not "
        "applied to the first version (no champion).")
    registry_min_segment_share: float = Field(
        0.02, ge=0, lt=1, description="Promotion floor: the smallest segment must hold at least this share of the "
        "week's customers.")
    registry_min_macro_f1: float = Field(
        0.80, ge=0, le=1, description="Promotion floor: held-out macro-F1 of the version's assignment classifier "
        "(without a classifier a version is never promoted: it could not assign customers daily).")
    assign_cv_folds: int = Field(
        3, ge=2, le=10, description="Stratified folds of the assignment classifier's grid search (macro-F1).")
    assign_grid_sample: int = Field(
        20000, ge=500, description="The grid search runs on a stratified sample of at most this many training "
        "rows; the chosen model is then refitted on every row.")
    assign_ensemble_size: int = Field(
        200, ge=10, le=2000, description="Trees of the random forest and iterations of the gradient boosting "
        "candidates (fixed, not searched: beyond ~200 only the time grows).")
    assign_holdout_share: float = Field(
        0.25, gt=0, lt=0.5, description="Share of the week's customers held out (stratified) to measure the "
        "classifier's macro-F1, per-segment F1 and permutation importance.")
    assign_importance_repeats: int = Field(
        5, ge=1, le=50, description="Shuffles per feature of the permutation importance (macro-F1 drop).")
    assign_calendar_features: tuple[str, ...] = Field(
        ("recency_days", "days_since_last_activity", "tenure_days"), description="Day counts that grow by the "
        "elapsed days on their own: the daily assignment ages last week's values by the days since, so only a "
        "real change (e.g. a new order resetting recency) marks a customer as changed.")
    assign_passive_features: tuple[str, ...] = Field(
        ("sessions_28d", "sessions_per_week", "active_week_share", "activity_trend"), description="Features that "
        "move with the calendar alone (trailing windows, rates over tenure) and are therefore not compared by the "
        "daily assignment: any new activity also resets days_since_last_activity, which is compared. Measured: "
        "comparing them marks 95% of the demo's customers as changed after two days, leaving them out 74%.")

    @field_validator("home", "dbt_project_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("pii_salt")
    @classmethod
    def _salt_removed(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError("is no longer used: e-mail is pseudonymized with a keyed HMAC-SHA-256; set "
                             "SEGFLOW_PII_KEY instead (the next build recomputes every pseudonym)")
        return None

    @field_validator("duckdb_temp_dir", "clv_calibration_end", "dbt_executable", "rule_segments_file",
                     "campaigns_file", "sink_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        """``SEGFLOW_X=`` means "not set" for an optional setting (an empty path would otherwise be the cwd)."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("home", "duckdb_temp_dir")
    @classmethod
    def _folder(cls, value: Path | None) -> Path | None:
        if value is not None and value.expanduser().exists() and not value.expanduser().is_dir():
            raise ValueError(f"{value} exists and is not a folder")
        return value

    @field_validator("dbt_project_dir")
    @classmethod
    def _dbt_project(cls, value: Path) -> Path:
        if not (value / "dbt_project.yml").is_file():
            raise ValueError(f"{value} holds no dbt_project.yml")
        return value

    @field_validator("dbt_executable")
    @classmethod
    def _executable(cls, value: Path | None) -> Path | None:
        if value is not None and not (value.is_file() and os.access(value, os.X_OK)):
            raise ValueError(f"{value} is not an executable file")
        return value

    @field_validator("k_max")
    @classmethod
    def _k_range(cls, value: int, info) -> int:
        k_min = info.data.get("k_min", 2)
        if value < k_min:
            raise ValueError(f"k_max ({value}) must be >= k_min ({k_min})")
        return value

    @field_validator("dq_max_age")
    @classmethod
    def _age_range(cls, value: int, info) -> int:
        if value < info.data.get("dq_min_age", 0):
            raise ValueError(f"dq_max_age ({value}) must be >= dq_min_age ({info.data.get('dq_min_age')})")
        return value

    # --- derived paths (never configured separately, so one home is always self-consistent) ---------
    @cached_property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @cached_property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @cached_property
    def truth_dir(self) -> Path:
        return self.home / "truth"

    @cached_property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @cached_property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @cached_property
    def reports_dir(self) -> Path:
        """Weekly HTML reports: reports/weekly/segments_<as_of date>.html and latest.html."""
        return self.home / "reports"

    @cached_property
    def activation_path(self) -> Path:
        """The activation store (delivery ledger, dead letters, trigger outbox): apart from the warehouse, so
        sending and triggers never wait for (or block) a warehouse writer."""
        return self.home / "activation.duckdb"

    @cached_property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @cached_property
    def duckdb_temp_path(self) -> Path:
        return self.duckdb_temp_dir or self.home / "tmp" / "duckdb"

    @cached_property
    def duckdb_memory(self) -> str:
        """The memory limit DuckDB gets: the setting, else half of physical memory."""
        if self.duckdb_memory_limit:
            return self.duckdb_memory_limit.replace(" ", "")
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return "4GB"
        return f"{max(1, total // 2 // 2**20)}MB"

    @cached_property
    def duckdb_thread_count(self) -> int:
        return self.duckdb_threads or os.cpu_count() or 1

    @cached_property
    def dbt_target_dir(self) -> Path:
        return self.artifacts_dir / "dbt" / "target"

    @cached_property
    def dbt_log_dir(self) -> Path:
        return self.artifacts_dir / "dbt" / "logs"

    def ensure_dirs(self) -> None:
        for path in (self.home, self.landing_dir, self.artifacts_dir, self.exports_dir):
            path.mkdir(parents=True, exist_ok=True)


def get_settings(**overrides) -> Settings:
    """Fresh settings from the current environment (not cached: tests and CLI change SEGFLOW_HOME).

    An invalid value (or an unreadable line in ``./.env``) raises :class:`SettingsError`: one line naming the
    variable, the value and what is allowed (see :mod:`segflow.settings_errors`)."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError as SourceError

    from segflow.settings_errors import check_env_file, describe_source_error, describe_validation_error

    problem = check_env_file(Path(".env"))
    if problem:
        raise SettingsError(problem)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(Settings, exc)) from None
    except SourceError as exc:
        raise SettingsError(describe_source_error(Settings, exc)) from None
