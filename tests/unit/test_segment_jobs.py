"""The weekly segmentation jobs on a real built warehouse: records, stable ids, publish gates (drift:
test_drift_job.py)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests_support import table_fingerprint, week_end

from segflow.errors import GateFailed, NotReady
from segflow.jobs.build import build
from segflow.jobs.publish_segments import publish
from segflow.jobs.segment import recluster
from segflow.jobs.validate import validate
from segflow.warehouse import connect


def _assignments(settings, as_of):
    with connect(settings, read_only=True) as con:
        return con.execute("select customer_id, segment_id from ml.segment_assignments where as_of = ? "
                           "order by customer_id", [as_of]).df()


def test_recluster_records_a_reproducible_model_run(home_copy):
    run = recluster(home_copy, as_of=week_end(4))
    assert home_copy.k_min <= run.k <= home_copy.k_max
    assert len(run.segments) == run.k
    assert sum(s["customer_count"] for s in run.segments) == run.customers
    assert abs(sum(s["share"] for s in run.segments) - 1) < 0.01
    with connect(home_copy, read_only=True) as con:
        record = con.execute("select * from ml.model_runs where run_id = ?", [run.run_id]).df().iloc[0]
        snapshot_rows, = con.execute("select count(*) from ml.feature_snapshots where as_of = ?",
                                     [week_end(4)]).fetchone()
    assert record["status"] == "accepted"
    assert len(record["data_fingerprint"]) == 64
    assert record["code_version"]
    assert "scikit-learn" in json.loads(record["library_versions"])
    assert json.loads(record["features"]) == list(home_copy.features)
    # every (algorithm, k) candidate of the model selection is recorded with its criteria
    scores = json.loads(record["scores"])
    assert set(scores) == {f"{a}:{k}" for a in home_copy.segment_algorithms
                           for k in range(home_copy.k_min, home_copy.k_max + 1)}
    assert {"silhouette", "davies_bouldin", "calinski_harabasz", "stability", "min_share"} <= set(
        scores[f"{record['algorithm']}:{record['k']}"])
    assert record["algorithm"] in home_copy.segment_algorithms
    assert json.loads(record["params"])["selection_reason"] == run.selection_reason
    assert snapshot_rows == run.customers
    # first run: every segment is born, names are unique and carry the rule that produced them
    assert {e["event"] for e in run.lineage} == {"birth"}
    names = [s["segment_name"] for s in run.segments]
    assert len(set(names)) == len(names)
    assert all(s["name_rule"] for s in run.segments)


def test_recluster_same_week_twice_is_identical(home_copy):
    first = recluster(home_copy, as_of=week_end(4))
    before = _assignments(home_copy, week_end(4))
    second = recluster(home_copy, as_of=week_end(4))
    assert second.run_id == first.run_id
    pd.testing.assert_frame_equal(before, _assignments(home_copy, week_end(4)))
    with connect(home_copy, read_only=True) as con:
        runs, = con.execute("select count(*) from ml.model_runs").fetchone()
    assert runs == 1


def test_segment_ids_are_stable_across_weeks(home_copy):
    recluster(home_copy, as_of=week_end(4))
    first = _assignments(home_copy, week_end(4))
    build(home_copy, as_of=week_end(5))
    second_run = recluster(home_copy, as_of=week_end(5))
    second = _assignments(home_copy, week_end(5))
    merged = first.merge(second, on="customer_id", suffixes=("_w4", "_w5"))
    # most customers keep their segment id from one week to the next
    assert (merged["segment_id_w4"] == merged["segment_id_w5"]).mean() > 0.7
    assert second_run.previous_run_id is not None
    assert any(not s["is_new"] for s in second_run.segments)


def test_recluster_refuses_a_week_that_was_not_built(home_copy):
    with pytest.raises(NotReady, match="built as of"):
        recluster(home_copy, as_of=week_end(3))


def test_publish_requires_gate_and_accepted_model(home_copy):
    recluster(home_copy, as_of=week_end(4))
    with pytest.raises(GateFailed, match="gate has not run"):
        publish(home_copy, as_of=week_end(4))
    validate(home_copy, as_of=week_end(4))
    published = publish(home_copy, as_of=week_end(4))
    exported = pd.read_csv(published.path)
    assert len(exported) == published.rows > 0
    assert exported["customer_id"].is_unique
    assert set(exported.columns) == {"customer_id", "segment_id", "segment_name", "as_of"}

    # next week the model misses the quality floor: nothing new is published, last good export stays
    build(home_copy, as_of=week_end(5))
    validate(home_copy, as_of=week_end(5))
    strict = home_copy.model_copy(update={"min_silhouette": 0.99})
    rejected = recluster(strict, as_of=week_end(5))
    assert rejected.status == "rejected"
    latest = home_copy.exports_dir / "segments" / "latest.csv"
    before = latest.read_bytes()
    with pytest.raises(GateFailed, match="rejected") as err:
        publish(strict, as_of=week_end(5))
    assert "stay published" in str(err.value)
    assert latest.read_bytes() == before
    with connect(home_copy, read_only=True) as con:
        assert table_fingerprint(con, "ml.publications")[0] == 1


def test_republishing_an_older_week_never_moves_latest_back(home_copy):
    for weeks in (4, 5):
        if weeks == 5:
            build(home_copy, as_of=week_end(5))
        validate(home_copy, as_of=week_end(weeks))
        recluster(home_copy, as_of=week_end(weeks))
    week5 = publish(home_copy, as_of=week_end(5))
    latest = home_copy.exports_dir / "segments" / "latest.csv"
    assert latest.read_bytes() == open(week5.path, "rb").read()
    week4 = publish(home_copy, as_of=week_end(4))  # e.g. an operator re-runs an older interval
    assert open(week4.path, "rb").read() != latest.read_bytes()
    assert latest.read_bytes() == open(week5.path, "rb").read()
    # week 4 had no earlier publication: everyone entered. Week 5 published again: its delta is now against the
    # publication before it (week 4), and the manifest says so
    assert week4.delta["previous_as_of"] is None and week4.delta["entered"] == week4.rows
    week5 = publish(home_copy, as_of=week_end(5))
    out = home_copy.exports_dir / "segments"
    manifest = json.loads((out / "latest.json").read_text())
    assert manifest["as_of"] == week_end(5).isoformat() and manifest["previous_as_of"] == week_end(4).isoformat()
    w4, w5 = (pd.read_parquet(out / f"segments_{week_end(w):%Y-%m-%d}.parquet") for w in (4, 5))
    pd.testing.assert_frame_equal(w5, pd.read_csv(week5.path, parse_dates=["as_of"]), check_dtype=False)
    both = w4.merge(w5, on="customer_id", how="outer", suffixes=("_4", "_5"))
    changed = both[both["segment_id_4"].fillna("-") != both["segment_id_5"].fillna("-")]
    delta = pd.read_parquet(out / manifest["files"]["delta_parquet"])
    assert sorted(delta["customer_id"]) == sorted(changed["customer_id"]) and len(delta) > 0
    assert manifest["delta"]["rows"] == len(delta) == week5.delta["rows"]
    assert sum(s["customers"] for s in manifest["segments"]) == manifest["customers"] == len(w5)


def test_lineage_transitions_and_rule_segments_are_stored_per_week(home_copy):
    (home_copy.home / "rule_segments.yml").write_text(
        "- name: Buyers with sessions\n  predicate: frequency >= 1 and session_count > 0\n"
        "- name: Never ordered\n  predicate: not frequency >= 1\n")
    first = recluster(home_copy, as_of=week_end(4))
    build(home_copy, as_of=week_end(5))
    second = recluster(home_copy, as_of=week_end(5))
    with connect(home_copy, read_only=True) as con:
        features = con.execute("select customer_id, frequency, session_count from marts.customer_features").df()
        members = con.execute("select rule_name, customer_id from ml.rule_segment_members where as_of = ?",
                              [week_end(5)]).df()
        flows = con.execute("select from_segment_id, to_segment_id, customers from ml.segment_transitions "
                            "where as_of = ?", [week_end(5)]).df()
        lineage = con.execute("select event, segment_id, related_segment_id from ml.segment_lineage "
                              "where as_of = ?", [week_end(5)]).df()
        used_before = {s for (s,) in con.execute("select segment_id from ml.segments where as_of = ?",
                                                 [week_end(4)]).fetchall()}
    buyers = set(features.loc[(features["frequency"] >= 1) & (features["session_count"] > 0), "customer_id"])
    assert set(members.loc[members["rule_name"] == "Buyers with sessions", "customer_id"]) == buyers
    assert set(members.loc[members["rule_name"] == "Never ordered", "customer_id"]) == set(
        features.loc[features["frequency"] < 1, "customer_id"])
    assert second.rule_segments == {"Buyers with sessions": len(buyers),
                                    "Never ordered": int((features["frequency"] < 1).sum())}
    # every customer of this week arrives from last week's segment or as new; flows add up to the customers
    assert flows.loc[flows["to_segment_id"].notna(), "customers"].sum() == second.customers
    assert flows.loc[flows["from_segment_id"].notna(), "customers"].sum() == first.customers
    # an id that is not continued is never reused for a new segment
    continued = set(lineage.loc[lineage["event"] == "continued", "segment_id"])
    fresh = {s["segment_id"] for s in second.segments} - continued
    assert not fresh & used_before
    assert set(lineage["event"]) <= {"continued", "split", "merge", "birth", "death"}


def test_a_bad_rule_segment_file_fails_with_one_line(home_copy):
    from segflow.errors import InputError

    (home_copy.home / "rule_segments.yml").write_text("- name: x\n  predicate: __import__('os') > 1\n")
    with pytest.raises(InputError, match="rule segments"):
        recluster(home_copy, as_of=week_end(4))
