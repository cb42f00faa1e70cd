"""What the weekly segmentation reads: one row per customer of ``marts.customer_features`` with the
engagement rates (``marts.customer_engagement``) and the behavior-over-time columns
(``marts.customer_activity_trend``) beside it. Shared by the job and ``bench/segmentation_eval.py`` so the
evaluation clusters exactly the frame the job clusters."""

from __future__ import annotations

import pandas as pd

__all__ = ["FEATURES_QUERY", "read_feature_frame"]

FEATURES_QUERY = """
select
    features.*,
    engagement.sessions_per_week,
    engagement.engagement_score,
    trend.active_week_share,
    trend.activity_trend
from marts.customer_features as features
left join marts.customer_engagement as engagement
    on features.customer_id = engagement.customer_id
left join marts.customer_activity_trend as trend
    on features.customer_id = trend.customer_id
order by features.customer_id
"""


def read_feature_frame(con) -> pd.DataFrame:
    """The segmentation's input frame (see the module docstring), ordered by customer_id."""
    return con.execute(FEATURES_QUERY).df()


def previous_state(con, as_of, features: list[str]) -> dict:
    """The latest accepted run before ``as_of``: its id, (algorithm, k), anchor (the preprocessing means and
    scales its centroids are compared in), log-space centroids, names and members; plus every segment id given
    before ``as_of`` (fresh ids are numbered past them). Centroids are left out when that run used other features."""
    import json

    import numpy as np

    state = {"run_id": None, "choice": None, "anchor": None, "centroids": {}, "names": {},
             "members": pd.Series(dtype=object), "used_ids": []}
    # ids given by runs before this week (a re-run of the week gives the same ids again)
    state["used_ids"] = [sid for (sid,) in con.execute(
        "select distinct segment_id from ml.segments where as_of < ? order by 1", [as_of]).fetchall()]
    row = con.execute("select run_id, algorithm, k, params, features from ml.model_runs where as_of < ? "
                      "and status = 'accepted' order by as_of desc limit 1", [as_of]).fetchall()
    if not row:
        return state
    run_id, algorithm, k, params, run_features = row[0]
    params = json.loads(params or "{}")
    state["run_id"], state["choice"] = run_id, (algorithm, int(k))
    segments = con.execute("select segment_id, segment_name, name_rule, log_centroid from ml.segments "
                           "where run_id = ?", [run_id]).fetchall()
    state["names"] = {sid: (name, rule) for sid, name, rule, _ in segments}
    anchor = params.get("anchor")
    if anchor and json.loads(run_features or "[]") == list(features):
        state["anchor"] = (np.asarray(anchor["mean"], dtype=float), np.asarray(anchor["scale"], dtype=float))
        state["centroids"] = {sid: np.asarray(json.loads(c), dtype=float) for sid, _, _, c in segments}
    members = con.execute("select customer_id, segment_id from ml.segment_assignments where run_id = ?",
                          [run_id]).df()
    state["members"] = members.set_index("customer_id")["segment_id"]
    return state


def load_rule_segments(settings) -> list:
    """The hybrid rule segments of ``settings.rule_segments_file`` (else ``<home>/rule_segments.yml`` when it
    exists): a YAML list of ``{name, predicate}``. Raises InputError with one line on a bad file."""
    import yaml

    from ml.rules import parse_predicate
    from segflow.errors import InputError

    path = settings.rule_segments_file or settings.home / "rule_segments.yml"
    if settings.rule_segments_file is None and not path.is_file():
        return []
    try:
        entries = yaml.safe_load(path.read_text()) or []
        if not isinstance(entries, list):
            raise ValueError("the file must hold a list of {name, predicate}")
        rules, seen = [], set()
        for entry in entries:
            if not isinstance(entry, dict) or not {"name", "predicate"} <= set(entry):
                raise ValueError(f"entry {entry!r} needs a name and a predicate")
            if entry["name"] in seen:
                raise ValueError(f"rule segment name {entry['name']!r} is used twice")
            seen.add(entry["name"])
            rules.append(parse_predicate(str(entry["name"]), str(entry["predicate"])))
        return rules
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise InputError(f"rule segments {path}: {exc}".replace("\n", " ")) from exc
