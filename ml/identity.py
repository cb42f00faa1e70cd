"""Stable segment identities across re-clusterings, and human-readable segment names."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

__all__ = ["RULES", "assign_names", "match_segments", "name_segments", "propose_names"]

_TRAILING_DIGITS = re.compile(r"(\d+)$")


def _next_number(ids: list[str]) -> int:
    numbers = [int(m.group(1)) for m in map(_TRAILING_DIGITS.search, ids) if m]
    return max(numbers, default=0) + 1


def match_segments(
    previous: Mapping[str, np.ndarray],
    centroids: np.ndarray,
    *,
    max_distance: float,
    id_prefix: str = "S",
) -> list[str]:
    """Give each current cluster a segment id, reusing previous ids for clusters that barely moved.

    ``previous`` maps existing ids to centroids in the same space as ``centroids``
    (one row per current cluster). Clusters are paired with previous segments by a
    minimum-total-distance one-to-one assignment that first maximises the number of
    pairs within ``max_distance`` (Euclidean); such pairs keep the previous id. Every
    other cluster gets a fresh id ``f"{id_prefix}{n:02d}"``, numbered in cluster order
    from one past the highest trailing number among the previous ids (from 1 if none).
    Returns one id per cluster, all distinct.
    """
    centers = np.asarray(centroids, dtype=np.float64)
    if centers.ndim != 2:
        raise ValueError(f"centroids must be 2-D (n_clusters, n_features), got shape {centers.shape}")
    if not np.isfinite(centers).all():
        raise ValueError("centroids contain NaN or infinite values")
    if not (max_distance >= 0):  # also rejects NaN
        raise ValueError(f"max_distance must be >= 0, got {max_distance!r}")
    n_clusters = centers.shape[0]

    prev_ids = list(previous)
    assigned: list[str | None] = [None] * n_clusters
    if prev_ids and n_clusters:
        prev = np.vstack([np.asarray(previous[i], dtype=np.float64).reshape(1, -1) for i in prev_ids])
        if prev.shape[1] != centers.shape[1]:
            raise ValueError(
                f"previous centroids have {prev.shape[1]} features, current centroids have {centers.shape[1]}"
            )
        if not np.isfinite(prev).all():
            raise ValueError("previous centroids contain NaN or infinite values")
        dist = np.sqrt(((centers[:, None, :] - prev[None, :, :]) ** 2).sum(axis=2))
        within = dist <= max_distance
        # Pairs beyond max_distance cost more than any set of admissible pairs, so the
        # assignment maximises the number of admissible pairs, then minimises their distance.
        penalty = (min(dist.shape) + 1) * (float(dist[within].max(initial=0.0)) + 1.0)
        cost = np.where(within, dist, penalty)
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols, strict=True):
            if within[r, c]:
                assigned[r] = prev_ids[c]

    next_n = _next_number(prev_ids)
    result: list[str] = []
    for segment_id in assigned:
        if segment_id is None:
            segment_id = f"{id_prefix}{next_n:02d}"
            next_n += 1
        result.append(segment_id)
    return result


# ---------------------------------------------------------------------------
# Naming

_DORMANT = "Dormant / churn risk"
_NEW = "New customers"
_HIGH_VALUE = "High-value loyalists"
_POWER = "Power users"
_WINDOW = "Window shoppers / cart abandoners"
_OCCASIONAL = "Occasional buyers"
_BOTS = "Bots / anomalies"
_AVERAGE = "Typical customers"


def _ratio(row: pd.Series, population: pd.Series, feature: str) -> float | None:
    """Cluster mean / population mean, or None when absent or undefined."""
    if feature not in row.index or feature not in population.index:
        return None
    value, base = row[feature], population[feature]
    if pd.isna(value) or pd.isna(base):
        return None
    value, base = float(value), float(base)
    if base > 0:
        return value / base
    if base == 0:
        return 1.0 if value == 0 else (math.inf if value > 0 else -math.inf)
    return None  # ratios against a negative mean are meaningless


def _rule_name(row: pd.Series, population: pd.Series) -> str | None:
    def r(feature: str) -> float | None:
        return _ratio(row, population, feature)

    def optional(feature: str, test: Callable[[float], bool]) -> bool:
        value = r(feature)
        return True if value is None else test(value)

    pages = r("pages_per_session")
    if pages is not None and pages >= 4.0:
        return _BOTS
    recency = r("recency_days")
    if recency is not None and recency >= 2.0 and float(row["recency_days"]) > 30:
        return _DORMANT
    tenure = r("tenure_days")
    if tenure is not None and tenure <= 0.5:
        return _NEW
    monetary = r("monetary")
    if monetary is not None and monetary >= 1.5 and optional("avg_order_value", lambda v: v >= 1.2):
        return _HIGH_VALUE
    abandonment = r("cart_abandonment_rate")
    if abandonment is not None and abandonment >= 1.3 and optional("frequency", lambda v: v <= 0.8):
        return _WINDOW
    sessions = r("sessions_28d")
    if sessions is not None and sessions >= 1.5:
        engagement = [v for v in (r("pages_per_session"), r("app_event_share")) if v is not None]
        if not engagement or max(engagement) >= 1.2:
            return _POWER
    frequency = r("frequency")
    if frequency is not None and frequency <= 0.6 and optional("sessions_28d", lambda v: v <= 0.8):
        return _OCCASIONAL
    return None


def _fallback_name(row: pd.Series, population: pd.Series, spread: pd.Series) -> str:
    best_feature, best_z = None, 0.0
    for feature, scale in spread.items():
        value, base = row[feature], population[feature]
        if pd.isna(value) or pd.isna(base) or not scale > 0:
            continue
        z = (float(value) - float(base)) / float(scale)
        if abs(z) > abs(best_z):
            best_feature, best_z = feature, z
    if best_feature is None:
        return _AVERAGE
    label = str(best_feature).replace("_", " ")
    return f"High {label}" if best_z > 0 else f"Low {label}"


def name_segments(profiles: pd.DataFrame, population: pd.Series) -> list[str]:
    """Name each cluster (row of ``profiles``, in positional order) from its raw feature means.

    ``population`` holds the overall mean of the same columns. With
    ``ratio = cluster mean / population mean``, the first matching rule wins:

    1. ``pages_per_session`` ratio >= 4                                 -> "Bots / anomalies"
    2. ``recency_days`` ratio >= 2 and ``recency_days`` > 30 days        -> "Dormant / churn risk"
    3. ``tenure_days`` ratio <= 0.5                                     -> "New customers"
    4. ``monetary`` ratio >= 1.5 and ``avg_order_value`` ratio >= 1.2    -> "High-value loyalists"
    5. ``cart_abandonment_rate`` ratio >= 1.3 and ``frequency`` ratio <= 0.8
                                                                         -> "Window shoppers / cart abandoners"
       (before power users: heavy browsing that rarely converts is the more specific signal)
    6. ``sessions_28d`` ratio >= 1.5 and (``pages_per_session`` or
       ``app_event_share`` ratio >= 1.2)                                 -> "Power users"
    7. ``frequency`` ratio <= 0.6 and ``sessions_28d`` ratio <= 0.8       -> "Occasional buyers"

    A rule needs its first feature; its secondary conditions are skipped when their
    features are absent (rule 6 needs only one of its two). Ratios are undefined for
    missing values or a negative population mean (the condition then fails); a zero
    population mean gives ratio 1 for a zero value and +/-inf otherwise.
    Otherwise the cluster is named after its most distinctive shared numeric column,
    measured as ``(mean - population) / std of the cluster means``: "High <feature>" or
    "Low <feature>" (underscores shown as spaces), or "Typical customers" when no
    column stands out. Repeated names get " (2)", " (3)", ... in cluster order.
    """
    shared = [c for c in profiles.columns if c in population.index]
    numeric = profiles[shared].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    pop = pd.to_numeric(population[shared], errors="coerce").astype(np.float64)
    spread = numeric.std(axis=0, ddof=0)

    names: list[str] = []
    for i in range(len(numeric)):
        row = numeric.iloc[i]
        names.append(_rule_name(row, pop) or _fallback_name(row, pop, spread))
    return _deduplicate(names)


def _deduplicate(names: list[str]) -> list[str]:
    taken: set[str] = set()
    seen: dict[str, int] = {}
    result: list[str] = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        candidate = name if count == 1 else f"{name} ({count})"
        while candidate in taken:
            count += 1
            seen[name] = count
            candidate = f"{name} ({count})"
        taken.add(candidate)
        result.append(candidate)
    return result


RULES = {
    _BOTS: "rule 1: pages_per_session >= 4 x population",
    _DORMANT: "rule 2: recency_days >= 2 x population and > 30 days",
    _NEW: "rule 3: tenure_days <= 0.5 x population",
    _HIGH_VALUE: "rule 4: monetary >= 1.5 x and avg_order_value >= 1.2 x population",
    _WINDOW: "rule 5: cart_abandonment_rate >= 1.3 x and frequency <= 0.8 x population",
    _POWER: "rule 6: sessions_28d >= 1.5 x and (pages_per_session or app_event_share) >= 1.2 x population",
    _OCCASIONAL: "rule 7: frequency <= 0.6 x and sessions_28d <= 0.8 x population",
}
"""The naming rule (see :func:`name_segments`) behind each archetype name, recorded beside the name."""


def propose_names(profiles: pd.DataFrame, population: pd.Series) -> list[tuple[str, str]]:
    """``(name, rule)`` per cluster before de-duplication: the first matching rule of :func:`name_segments`,
    else the fallback (its rule text names the feature and direction, e.g. "fallback: most distinctive feature
    frequency (high)")."""
    shared = [c for c in profiles.columns if c in population.index]
    numeric = profiles[shared].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    pop = pd.to_numeric(population[shared], errors="coerce").astype(np.float64)
    spread = numeric.std(axis=0, ddof=0)
    out = []
    for i in range(len(numeric)):
        row = numeric.iloc[i]
        name = _rule_name(row, pop)
        if name is not None:
            out.append((name, RULES[name]))
        else:
            name = _fallback_name(row, pop, spread)
            out.append((name, "fallback: no feature stands out" if name == _AVERAGE
                        else f"fallback: most distinctive feature ({name.lower()})"))
    return out


def _qualifier(row: pd.Series, others: pd.DataFrame) -> str | None:
    """The feature that most distinguishes ``row`` from ``others`` (same name), as "more/less <feature>"."""
    best, best_z = None, 0.0
    for feature in row.index:
        values = pd.concat([others[feature], pd.Series([row[feature]])]).astype(float)
        scale = values.abs().mean()
        if not scale > 0 or pd.isna(row[feature]):
            continue
        z = (float(row[feature]) - float(others[feature].mean())) / scale
        if abs(z) > abs(best_z):
            best, best_z = feature, z
    if best is None:
        return None
    return f"{'more' if best_z > 0 else 'less'} {str(best).replace('_', ' ')}"


def assign_names(
    ids: list[str],
    proposals: list[tuple[str, str]],
    profiles: pd.DataFrame,
    previous: Mapping[str, tuple[str, str]] | None = None,
) -> list[tuple[str, str]]:
    """Final ``(name, rule)`` per cluster, unique within the run.

    A cluster that kept a previous id keeps that id's previous name while its proposed rule is the one that
    named it before (the name stays attached to the id); otherwise it takes its proposal. Names kept from
    before are reserved first. Clusters proposing one name are told apart by the feature that distinguishes
    each from the others ("Occasional buyers - more tenure days"); a number is the last resort.
    """
    previous = previous or {}
    numeric = profiles.apply(pd.to_numeric, errors="coerce").astype(np.float64).reset_index(drop=True)
    result: list[tuple[str, str] | None] = [None] * len(ids)
    taken: set[str] = set()
    for i, (sid, (_, rule)) in enumerate(zip(ids, proposals, strict=True)):
        if sid in previous and previous[sid][1] == rule and previous[sid][0] not in taken:
            result[i] = previous[sid]
            taken.add(previous[sid][0])
    pending = [i for i in range(len(ids)) if result[i] is None]
    by_name: dict[str, list[int]] = {}
    for i in pending:
        by_name.setdefault(proposals[i][0], []).append(i)
    for name, group in by_name.items():
        clash = len(group) > 1 or name in taken
        for i in group:
            candidate = name
            if clash:
                others = [j for j in range(len(ids)) if j != i and (proposals[j][0] == name
                          or (result[j] is not None and result[j][0].startswith(name)))]
                q = _qualifier(numeric.iloc[i], numeric.iloc[others]) if others else None
                candidate = f"{name} - {q}" if q else name
            n = 2
            base = candidate
            while candidate in taken:
                candidate = f"{base} ({n})"
                n += 1
            taken.add(candidate)
            result[i] = (candidate, proposals[i][1])
    return [r for r in result if r is not None]
