"""The files a publication writes under ``<home>/exports/segments/`` (format: docs/activation.md).

- ``segments_<as_of>.csv`` / ``.parquet``: the week's snapshot, one row per customer (customer_id, segment_id,
  segment_name, as_of).
- ``deltas/delta_<as_of>.csv`` / ``.parquet``: who entered, left or moved segment since the **previous
  publication** (not the previous calendar week: a week that was not published is skipped over), with the
  campaign action of the segment entered (campaigns.yml).
- ``manifests/manifest_<as_of>.json``: what was published, the counts, the segments with their actions, the
  files (paths relative to ``exports/segments``).
- ``latest.csv``, ``latest.parquet``, ``latest_delta.csv``, ``latest_delta.parquet``, ``latest.json``: copies of
  the newest publication; re-publishing an older week never moves them back. ``latest.json`` is written last,
  so a reader that starts from it finds every file it names.

Every file is written to a temporary name and renamed into place: a reader never sees half a file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from segflow.activation.campaigns import Campaign, action_for, campaigns_path
from segflow.settings import Settings

SCHEMA_VERSION = 1
DELTA_COLUMNS = ("as_of", "previous_as_of", "customer_id", "change", "from_segment_id", "from_segment_name",
                 "to_segment_id", "to_segment_name", "action", "campaign", "action_params")


@dataclass
class Previous:
    """The publication before this one: its week and its snapshot (None for the first publication)."""

    as_of: datetime | None
    frame: pd.DataFrame | None
    source: str  # file | warehouse | none


def compute_delta(current: pd.DataFrame, previous: Previous, segments: pd.DataFrame, campaigns: list[Campaign],
                  as_of: datetime) -> pd.DataFrame:
    """entered / left / moved rows (unchanged customers are left out), with the entered segment's action."""
    now = current[["customer_id", "segment_id", "segment_name"]]
    before = (previous.frame[["customer_id", "segment_id", "segment_name"]] if previous.frame is not None
              else now.iloc[0:0])
    merged = before.merge(now, on="customer_id", how="outer", suffixes=("_from", "_to"))
    merged["change"] = "moved"
    merged.loc[merged["segment_id_from"].isna(), "change"] = "entered"
    merged.loc[merged["segment_id_to"].isna(), "change"] = "left"
    merged = merged[merged["segment_id_from"].isna() | merged["segment_id_to"].isna()
                    | (merged["segment_id_from"] != merged["segment_id_to"])]
    rules = dict(zip(segments["segment_id"], segments["name_rule"], strict=True))
    actions = {sid: action_for(campaigns, sid, name, rules.get(sid))
               for sid, name in zip(segments["segment_id"], segments["segment_name"], strict=True)}
    none = (None, None, None)
    picked = [actions.get(sid, none) if change != "left" else none
              for sid, change in zip(merged["segment_id_to"], merged["change"], strict=True)]
    delta = pd.DataFrame({
        "as_of": as_of, "previous_as_of": previous.as_of, "customer_id": merged["customer_id"],
        "change": merged["change"], "from_segment_id": merged["segment_id_from"],
        "from_segment_name": merged["segment_name_from"], "to_segment_id": merged["segment_id_to"],
        "to_segment_name": merged["segment_name_to"], "action": [p[0] for p in picked],
        "campaign": [p[1] for p in picked], "action_params": [p[2] for p in picked]})
    delta["previous_as_of"] = pd.to_datetime(delta["previous_as_of"])
    for column in DELTA_COLUMNS[3:]:
        delta[column] = delta[column].astype("string")
    return delta.sort_values("customer_id").reset_index(drop=True)[list(DELTA_COLUMNS)]


def _atomic(target: Path, write: Callable[[Path], None]) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    write(tmp)
    tmp.replace(target)


def _csv(frame: pd.DataFrame) -> Callable[[Path], None]:
    return lambda tmp: frame.to_csv(tmp, index=False)


def _parquet(frame: pd.DataFrame) -> Callable[[Path], None]:
    return lambda tmp: frame.to_parquet(tmp, index=False)


def write_exports(settings: Settings, as_of: datetime, run_id: str, snapshot: pd.DataFrame, segments: pd.DataFrame,
                  previous: Previous, campaigns: list[Campaign], move_latest: bool) -> dict:
    """Write the snapshot, the delta and the manifest; returns the manifest."""
    out = settings.exports_dir / "segments"
    for folder in (out, out / "deltas", out / "manifests"):
        folder.mkdir(parents=True, exist_ok=True)
    day = f"{as_of:%Y-%m-%d}"
    delta = compute_delta(snapshot, previous, segments, campaigns, as_of)
    files = {"snapshot_csv": f"segments_{day}.csv", "snapshot_parquet": f"segments_{day}.parquet",
             "delta_csv": f"deltas/delta_{day}.csv", "delta_parquet": f"deltas/delta_{day}.parquet"}
    _atomic(out / files["snapshot_csv"], _csv(snapshot))
    _atomic(out / files["snapshot_parquet"], _parquet(snapshot))
    _atomic(out / files["delta_csv"], _csv(delta))
    _atomic(out / files["delta_parquet"], _parquet(delta))
    sizes = snapshot["segment_id"].value_counts()
    rules = dict(zip(segments["segment_id"], segments["name_rule"], strict=True))
    listed = []
    for sid, name in sorted(zip(segments["segment_id"], segments["segment_name"], strict=True)):
        action, campaign, params = action_for(campaigns, sid, name, rules.get(sid))
        listed.append({"segment_id": sid, "segment_name": name, "name_rule": rules.get(sid),
                       "customers": int(sizes.get(sid, 0)), "action": action, "campaign": campaign,
                       "action_params": json.loads(params) if params else None})
    counts = delta["change"].value_counts()
    source = campaigns_path(settings)
    manifest = {
        "schema_version": SCHEMA_VERSION, "as_of": as_of.isoformat(),
        "previous_as_of": previous.as_of.isoformat() if previous.as_of else None, "previous_source": previous.source,
        "run_id": run_id, "published_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "customers": len(snapshot), "segments": listed,
        "delta": {"rows": len(delta), **{c: int(counts.get(c, 0)) for c in ("entered", "left", "moved")},
                  "unchanged": len(snapshot) - int(counts.get("entered", 0)) - int(counts.get("moved", 0))},
        "campaigns_file": str(source) if source else None, "files": files,
        "is_latest": move_latest,
    }
    text = json.dumps(manifest, indent=2) + "\n"
    _atomic(out / "manifests" / f"manifest_{day}.json", lambda tmp: tmp.write_text(text))
    if move_latest:
        for name, target in (("snapshot_csv", "latest.csv"), ("snapshot_parquet", "latest.parquet"),
                             ("delta_csv", "latest_delta.csv"), ("delta_parquet", "latest_delta.parquet")):
            _atomic(out / target, lambda tmp, src=out / files[name]: shutil.copyfile(src, tmp))
        _atomic(out / "latest.json", lambda tmp: tmp.write_text(text))
    return manifest


def manifest_for(settings: Settings, as_of: datetime | None = None) -> dict | None:
    """The manifest of the week ``as_of`` (default: latest.json); None when that week was not published."""
    out = settings.exports_dir / "segments"
    path = out / "latest.json" if as_of is None else out / "manifests" / f"manifest_{as_of:%Y-%m-%d}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())
