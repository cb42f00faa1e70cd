"""ml.lineage: ids follow meaning, splits / merges / births / deaths are recorded, ids are never reused."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.lineage import next_segment_ids, track_segments

ZERO, ONE = np.zeros(2), np.ones(2)


def _members(assignment: dict[str, list[str]]) -> pd.Series:
    return pd.Series({c: seg for seg, cs in assignment.items() for c in cs})


def _track(prev: dict, prev_centroids: dict, cur: dict, cur_centroids, **kw):
    members = _members({i: cs for i, cs in enumerate(cur)})
    return track_segments(_members(prev), prev_centroids, members, np.asarray(cur_centroids, dtype=float),
                          anchor_mean=ZERO, anchor_scale=ONE, **kw)


def _events(lineage):
    return sorted((e["event"], e["segment_id"], e["related_segment_id"]) for e in lineage.events)


A = [f"a{i}" for i in range(10)]
B = [f"b{i}" for i in range(10)]


def test_first_run_is_all_births():
    out = _track({}, {}, [A, B], [[0, 0], [5, 5]])
    assert out.ids == ["S01", "S02"]
    assert _events(out) == [("birth", "S01", None), ("birth", "S02", None)]


def test_same_members_keep_ids_in_any_cluster_order():
    out = _track({"S01": A, "S02": B}, {"S01": np.array([0, 0]), "S02": np.array([5, 5])}, [B, A],
                 [[5.1, 5], [0, 0.1]])
    assert out.ids == ["S02", "S01"]
    assert {e["event"] for e in out.events} == {"continued"}
    moved = out.transitions.set_index(["from_segment_id", "to_segment_id"])["customers"]
    assert moved[("S01", "S01")] == 10 and moved[("S02", "S02")] == 10


def test_moved_centroid_gets_fresh_id_even_with_same_members():
    out = _track({"S01": A}, {"S01": np.array([0, 0])}, [A], [[10, 0]], max_distance=3.0)
    assert out.ids == ["S02"]
    assert ("death", "S01", None) not in _events(out)  # explained: S01's members all went to S02
    assert any(e["event"] == "split" and e["related_segment_id"] == "S01" for e in out.events)


def test_split_keeps_id_on_the_majority_and_records_the_offshoot():
    prev = {"S01": A + B}
    out = _track(prev, {"S01": np.array([0, 0])}, [A + B[:4], B[4:]], [[0, 0], [1, 1]])
    assert out.ids[0] == "S01" and out.ids[1] == "S02"
    assert ("split", "S02", "S01") in _events(out)
    assert not any(e["event"] == "birth" for e in out.events)


def test_even_split_retires_the_parent_id():
    out = _track({"S01": A + B}, {"S01": np.array([0, 0])}, [A, B], [[0, 0], [1, 1]], min_overlap=0.6)
    assert "S01" not in out.ids
    assert {("split", sid, "S01") for sid in out.ids} <= set(_events(out))
    assert not any(e["event"] == "death" for e in out.events)


def test_merge_is_recorded_and_the_absorbed_id_ends():
    out = _track({"S01": A, "S02": B[:4]}, {"S01": np.array([0, 0]), "S02": np.array([1, 0])}, [A + B[:4]],
                 [[0.2, 0]])
    assert out.ids == ["S01"]
    assert ("merge", "S01", "S02") in _events(out)
    assert not any(e["event"] == "death" for e in out.events)


def test_unrelated_previous_segment_dies_and_new_one_is_born_with_a_never_used_id():
    out = _track({"S01": A}, {"S01": np.array([0, 0])}, [B], [[0, 0]], used_ids=["S01", "S07"])
    assert out.ids == ["S08"]
    assert _events(out) == [("birth", "S08", None), ("death", "S01", None)]
    flows = out.transitions
    assert flows.loc[flows["from_segment_id"].isna(), "customers"].sum() == 10  # new customers
    assert flows.loc[flows["to_segment_id"].isna(), "customers"].sum() == 10  # gone


def test_next_segment_ids_never_recycles():
    assert next_segment_ids(["S01", "S03", "X9"], 2) == ["S04", "S05"]
    assert next_segment_ids([], 1) == ["S01"]
