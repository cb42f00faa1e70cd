"""Model registry, promotion floors, champion fallback, daily assignment and champion-scored drift on a real
built warehouse (segflow.jobs.registry, segflow.jobs.assign, segflow.jobs.drift)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from tests_support import week_end

from segflow.jobs.assign import assign_daily, changed_customers
from segflow.jobs.build import build
from segflow.jobs.registry import champion_assignments, list_versions, load_version, register_model
from segflow.jobs.segment import recluster
from segflow.settings import Settings
from segflow.warehouse import connect

SLOW = pytest.mark.slow  # the module fixture builds a second week (dbt) and reclusters twice


@pytest.fixture(scope="module")
def two_weeks(built_home, tmp_path_factory) -> Settings:
    """Weeks 4 and 5 reclustered (week 4 registered as the first version), on a private copy of the built home."""
    target = tmp_path_factory.mktemp("registry") / "home"
    shutil.copytree(built_home.home, target, ignore=shutil.ignore_patterns("*.wal"))
    settings = Settings(home=target, assign_ensemble_size=30)  # the documented 200 only costs time here
    recluster(settings, as_of=week_end(4))
    first = register_model(settings, as_of=week_end(4))
    build(settings, as_of=week_end(5))
    recluster(settings, as_of=week_end(5))
    settings._first = first  # noqa: SLF001
    return settings


def _registry(settings):
    with connect(settings, read_only=True) as con:
        return con.execute("select * from ml.model_registry order by as_of").df()


@SLOW
def test_first_version_is_stored_and_promoted_with_its_metrics(two_weeks):
    first = two_weeks._first  # noqa: SLF001
    assert first.promoted and first.status == "champion" and first.champion_before is None
    assert first.reason == "first version: every floor holds"
    row = _registry(two_weeks).iloc[0]
    metrics, params = json.loads(row["metrics"]), json.loads(row["params"])
    assert row["version"] == row["run_id"] and row["data_snapshot_id"] and row["code_version"]
    assert json.loads(row["library_versions"])["scikit-learn"]
    assert set(json.loads(row["floors"])) == {"silhouette", "stability_vs_champion", "min_segment_share",
                                              "classifier_macro_f1"}
    assert metrics["stability_vs_champion"] is None  # nothing to compare with
    assert metrics["classifier_macro_f1"] >= two_weeks.registry_min_macro_f1
    assert set(metrics["classifier_cv_macro_f1"]) == {"random_forest", "gradient_boosting"}
    assert metrics["classifier"] in metrics["classifier_cv_macro_f1"]
    assert len(metrics["per_class_f1"]) == metrics["k"] and len(metrics["permutation_importance"]) == len(
        params["features"])
    # the stored segmentation model reproduces the week's k-means labels; the classifier predicts its segments
    assert metrics["centroid_reproduction"] >= 0.98
    model = load_version(two_weeks, row["version"])
    with connect(two_weeks, read_only=True) as con:
        rows = con.execute("select s.*, a.segment_id from ml.feature_snapshots s join ml.segment_assignments a "
                           "using (as_of, customer_id) where s.as_of = ?", [week_end(4)]).df()
    from ml.features import feature_matrix

    X = feature_matrix(rows, model["features"])
    assert (model["classifier"].predict(X) == rows["segment_id"].to_numpy()).mean() >= 0.95
    assert (two_weeks.home / "models" / row["version"] / "classifier.joblib").is_file()


@SLOW
def test_a_version_below_a_floor_is_rejected_the_champion_stays_and_scores_the_week(two_weeks, caplog):
    strict = two_weeks.model_copy(update={"registry_min_silhouette": 0.99})
    rejected = register_model(strict, as_of=week_end(5))
    first = two_weeks._first  # noqa: SLF001
    assert not rejected.promoted and rejected.champion == first.version == rejected.champion_before
    assert rejected.reason.startswith("silhouette ") and f"champion {first.version} stays" in rejected.reason
    assert "ALERT" in caplog.text and "not promoted" in caplog.text
    registry = _registry(two_weeks)
    assert list(registry["status"]) == ["champion", "rejected"]
    assert 0 < json.loads(registry.iloc[1]["metrics"])["stability_vs_champion"] <= 1
    # publication uses the champion's segments of this week's customers
    with connect(two_weeks, read_only=True) as con:
        version, frame = champion_assignments(con, week_end(5))
        customers = con.execute("select count(*) from ml.segment_assignments where as_of = ?",
                                [week_end(5)]).fetchone()[0]
    assert version == first.version and len(frame) == rejected.fallback_rows == customers
    assert frame["segment_name"].notna().all()
    from segflow.jobs.publish_segments import publish
    from segflow.jobs.validate import validate

    validate(two_weeks, as_of=week_end(5))
    published = publish(two_weeks, as_of=week_end(5))
    exported = pd.read_csv(published.path)
    assert published.run_id == first.version and len(exported) == customers
    assert set(exported["segment_id"]) <= set(frame["segment_id"])

    # re-deciding the week with the default floors promotes it: the first version is retired, no fallback
    promoted = register_model(two_weeks, as_of=week_end(5))
    assert promoted.promoted and promoted.reason == f"every floor holds: replaces champion {first.version}"
    assert list(_registry(two_weeks)["status"]) == ["retired", "champion"]
    with connect(two_weeks, read_only=True) as con:
        assert champion_assignments(con, week_end(5)) is None
        assert con.execute("select count(*) from ml.segment_assignments_daily where reason = 'champion_fallback'"
                           ).fetchone()[0] == 0
    assert [v["status"] for v in list_versions(two_weeks)] == ["champion", "retired"]


@SLOW
def test_drift_scores_both_weeks_with_the_champion(two_weeks):
    from segflow.jobs.drift import check_drift

    register_model(two_weeks, as_of=week_end(5))
    versions = list(_registry(two_weeks)["version"])
    # default: the champion in force before this week's registration labels both weeks
    assert check_drift(two_weeks, as_of=week_end(5)).segments_scored_by == versions[0]
    current = two_weeks.model_copy(update={"drift_segment_model": "current_champion"})
    result = check_drift(current, as_of=week_end(5))
    assert result.segments_scored_by == versions[1]
    with connect(two_weeks, read_only=True) as con:
        scopes = {s for (s,) in con.execute("select distinct scope from ml.drift_metrics where as_of = ?",
                                            [week_end(5)]).fetchall()}
    assert "segments" in scopes and any(s.startswith("segment:") for s in scopes)  # both weeks: one id set
    own = two_weeks.model_copy(update={"drift_segment_model": "own_fit"})
    assert check_drift(own, as_of=week_end(5)).segments_scored_by is None


@SLOW
def test_daily_assignment_assigns_new_and_changed_customers_only(two_weeks):
    register_model(two_weeks, as_of=week_end(5))
    nothing = assign_daily(two_weeks, as_of=week_end(5))  # the week's own build: nobody is new or changed
    assert nothing.status == "assigned" and nothing.new == nothing.changed == 0
    with connect(two_weeks) as con:  # the last clustering did not see 3 customers; 2 others had other features
        ids = [c for (c,) in con.execute("select customer_id from ml.feature_snapshots where as_of = ? "
                                         "order by customer_id limit 5", [week_end(5)]).fetchall()]
        con.execute("delete from ml.feature_snapshots where as_of = ? and customer_id in (?, ?, ?)",
                    [week_end(5), *ids[:3]])
        con.execute("update ml.feature_snapshots set frequency = frequency + 3 where as_of = ? "
                    "and customer_id in (?, ?)", [week_end(5), *ids[3:]])
    result = assign_daily(two_weeks, as_of=week_end(5))
    assert (result.new, result.changed) == (3, 2) and sum(result.segments.values()) == 5
    with connect(two_weeks, read_only=True) as con:
        rows = con.execute("select customer_id, reason, probability, model_version from "
                           "ml.segment_assignments_daily where as_of = ? order by customer_id", [week_end(5)]).df()
    assert list(rows["customer_id"]) == ids
    assert list(rows["reason"]) == ["new"] * 3 + ["changed"] * 2
    assert rows["probability"].between(0, 1).all() and (rows["model_version"] == result.model_version).all()


def test_changed_customers_ages_calendar_day_counts_and_skips_passive_features():
    reference = pd.DataFrame({"customer_id": ["a", "b", "c"], "recency_days": [3.0, 10.0, np.nan],
                              "frequency": [1.0, 2.0, 0.0], "sessions_28d": [4.0, 1.0, 0.0]})
    current = pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "recency_days": [5.0, 0.0, np.nan, 1.0],
                            "frequency": [1.0, 3.0, 0.0, 1.0], "sessions_28d": [2.0, 1.0, 0.0, 1.0]})
    features = ["recency_days", "frequency", "sessions_28d"]
    new, changed = changed_customers(current, reference, features, 2, ("recency_days",), ("sessions_28d",))
    assert list(new) == ["d"] and list(changed) == ["b"]  # a only aged (its window slid); c missing on both sides
    assert list(changed_customers(current, reference, features, 2, ("recency_days",))[1]) == ["a", "b"]


@SLOW
def test_cli_lists_versions_and_assigns(two_weeks, monkeypatch, capsys):
    from segflow.cli import main

    monkeypatch.setenv("SEGFLOW_HOME", str(two_weeks.home))
    monkeypatch.setenv("SEGFLOW_ASSIGN_ENSEMBLE_SIZE", "30")
    assert main(["models", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in listed] == list(_registry(two_weeks)["version"])[::-1]
    assert main(["assign", "--as-of", week_end(5).isoformat()]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "assigned"
    assert main(["assign", "--as-of", "next tuesday"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("segflow: error: argument --as-of") and "not an ISO date" in err, err
