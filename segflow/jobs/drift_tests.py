"""The drift check's building blocks: which weeks and features are compared, the test rows of each kind, and
the write of a check's results (shared by the weekly check and the daily screen)."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd

from segflow.ddl import ensure_schema
from segflow.settings import Settings
from segflow.warehouse import connect, table_exists

NOT_FEATURES = ("as_of", "customer_id")


def accepted_weeks(con) -> list[datetime]:
    """Weeks with an accepted model run and a feature snapshot, oldest first."""
    if not table_exists(con, "ml", "model_runs") or not table_exists(con, "ml", "feature_snapshots"):
        return []
    return [w for (w,) in con.execute(
        "select distinct r.as_of from ml.model_runs r where r.status = 'accepted' and exists "
        "(select 1 from ml.feature_snapshots s where s.as_of = r.as_of) order by r.as_of").fetchall()]


def baseline_weeks(earlier: list[datetime], settings: Settings) -> list[datetime]:
    """The fixed reference window: the first ``drift_baseline_weeks`` of ``earlier`` (accepted weeks before the
    checked one) from ``drift_baseline_start`` on; while fewer exist, those there are."""
    start = settings.drift_baseline_start
    eligible = [w for w in earlier if start is None or w.date() >= start] or earlier[:1]
    return eligible[:settings.drift_baseline_weeks]


def test_columns(settings: Settings, current: pd.DataFrame, reference: pd.DataFrame) -> list[str]:
    """The drift-tested features (settings.drift_features) that both frames hold with some values."""
    return [c for c in settings.drift_features if c in current.columns and c in reference.columns
            and pd.api.types.is_numeric_dtype(current[c]) and current[c].notna().any()
            and reference[c].notna().any()]


def _tests(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], bins: int,
           n_effective: int | None) -> tuple[pd.DataFrame, dict]:
    from ml.drift import ReferenceBins, feature_tests

    pinned = ReferenceBins(bins=bins).fit(reference, columns, n_effective=n_effective)
    return feature_tests(pinned, current, columns), pinned.to_dict()


def population_tests(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], bins: int,
                     n_effective: int | None, floor: float) -> tuple[pd.DataFrame, dict]:
    frame, cuts = _tests(reference, current, columns, bins, n_effective)
    frame["scope"] = "population"
    frame["effect"] = frame["psi"]
    frame["floor"] = floor
    return frame, cuts


def segment_tests(last: pd.DataFrame, current: pd.DataFrame, last_labels: pd.Series, current_labels: pd.Series,
                  columns: list[str], settings: Settings) -> pd.DataFrame:
    """Per segment id: the features of its members this week against its members last week (each side chosen by
    its own week's clustering, so no regression to the mean). Only when both weeks have the same segment ids
    (see :func:`share_tests`) and for segments of at least drift_segment_min_size customers on both sides."""
    if set(last_labels.unique()) != set(current_labels.unique()):
        return pd.DataFrame()
    frames = []
    ref = last.set_index("customer_id")
    cur = current.set_index("customer_id")
    for sid in sorted(set(last_labels.unique())):
        ref_ids = ref.index.intersection(last_labels.index[last_labels == sid])
        cur_ids = cur.index.intersection(current_labels.index[current_labels == sid])
        if min(len(ref_ids), len(cur_ids)) < settings.drift_segment_min_size:
            continue
        cols = [c for c in columns if ref.loc[ref_ids, c].notna().any() and cur.loc[cur_ids, c].notna().any()]
        frame, _ = _tests(ref.loc[ref_ids].reset_index(), cur.loc[cur_ids].reset_index(), cols, settings.psi_bins,
                          None)
        frame["scope"] = f"segment:{sid}"
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out["comparison"] = "last_week"
    out["effect"] = out["psi"]
    out["floor"] = settings.psi_warn
    return out


def share_tests(last_labels: pd.Series, baseline_labels: pd.Series | None, current_labels: pd.Series,
                settings: Settings) -> pd.DataFrame:
    """Chi-square of this week's segment counts on last week's (and the baseline's last week's) shares.

    Only when both weeks have the same segment ids: after a birth, death, split or merge the shares describe
    another partition, which is a model change (recorded by the segmentation), not a population shift."""
    from ml.drift_verdict import share_drift

    rows = []
    current_counts = current_labels.value_counts().to_dict()
    for comparison, labels in (("last_week", last_labels), ("baseline", baseline_labels)):
        if labels is None or set(labels.unique()) != set(current_counts):
            continue
        ref_counts = labels.value_counts().to_dict()
        test = share_drift(ref_counts, current_counts)
        rows.append({"feature": "segment_share", "psi": test["psi"], "ks_stat": np.nan, "p_value": test["p_value"],
                     "n_reference": int(sum(ref_counts.values())), "n_current": int(sum(current_counts.values())),
                     "reference_mean": np.nan, "current_mean": np.nan, "scope": "segments",
                     "comparison": comparison, "effect": test["psi"], "floor": settings.drift_share_psi_floor})
    return pd.DataFrame(rows)


_RUN_COLUMNS = ("as_of", "reference_as_of", "verdict", "max_psi", "drifted_features", "created_at", "run_kind",
                "baseline_as_of", "tests", "drift_tests", "reasons", "max_centroid_shift", "silhouette_drop")
_METRIC_COLUMNS = ("as_of", "reference_as_of", "feature", "psi", "verdict", "reference_mean", "current_mean",
                   "comparison", "scope", "ks_stat", "p_value", "p_adjusted", "n_reference", "n_current")


def write_drift(settings: Settings, result, tests: pd.DataFrame | None, bins: dict) -> None:
    """Replace the check's week in ml.drift_runs, ml.drift_metrics and ml.drift_bins."""
    as_of = result.as_of
    reference_of = {"last_week": result.reference_as_of, "baseline": result.baseline_as_of}
    drifted = ([] if tests is None else
               [r["feature"] if r["scope"] == "population" else f"{r['scope']}/{r['feature']}"
                for r in tests[tests["status"] == "drift"].to_dict("records")])
    with connect(settings) as con:
        ensure_schema(con)
        con.execute("begin transaction")
        for table in ("drift_runs", "drift_metrics", "drift_bins"):
            con.execute(f"delete from ml.{table} where as_of = ?", [as_of])
        con.execute(f"insert into ml.drift_runs ({', '.join(_RUN_COLUMNS)}) values ({', '.join('?' * 13)})", [
            as_of, result.reference_as_of, result.verdict, result.max_psi, json.dumps(sorted(set(drifted))),
            datetime.now(), result.run_kind, result.baseline_as_of, result.tests, result.drift_tests,
            json.dumps(result.reasons), result.max_centroid_shift, result.silhouette_drop])
        if tests is not None and len(tests):
            rows = tests.assign(as_of=as_of, reference_as_of=tests["comparison"].map(reference_of),
                                verdict=tests["status"])
            frame = rows[list(_METRIC_COLUMNS)].astype({"n_reference": "int64", "n_current": "int64"})
            con.register("_metrics", frame)
            con.execute(f"insert into ml.drift_metrics ({', '.join(_METRIC_COLUMNS)}) "
                        f"select {', '.join(_METRIC_COLUMNS)} from _metrics")
        bin_rows = [(as_of, comparison, reference_of[comparison], feature, json.dumps(cuts))
                    for comparison, features in bins.items() for feature, cuts in features.items()]
        if bin_rows:
            con.executemany("insert into ml.drift_bins values (?, ?, ?, ?, ?)", bin_rows)
        con.execute("commit")
