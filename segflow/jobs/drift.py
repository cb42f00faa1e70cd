"""Weekly drift check: this week's feature snapshot against last week and a fixed reference window.

Tests (docs/drift.md): per windowed feature, PSI on bins pinned from the reference and a two-sample KS test,
against last week's snapshot and against the baseline (the first accepted weeks); segment shares (chi-square)
against both; per segment, its members' features this week against last week. All p-values of the
week are corrected together (Holm or BH) and a test is drift only when significant and its PSI reaches the floor.
Centroid shift and the silhouette trend can raise a warn. When the model registry has a champion, both weeks'
customers are scored by its segmentation model for the segment and share tests (docs/model-registry.md). Stored in ml.drift_runs / ml.drift_metrics /
ml.drift_bins (re-running a week rewrites exactly that week's rows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from segflow.errors import NotReady
from segflow.jobs.drift_tests import (
    accepted_weeks,
    baseline_weeks,
    population_tests,
    segment_tests,
    share_tests,
    test_columns,
    write_drift,
)
from segflow.jobs.ml_common import resolve_as_of, to_naive_utc
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step


@dataclass
class DriftResult:
    as_of: datetime
    reference_as_of: datetime | None
    verdict: str
    max_psi: float | None
    baseline_as_of: datetime | None = None
    run_kind: str = "weekly"
    tests: int = 0
    drift_tests: int = 0
    reasons: list[str] = field(default_factory=list)
    max_centroid_shift: float | None = None
    silhouette_drop: float | None = None
    features: list[dict] = field(default_factory=list)
    segments_scored_by: str | None = None  # the champion version that scored both weeks' segments (None: each its own)

    def as_dict(self) -> dict:
        iso = (lambda v: v.isoformat() if v else None)  # noqa: E731
        return {"as_of": iso(self.as_of), "reference_as_of": iso(self.reference_as_of),
                "baseline_as_of": iso(self.baseline_as_of), "run_kind": self.run_kind, "verdict": self.verdict,
                "max_psi": self.max_psi, "tests": self.tests, "drift_tests": self.drift_tests,
                "reasons": self.reasons, "max_centroid_shift": self.max_centroid_shift,
                "silhouette_drop": self.silhouette_drop, "segments_scored_by": self.segments_scored_by,
                "features": self.features}


def _snapshot(con, as_of: datetime) -> pd.DataFrame:
    return con.execute("select * from ml.feature_snapshots where as_of = ? order by customer_id", [as_of]).df()


def _assignments(con, as_of: datetime) -> pd.Series:
    frame = con.execute("select customer_id, segment_id from ml.segment_assignments where as_of = ?", [as_of]).df()
    return frame.set_index("customer_id")["segment_id"]


def _profiles(con, as_of: datetime) -> dict[str, dict[str, float]]:
    return {sid: json.loads(p) for sid, p in con.execute(
        "select segment_id, profile from ml.segments where as_of = ?", [as_of]).fetchall() if p}


def _champion_labels(settings: Settings, con, as_of: datetime, snapshots: dict[datetime, pd.DataFrame]
                     ) -> tuple[str, dict[datetime, pd.Series]] | None:
    """Every week's customers scored by one model - the champion in force at ``as_of`` (segflow.jobs.registry) -
    so that the segment and share tests compare populations, not two fits (a refit that moves a boundary is not
    drift). None when there is no champion or a snapshot lacks its features: each week keeps its own labels."""
    from ml.features import feature_matrix
    from segflow.jobs.registry import champion_at, load_version

    if settings.drift_segment_model == "own_fit":
        return None
    # the champion this week's check compares against: before this week's registration, or after it
    champion = champion_at(con, as_of if settings.drift_segment_model == "current_champion"
                           else as_of - timedelta(microseconds=1))
    if champion is None or any(not set(champion["features"]) <= set(f.columns) for f in snapshots.values()):
        return None
    model = load_version(settings, champion["version"], champion["artifact_dir"])["segmentation"]
    return champion["version"], {
        week: pd.Series(model.predict(feature_matrix(frame, champion["features"])), index=frame["customer_id"].to_numpy())
        for week, frame in snapshots.items()}


def references_before(con, as_of: datetime, settings: Settings
                      ) -> tuple[datetime, list[datetime], pd.DataFrame, pd.DataFrame] | None:
    """The comparisons of a week: the latest accepted week before it and its snapshot, and the fixed baseline
    weeks with their snapshots pooled; None when no accepted week precedes it."""
    earlier = [w for w in accepted_weeks(con) if w < as_of]
    if not earlier:
        return None
    base_weeks = baseline_weeks(earlier, settings)
    return (earlier[-1], base_weeks, _snapshot(con, earlier[-1]),
            pd.concat([_snapshot(con, w) for w in base_weeks], ignore_index=True))


def evaluate(settings: Settings, current: pd.DataFrame, last: pd.DataFrame, baseline: pd.DataFrame,
             baseline_customers: int, last_labels: pd.Series, current_labels: pd.Series | None,
             baseline_labels: pd.Series | None) -> tuple[str, pd.DataFrame, dict]:
    """Every test of one check, corrected together; the verdict, the rows, and the pinned bins."""
    from ml.drift_verdict import verdict

    columns = test_columns(settings, current, last)
    rows, bins = [], {}
    for comparison, reference, n_ref in (("last_week", last, None), ("baseline", baseline, baseline_customers)):
        frame, cuts = population_tests(reference, current, columns, settings.psi_bins, n_ref, settings.psi_warn)
        frame["comparison"] = comparison
        rows.append(frame)
        bins[comparison] = cuts
    if current_labels is not None:
        rows.append(segment_tests(last, current, last_labels, current_labels, columns, settings))
        rows.append(share_tests(last_labels, baseline_labels, current_labels, settings))
    tests = pd.concat([r for r in rows if len(r)], ignore_index=True)
    status, tests = verdict(tests, alpha=settings.drift_alpha, method=settings.drift_multiplicity)
    return status, tests, bins


@warehouse_step("segment: drift")
def check_drift(settings: Settings | None = None, as_of: datetime | None = None) -> DriftResult:
    """Drift of this week's snapshot against last week and the baseline, stored in ml.drift_*."""
    from ml.drift_verdict import centroid_shift, silhouette_trend

    settings = settings or get_settings()
    as_of = to_naive_utc(as_of)
    with connect(settings, read_only=True) as con:
        as_of = resolve_as_of(con, "feature_snapshots", as_of,
                              "No feature snapshot yet: run `segflow segment` first.")
        current = _snapshot(con, as_of)
        if current.empty:
            raise NotReady(f"No feature snapshot as of {as_of}: run `segflow segment` for that week first.")
        references = references_before(con, as_of, settings)
        if references:
            reference_as_of, base_weeks, last, baseline = references
            labels = {w: _assignments(con, w) for w in {as_of, reference_as_of, base_weeks[-1]}}
            scored = _champion_labels(settings, con, as_of, {as_of: current, reference_as_of: last,
                                                             base_weeks[-1]: _snapshot(con, base_weeks[-1])})
            scored_by, labels = scored if scored else (None, labels)
            profiles = (_profiles(con, reference_as_of), _profiles(con, as_of))
            silhouettes = [s for (s,) in con.execute(
                "select silhouette from ml.model_runs where status = 'accepted' and as_of <= ? order by as_of",
                [as_of]).fetchall()] if table_exists(con, "ml", "model_runs") else []
    if not references:
        result = DriftResult(as_of=as_of, reference_as_of=None, verdict="no_reference", max_psi=None)
        write_drift(settings, result, None, {})
        return result

    status, tests, bins = evaluate(settings, current, last, baseline, baseline["customer_id"].nunique(),
                                   labels[reference_as_of], labels[as_of], labels[base_weeks[-1]])
    # profiles hold the clustering features: scale each by its population SD this week
    profiled = {f for p in profiles[1].values() for f in p} & set(current.columns)
    scale = {c: float(pd.to_numeric(current[c], errors="coerce").std()) for c in sorted(profiled)}
    shifts = centroid_shift({k: {f: v for f, v in p.items() if f in scale} for k, p in profiles[0].items()},
                            {k: {f: v for f, v in p.items() if f in scale} for k, p in profiles[1].items()}, scale)
    trend = silhouette_trend(silhouettes)
    max_shift = max(shifts.values()) if shifts else None
    reasons = [_reason(r) for r in tests[tests["status"] == "drift"].sort_values("p_adjusted").to_dict("records")]
    if status != "drift":
        if max_shift is not None and max_shift >= settings.drift_centroid_shift_warn:
            status = "warn"
            reasons.append(f"centroid shift {max_shift:.2f} SD (segment "
                           f"{max(shifts, key=shifts.get)}) >= {settings.drift_centroid_shift_warn}")
        if trend["drop"] is not None and trend["drop"] >= settings.drift_silhouette_drop_warn:
            status = "warn"
            reasons.append(f"silhouette {trend['latest']:.3f} is {trend['drop']:.3f} below its median")
    population = tests[tests["scope"] == "population"]
    result = DriftResult(
        as_of=as_of, reference_as_of=reference_as_of, baseline_as_of=base_weeks[0], verdict=status,
        max_psi=round(float(population["psi"].max()), 4) if len(population) else None, tests=len(tests),
        drift_tests=int((tests["status"] == "drift").sum()), reasons=reasons,
        max_centroid_shift=round(max_shift, 4) if max_shift is not None else None,
        silhouette_drop=round(trend["drop"], 4) if trend["drop"] is not None else None,
        features=_records(tests), segments_scored_by=scored_by)
    write_drift(settings, result, tests, bins)
    return result


def _reason(row: dict) -> str:
    where = row["scope"] if row["scope"] != "population" else row["comparison"]
    return f"{where}: {row['feature']} PSI {row['psi']:.2f}, p_adj {row['p_adjusted']:.1g}"


def _records(tests: pd.DataFrame) -> list[dict]:
    keep = ["comparison", "scope", "feature", "psi", "ks_stat", "p_value", "p_adjusted", "status",
            "reference_mean", "current_mean"]
    return [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
            for r in tests[keep].to_dict("records")]


def notify_drift(result: DriftResult, settings: Settings | None = None) -> bool:
    """Alert (log + webhook, segflow.alerts) when the verdict is drift; True when an alert went out."""
    if result.verdict != "drift":
        return False
    from segflow.alerts import send_alert

    text = (f"segflow: {result.run_kind} drift as of {result.as_of:%Y-%m-%d %H:%M} "
            f"({result.drift_tests} of {result.tests} tests): " + "; ".join(result.reasons[:5]))
    send_alert({"source": "segflow", "event": "drift", "as_of": result.as_of.isoformat(), "verdict": result.verdict,
                "run_kind": result.run_kind, "reasons": result.reasons[:20], "text": text}, settings)
    return True
