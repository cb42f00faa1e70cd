"""Segment identities across weekly re-clusterings: continuations, splits, merges, births and deaths.

A current cluster *continues* a previous segment (and keeps its id) when the one-to-one assignment that
maximises member overlap (Hungarian, on the Jaccard index of their customers present in both weeks) pairs
them, their Jaccard index is at least ``min_overlap`` and their centroids lie within ``max_distance`` of each
other in the anchored space (both centroids scaled with the previous run's means and scales, so the yardstick
does not move with this week's data). Everything else gets a fresh id, never a reused one. Around that:

- a flow between a previous segment and a current cluster is *significant* when it holds at least
  ``event_share`` of the previous segment's members or of the current cluster's members;
- ``split`` (parent -> child): a significant flow from a segment that lives on (is continued) to another
  cluster, or - when neither lives on - the child's only significant parent;
- ``merge`` (parent -> child): a significant flow into a cluster that continues another id, or - when
  neither lives on - into a child with two or more significant parents;
- ``birth``: a fresh id that no split or merge explains; ``death``: a previous id that nothing continues.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

__all__ = ["Lineage", "next_segment_ids", "track_segments"]


@dataclass
class Lineage:
    """Result of :func:`track_segments`: ``ids[i]`` is cluster i's id; ``events`` one dict per lineage row
    (event, segment_id, related_segment_id, overlap, distance); ``transitions`` customer counts per
    (from_segment_id, to_segment_id) - from ``None`` for customers new this week, to ``None`` for those gone."""

    ids: list[str]
    events: list[dict] = field(default_factory=list)
    transitions: pd.DataFrame = field(default_factory=pd.DataFrame)


def next_segment_ids(used: Sequence[str], count: int, prefix: str = "S") -> list[str]:
    """``count`` fresh ids numbered past the highest number ever ``used`` (ids are never recycled)."""
    numbers = [int(u[len(prefix):]) for u in used if u.startswith(prefix) and u[len(prefix):].isdigit()]
    start = max(numbers, default=0) + 1
    return [f"{prefix}{n:02d}" for n in range(start, start + count)]


def track_segments(
    previous_members: pd.Series,
    previous_centroids: dict[str, np.ndarray],
    members: pd.Series,
    centroids: np.ndarray,
    *,
    anchor_mean: np.ndarray,
    anchor_scale: np.ndarray,
    used_ids: Sequence[str] = (),
    max_distance: float = 3.0,
    min_overlap: float = 0.5,
    event_share: float = 0.2,
    prefix: str = "S",
) -> Lineage:
    """Give this week's clusters ids and record the lineage (see the module docstring).

    ``previous_members``: segment id per customer id (index) of the previous run; ``members``: cluster number
    (0..k-1) per customer id of this run; centroids in the unscaled log space, scaled here with
    ``anchor_mean``/``anchor_scale``. ``used_ids`` are every id ever given (fresh ids are numbered past them).
    """
    centroids = np.asarray(centroids, dtype=np.float64)
    k = centroids.shape[0]
    prev_ids = sorted(previous_centroids)
    ids: list[str | None] = [None] * k
    events: list[dict] = []
    overlap = np.zeros((k, len(prev_ids)))
    dist = np.full((k, len(prev_ids)), np.inf)
    inter = np.zeros((k, len(prev_ids)))
    if prev_ids and k:
        both = members.index.intersection(previous_members.index)
        cur = members.loc[both].to_numpy()
        col = {sid: j for j, sid in enumerate(prev_ids)}
        prv = previous_members.loc[both].map(col).to_numpy()
        ok = ~pd.isna(prv)
        np.add.at(inter, (cur[ok].astype(int), prv[ok].astype(int)), 1)
        cur_n = np.bincount(members.to_numpy().astype(int), minlength=k)[:, None]
        prev_n = np.array([(previous_members == sid).sum() for sid in prev_ids])[None, :]
        overlap = inter / np.maximum(cur_n + prev_n - inter, 1)
        scale = np.where(np.asarray(anchor_scale) > 0, anchor_scale, 1.0)
        cur_z = (centroids - anchor_mean) / scale
        prev_z = (np.vstack([previous_centroids[s] for s in prev_ids]) - anchor_mean) / scale
        dist = np.sqrt(((cur_z[:, None, :] - prev_z[None, :, :]) ** 2).sum(axis=2))
        rows, cols = linear_sum_assignment(-overlap)
        for r, c in zip(rows, cols, strict=True):
            if overlap[r, c] >= min_overlap and dist[r, c] <= max_distance:
                ids[r] = prev_ids[c]
                events.append({"event": "continued", "segment_id": prev_ids[c], "related_segment_id": prev_ids[c],
                               "overlap": float(overlap[r, c]), "distance": float(dist[r, c])})
    fresh = iter(next_segment_ids([*used_ids, *prev_ids], sum(i is None for i in ids), prefix))
    ids = [i if i is not None else next(fresh) for i in ids]

    continued = {i for i in ids if i in previous_centroids}
    explained: set[str] = set()
    ended_by_event: set[str] = set()
    if prev_ids:
        prev_share = inter / np.maximum(inter.sum(axis=0, keepdims=True), 1)  # of the parent's members
        cur_share = inter / np.maximum(inter.sum(axis=1, keepdims=True), 1)   # of the child's members
        significant = (prev_share >= event_share) | (cur_share >= event_share)
        for r in range(k):
            for c, parent in enumerate(prev_ids):
                if ids[r] == parent or not significant[r, c]:
                    continue
                row = {"segment_id": ids[r], "related_segment_id": parent, "overlap": float(overlap[r, c]),
                       "distance": float(dist[r, c])}
                if parent in continued:  # an offshoot of a segment that lives on
                    kind = "split"
                elif ids[r] in continued:  # absorbed into a segment that lives on
                    kind = "merge"
                else:  # neither lives on: several parents make a merge, one parent a split
                    kind = "merge" if significant[r].sum() >= 2 else "split"
                events.append({"event": kind, **row})
                if ids[r] not in continued:
                    explained.add(ids[r])
                if parent not in continued:
                    ended_by_event.add(parent)
    for sid in ids:
        if sid not in continued and sid not in explained:
            events.append({"event": "birth", "segment_id": sid, "related_segment_id": None, "overlap": None,
                           "distance": None})
    for parent in prev_ids:
        if parent not in continued and parent not in ended_by_event:
            events.append({"event": "death", "segment_id": parent, "related_segment_id": None, "overlap": None,
                           "distance": None})
    cur_ids = members.map(dict(enumerate(ids)))
    joined = pd.concat([previous_members.rename("from_segment_id"), cur_ids.rename("to_segment_id")], axis=1)
    transitions = (joined.astype(object).where(joined.notna(), None)
                   .groupby(["from_segment_id", "to_segment_id"], dropna=False).size()
                   .rename("customers").reset_index())
    return Lineage(ids=ids, events=events, transitions=transitions)
