"""Deltas relative to the previous publication, campaign actions, the manifest and `latest` (real files)."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest

from segflow.activation.campaigns import load_campaigns
from segflow.errors import InputError
from segflow.publish.exports import Previous, compute_delta, write_exports
from segflow.settings import Settings

CAMPAIGNS = """
- campaign: loyalty-q4
  match: {name_contains: LOYAL}
  action: loyalty_reward
  params: {reward: double_points}
- match: {segment_id: S03}
  action: re_engagement
  params: {incentive: 10% off}
- match: {name_rule_contains: "rule 7"}
  action: cross_sell
- match: {segment_name: High-value loyalists}
  action: never_reached
"""
SEGMENTS = pd.DataFrame({"segment_id": ["S01", "S02", "S03", "S04"],
                         "segment_name": ["High-value loyalists", "Occasional buyers", "Dormant / churn risk", "New"],
                         "name_rule": ["rule 4: ...", "rule 7: frequency <= ...", "rule 2: ...", "fallback"]})


NAMES = dict(zip(SEGMENTS.segment_id, SEGMENTS.segment_name, strict=True))


def _frame(pairs):
    return pd.DataFrame({"customer_id": [c for c, _ in pairs], "segment_id": [s for _, s in pairs],
                         "segment_name": [NAMES[s] for _, s in pairs]})


@pytest.fixture
def settings(tmp_path):
    s = Settings(home=tmp_path / "home")
    s.home.mkdir(parents=True)
    (s.home / "campaigns.yml").write_text(CAMPAIGNS)
    return s


def test_delta_lists_entered_left_moved_with_the_entered_segments_action(settings):
    before = _frame([("a", "S01"), ("b", "S02"), ("c", "S03"), ("d", "S04")])
    now = _frame([("a", "S01"), ("b", "S03"), ("c", "S02"), ("e", "S01"), ("f", "S04")])
    delta = compute_delta(now, Previous(datetime(2025, 9, 22), before, "file"), SEGMENTS, load_campaigns(settings),
                          datetime(2025, 10, 6))
    rows = {r.customer_id: r for r in delta.itertuples()}
    assert set(rows) == {"b", "c", "d", "e", "f"}  # a stayed in S01: not in the delta
    assert (rows["b"].change, rows["b"].from_segment_id, rows["b"].to_segment_id) == ("moved", "S02", "S03")
    assert rows["d"].change == "left" and pd.isna(rows["d"].to_segment_id) and pd.isna(rows["d"].action)
    assert rows["e"].change == "entered" and pd.isna(rows["e"].from_segment_id)
    assert (rows["e"].action, rows["e"].campaign) == ("loyalty_reward", "loyalty-q4")  # first match wins
    assert json.loads(rows["e"].action_params) == {"reward": "double_points"}
    assert (rows["b"].action, rows["c"].action) == ("re_engagement", "cross_sell") and pd.isna(rows["f"].action)
    assert set(delta["previous_as_of"]) == {pd.Timestamp("2025-09-22")}


def test_manifest_and_latest_only_move_forward(settings):
    now = _frame([("a", "S01"), ("b", "S02")])
    later = write_exports(settings, datetime(2025, 10, 6), "run-2", now, SEGMENTS, Previous(None, None, "none"),
                          load_campaigns(settings), move_latest=True)
    out = settings.exports_dir / "segments"
    latest = json.loads((out / "latest.json").read_text())
    assert latest == later and latest["delta"] == {"rows": 2, "entered": 2, "left": 0, "moved": 0, "unchanged": 0}
    for name in latest["files"].values():
        assert (out / name).is_file()
    assert pd.read_parquet(out / latest["files"]["snapshot_parquet"]).equals(pd.read_parquet(out / "latest.parquet"))
    assert [s["action"] for s in latest["segments"]] == ["loyalty_reward", "cross_sell", "re_engagement", None]
    # re-publishing an older week writes its files but leaves every latest.* alone
    before = {p.name: p.read_bytes() for p in out.glob("latest*")}
    older = write_exports(settings, datetime(2025, 9, 29), "run-1", now.iloc[:1], SEGMENTS,
                          Previous(None, None, "none"), [], move_latest=False)
    assert (out / "manifests" / "manifest_2025-09-29.json").is_file() and not older["is_latest"]
    assert {p.name: p.read_bytes() for p in out.glob("latest*")} == before


@pytest.mark.parametrize(("text", "problem"), [
    ("- match: {segment_id: S01}\n", "needs an action"),
    ("- action: x\n  match: {name_like: a}\n", "unknown match key"),
    ("- action: x\n  match: {segment_id: S01}\n  eval: os.system('x')\n", "unknown key"),
    ("- action: x\n  match: {segment_id: S01}\n  params: {a: [1, 2]}\n", "flat mapping"),
    ("action: x\n", "must hold a list"),
])
def test_a_bad_campaign_file_fails_with_one_line(settings, text, problem):
    (settings.home / "campaigns.yml").write_text(text)
    with pytest.raises(InputError, match=problem) as err:
        load_campaigns(settings)
    assert "\n" not in str(err.value)
