"""Campaign mapping: which action a segment's customers get (``<home>/campaigns.yml`` or SEGFLOW_CAMPAIGNS_FILE).

A YAML list; the first entry whose ``match`` holds wins; a segment no entry matches gets no action::

    - campaign: loyalty-2025
      match: {name_contains: loyalist}       # case-insensitive part of the segment's name
      action: loyalty_reward
      params: {reward: double_points}
    - match: {segment_id: S05}               # a stable segment id
      action: re_engagement
      params: {incentive: 10% off}
    - match: {name_rule_contains: "rule 7"}  # part of the naming rule behind the name (ml.segments.name_rule)
      action: cross_sell

``match`` keys (all given must hold): ``segment_id`` (exact), ``segment_name`` (exact, case-insensitive),
``name_contains``, ``name_rule_contains`` (case-insensitive parts). Names come from the week's profiles and may
change; ids are stable while a segment lives. ``campaign`` defaults to the action; ``params`` is a flat map of
values passed along. Plain data only: nothing in the file is evaluated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from segflow.errors import InputError
from segflow.settings import Settings

MATCH_KEYS = ("segment_id", "segment_name", "name_contains", "name_rule_contains")
ENTRY_KEYS = {"campaign", "match", "action", "params"}


@dataclass(frozen=True)
class Campaign:
    action: str
    campaign: str
    match: dict[str, str]
    params: dict = field(default_factory=dict)

    def matches(self, segment_id: str | None, name: str | None, rule: str | None) -> bool:
        name, rule = (name or "").lower(), (rule or "").lower()
        tests = {"segment_id": lambda v: segment_id == v, "segment_name": lambda v: name == v.lower(),
                 "name_contains": lambda v: v.lower() in name, "name_rule_contains": lambda v: v.lower() in rule}
        return all(tests[key](value) for key, value in self.match.items())


def campaigns_path(settings: Settings) -> Path | None:
    path = settings.campaigns_file or settings.home / "campaigns.yml"
    return path if settings.campaigns_file is not None or path.is_file() else None


def _entry(number: int, entry) -> Campaign:
    where = f"entry {number}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a mapping with match and action")
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {', '.join(sorted(map(str, unknown)))} (allowed: "
                         f"{', '.join(sorted(ENTRY_KEYS))})")
    action, match, params = entry.get("action"), entry.get("match"), entry.get("params") or {}
    if not isinstance(action, str) or not action.strip():
        raise ValueError(f"{where} needs an action (text)")
    if not isinstance(match, dict) or not match:
        raise ValueError(f"{where} needs a match with one of {', '.join(MATCH_KEYS)}")
    bad = [k for k in match if k not in MATCH_KEYS]
    if bad:
        raise ValueError(f"{where}: unknown match key(s) {', '.join(map(str, bad))} (allowed: {', '.join(MATCH_KEYS)})")
    if not all(isinstance(v, str | int) and str(v).strip() for v in match.values()):
        raise ValueError(f"{where}: match values must be non-empty text")
    if not isinstance(params, dict) or not all(isinstance(v, str | int | float | bool) for v in params.values()):
        raise ValueError(f"{where}: params must be a flat mapping of plain values")
    campaign = entry.get("campaign") or action
    return Campaign(action=action.strip(), campaign=str(campaign), match={k: str(v) for k, v in match.items()},
                    params=dict(params))


def load_campaigns(settings: Settings) -> list[Campaign]:
    """The campaign mapping, or [] when there is none. Raises InputError with one line on a bad file."""
    import yaml

    path = campaigns_path(settings)
    if path is None:
        return []
    try:
        entries = yaml.safe_load(path.read_text()) or []
        if not isinstance(entries, list):
            raise ValueError("the file must hold a list of {match, action} entries")
        return [_entry(n, e) for n, e in enumerate(entries, start=1)]
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise InputError(f"campaign mapping {path}: {exc}".replace("\n", " ")) from exc


def action_for(campaigns: list[Campaign], segment_id, name, rule) -> tuple[str | None, str | None, str | None]:
    """(action, campaign, params as JSON) of the first matching entry; (None, None, None) when none matches."""
    if segment_id is None:
        return None, None, None
    for entry in campaigns:
        if entry.matches(segment_id, name, rule):
            return entry.action, entry.campaign, json.dumps(entry.params, sort_keys=True)
    return None, None, None
