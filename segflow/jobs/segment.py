"""Weekly segmentation: recluster customer_features, keep segment ids stable, store the run.

Everything is keyed by ``as_of`` (the ELT's data_interval_end): re-running a week deletes and rewrites
exactly that week's rows, and "the previous run" is always the latest accepted run *before* it, so a
re-run gives identical tables. Drift is :mod:`segflow.jobs.drift`, publication :mod:`segflow.jobs.publish_segments`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from segflow.errors import NotReady
from segflow.jobs.anomalies import exclude_flagged
from segflow.jobs.ml_common import to_naive_utc
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step

__all__ = ["SegmentRun", "recluster", "to_naive_utc"]


@dataclass
class SegmentRun:
    run_id: str
    as_of: datetime
    status: str
    k: int
    silhouette: float
    customers: int
    segments: list[dict] = field(default_factory=list)
    previous_run_id: str | None = None
    algorithm: str = "kmeans"
    selection_reason: str = ""
    lineage: list[dict] = field(default_factory=list)
    rule_segments: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, "as_of": self.as_of.isoformat(), "status": self.status,
                "algorithm": self.algorithm, "k": self.k, "silhouette": round(self.silhouette, 4),
                "customers": self.customers, "selection": self.selection_reason, "segments": self.segments,
                "lineage": self.lineage, "rule_segments": self.rule_segments,
                "previous_run_id": self.previous_run_id}


def _features_frame(settings: Settings, as_of: datetime | None) -> tuple[pd.DataFrame, datetime]:
    from segflow.jobs.segment_data import read_feature_frame

    with connect(settings, read_only=True) as con:
        for table in ("customer_features", "customer_engagement", "customer_activity_trend"):
            if not table_exists(con, "marts", table):
                raise NotReady(f"marts.{table} does not exist: run `segflow build` first.")
        frame = read_feature_frame(con)
    if frame.empty:
        raise NotReady("marts.customer_features is empty: nothing to segment.")
    built_as_of = pd.Timestamp(frame["as_of"].iloc[0]).to_pydatetime()
    if as_of is not None and built_as_of != as_of:
        raise NotReady(f"customer_features is built as of {built_as_of:%Y-%m-%d %H:%M}, not {as_of:%Y-%m-%d %H:%M}:"
                       " run the ELT (segflow run / DAG segflow_elt) for that interval first.")
    return frame, built_as_of


@warehouse_step("segment: recluster")
def recluster(settings: Settings | None = None, as_of: datetime | None = None) -> SegmentRun:
    """Segment customer_features (features, model selection, identities and names as docs/segmentation.md
    describes), evaluate the hybrid rule segments, store the run, its lineage and its transitions."""
    from ml.features import add_derived_features, feature_matrix
    from segflow.jobs.segment_data import load_rule_segments, previous_state
    from segflow.jobs.segment_store import identities_and_names, store_run

    settings = settings or get_settings()
    rules = load_rule_segments(settings)
    frame, as_of = _features_frame(settings, to_naive_utc(as_of))
    frame, anomalies_excluded = exclude_flagged(settings, frame, as_of)  # flagged customers (bots) stay out
    frame = add_derived_features(frame)
    columns = list(settings.features)
    raw = feature_matrix(frame, columns)
    with connect(settings, read_only=True) as con:
        ensure_ready = table_exists(con, "ml", "model_runs") and table_exists(con, "ml", "segments")
        state = previous_state(con, as_of, columns) if ensure_ready and _has_name_rule(con) else None
    state = state or {"run_id": None, "choice": None, "anchor": None, "centroids": {}, "names": {},
                      "members": pd.Series(dtype=object), "used_ids": []}
    fit = fit_with_settings(raw, columns, settings, previous=state["choice"])
    lineage, names = identities_and_names(fit, frame, columns, state, settings)
    return store_run(settings, as_of, frame, columns, raw, fit, lineage, names, state, rules,
                     anomalies_excluded=anomalies_excluded)


def _has_name_rule(con) -> bool:
    """Runs written before issue 9 hold no name rule or anchor: they are not continued (ids start afresh)."""
    return bool(con.execute("select count(*) from duckdb_columns() where schema_name = 'ml' "
                            "and table_name = 'segments' and column_name = 'name_rule'").fetchone()[0])


def fit_with_settings(raw, columns: list[str], settings: Settings, previous: tuple[str, int] | None = None):
    """:func:`ml.pipeline.fit_segments` with every knob from settings (the job and bench/segmentation_eval.py)."""
    from ml.pipeline import fit_segments

    return fit_segments(
        raw, log_columns=[i for i, c in enumerate(columns) if c in settings.log_features],
        ks=range(settings.k_min, settings.k_max + 1), algorithms=settings.segment_algorithms,
        previous=previous, random_state=settings.random_seed, flag_weight=settings.missing_flag_weight,
        selection_sample=settings.selection_sample, bootstrap_runs=settings.bootstrap_runs,
        min_segment_share=settings.min_segment_share, min_stability=settings.min_stability,
        tolerance=settings.selection_tolerance, keep_tolerance=settings.selection_keep_tolerance,
        merge_distance=settings.segment_merge_distance, fit_sample=settings.segment_fit_sample,
        silhouette_sample=settings.silhouette_sample, minibatch_threshold=settings.segment_minibatch_threshold)
