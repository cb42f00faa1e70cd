"""Daily assignment between re-clusterings: the champion's classifier (segflow.jobs.registry) assigns the
customers the last weekly clustering did not see as they are today.

After each daily ELT run (DAG segflow_elt, after the quality gate) the freshly built features are compared with
the last weekly clustering's training rows (``ml.feature_snapshots`` of the latest ``ml.model_runs`` week up to
today): customers absent from it are ``new``; customers whose value of any of the champion's features differs
are ``changed`` - the calendar day counts (``SEGFLOW_ASSIGN_CALENDAR_FEATURES``) first aged by the days
elapsed and the features that move with the calendar alone (``SEGFLOW_ASSIGN_PASSIVE_FEATURES``: trailing
windows, rates over tenure) left out, so that a customer who did nothing is not "changed" just because days
passed. Both get the champion's
most probable segment and its probability in ``ml.segment_assignments_daily`` (re-running a day replaces that
day's rows). Customers flagged as anomalous in that week stay out, as they stay out of the segments.
Publication of these rows is the exports' business, not this job's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from segflow.ddl import ensure_schema
from segflow.errors import InputError
from segflow.jobs.ml_common import to_naive_utc
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, insert_frame, table_exists
from segflow.warehouse_lock import warehouse_step

__all__ = ["DailyAssignment", "assign_daily", "changed_customers"]


@dataclass
class DailyAssignment:
    as_of: datetime
    status: str  # assigned | no_champion | no_clustering
    model_version: str | None = None
    reference_as_of: datetime | None = None
    customers: int = 0
    new: int = 0
    changed: int = 0
    segments: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        iso = (lambda v: v.isoformat() if v else None)  # noqa: E731
        return {"as_of": iso(self.as_of), "status": self.status, "model_version": self.model_version,
                "reference_as_of": iso(self.reference_as_of), "customers": self.customers, "new": self.new,
                "changed": self.changed, "assigned": self.new + self.changed, "segments": self.segments}


def changed_customers(current: pd.DataFrame, reference: pd.DataFrame, features: list[str], elapsed_days: int,
                      calendar: tuple[str, ...], passive: tuple[str, ...] = ()) -> tuple[pd.Index, pd.Index]:
    """``(new, changed)`` customer ids of ``current`` against ``reference`` (both with ``customer_id`` and the
    ``features``; module docstring). Missing on both sides is equal; day counts in ``calendar`` are aged first;
    ``passive`` features are not compared."""
    cur = current.set_index("customer_id")
    ref = reference.set_index("customer_id")
    new = cur.index.difference(ref.index)
    both = cur.index.intersection(ref.index)
    compared = [c for c in features if c in ref.columns and c not in passive]
    a = cur.loc[both, compared].apply(pd.to_numeric, errors="coerce").astype("float64").to_numpy()
    b = ref.loc[both, compared].apply(pd.to_numeric, errors="coerce").astype("float64").to_numpy(copy=True)
    aged = np.array([c in calendar for c in compared])
    b[:, aged] += elapsed_days
    same = np.isclose(a, b, rtol=1e-9, atol=1e-9) | (np.isnan(a) & np.isnan(b))
    return new, both[~same.all(axis=1)]


@warehouse_step("segment: daily assignment")
def assign_daily(settings: Settings | None = None, as_of: datetime | None = None) -> DailyAssignment:
    """Assign today's new and changed customers with the champion's classifier (module docstring)."""
    from ml.features import add_derived_features, feature_matrix
    from segflow.jobs.anomalies import exclude_flagged
    from segflow.jobs.registry import champion_at, load_version
    from segflow.jobs.segment import _features_frame

    settings = settings or get_settings()
    frame, as_of = _features_frame(settings, to_naive_utc(as_of))
    with connect(settings, read_only=True) as con:
        champion = champion_at(con, as_of)
        reference_as_of = (con.execute("select max(as_of) from ml.model_runs where as_of <= ?", [as_of]).fetchone()[0]
                           if table_exists(con, "ml", "model_runs") else None)
        reference = (con.execute("select * from ml.feature_snapshots where as_of = ?", [reference_as_of]).df()
                     if reference_as_of is not None else None)
    if champion is None:
        return DailyAssignment(as_of=as_of, status="no_champion")
    if reference is None or reference.empty:
        return DailyAssignment(as_of=as_of, status="no_clustering", model_version=champion["version"])
    model = load_version(settings, champion["version"], champion["artifact_dir"])
    features = model["features"]
    frame, _ = exclude_flagged(settings, add_derived_features(frame), reference_as_of)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise InputError(f"champion {champion['version']} needs features the warehouse no longer builds: {missing}")
    new, changed = changed_customers(frame, reference, features, (as_of - reference_as_of).days,
                                     tuple(settings.assign_calendar_features),
                                     tuple(settings.assign_passive_features))
    rows = frame.set_index("customer_id").loc[new.append(changed)].reset_index()
    reasons = np.array(["new"] * len(new) + ["changed"] * len(changed))
    out = pd.DataFrame(columns=["as_of", "customer_id", "segment_id", "probability", "model_version", "reason",
                                "reference_as_of", "created_at"])
    if len(rows):
        classifier = model["classifier"]
        proba = classifier.predict_proba(feature_matrix(rows, features))
        best = proba.argmax(axis=1)
        out = pd.DataFrame({"as_of": as_of, "customer_id": rows["customer_id"].to_numpy(),
                            "segment_id": classifier.classes_[best].astype(str),
                            "probability": np.round(proba[np.arange(len(best)), best], 6),
                            "model_version": champion["version"], "reason": reasons,
                            "reference_as_of": reference_as_of, "created_at": datetime.now()})
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        insert_frame(con, "ml.segment_assignments_daily", out, "as_of = ? and reason in ('new', 'changed')", [as_of])
        con.execute("commit")
    return DailyAssignment(as_of=as_of, status="assigned", model_version=champion["version"],
                           reference_as_of=reference_as_of, customers=len(frame), new=len(new), changed=len(changed),
                           segments={str(k): int(v) for k, v in out["segment_id"].value_counts().sort_index().items()})
