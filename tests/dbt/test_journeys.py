"""The journey marts agree with an independent recomputation in Python from the events they are built from.

Funnels are replayed event by event from the funnel_steps seed file, the Markov chain is rebuilt from the
session paths and its absorption probabilities solved exactly with numpy (the models square matrices in SQL),
and the top paths are recounted. Nothing here reads a number the journey models computed from their own parts.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from segflow.warehouse import connect

SEED = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "journeys" / "funnel_steps.csv"
PATH_STEPS = 5  # segflow__journey_path_steps default


@pytest.fixture(scope="module")
def session_events(built_home):
    """Every event of a non-runaway session, in session order: (session_id, occurred_at, event_id, ...)."""
    with connect(built_home, read_only=True) as con:
        rows = con.execute("""
            select z.session_id, z.occurred_at, z.event_id, s.event_type, s.page_type, s.is_order_line,
                s.channel, z.customer_id, z.session_started_at
            from intermediate.int_events_sessionized z
            join intermediate.int_events_stitched s using (event_id)
            where z.session_id not in (select session_id from intermediate.int_sessions_quarantine)
            order by z.session_id, z.occurred_at, z.event_id""").fetchall()
    sessions = defaultdict(list)
    for row in rows:
        sessions[row[0]].append(row)
    assert len(sessions) > 1000
    return sessions


def _funnels() -> dict[str, dict[int, set[str]]]:
    funnels: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    with open(SEED) as fh:
        for row in csv.DictReader(fh):
            funnels[row["funnel"]][int(row["step_number"])].add(row["event_type"])
    return funnels


def _replay(events, steps: dict[int, set[str]]) -> list:
    """When each step was reached in order: step k at the first of its events at or after step k-1."""
    reached = []
    for number in sorted(steps):
        after = reached[-1] if reached else None
        times = [e[1] for e in events if e[3] in steps[number] and (after is None or e[1] >= after)]
        if not times:
            break
        reached.append(min(times))
    return reached


def test_funnel_sessions_match_an_event_replay(built_home, session_events):
    with connect(built_home, read_only=True) as con:
        stored = {(r[0], r[1]): r[2:] for r in con.execute(
            "select session_id, funnel, furthest_step_number, seconds_to_convert, step_1_at, step_2_at, "
            "step_3_at, step_4_at from marts.fct_funnel_sessions").fetchall()}
    expected = {}
    for funnel, steps in _funnels().items():
        for session_id, events in session_events.items():
            reached = _replay(events, steps)
            seconds = (reached[-1] - reached[0]).total_seconds() if len(reached) == len(steps) else None
            expected[(session_id, funnel)] = (len(reached), seconds, *(reached + [None] * 4)[:4])
    assert stored == expected
    furthest = Counter(v[0] for v in expected.values())
    # the replay is not trivial: out-of-order events exist (sessions with a purchase that did not convert)
    assert furthest[4] > 100 and furthest[0] > 0 and furthest[1] > 0 and furthest[2] > 0


def test_funnel_daily_counts_match_the_replay(built_home, session_events):
    steps = _funnels()["purchase"]
    expected = Counter()
    for events in session_events.values():
        reached = _replay(events, steps)
        if reached:
            key = (events[0][8].date(), min(e[6] for e in events), any(e[7] is not None for e in events))
            for number in range(1, len(reached) + 1):
                expected[(*key, number)] += 1
    with connect(built_home, read_only=True) as con:
        rows = con.execute("select session_started_date, channel, is_known_customer, step_number, sessions_reached "
                           "from marts.agg_funnel_daily where funnel = 'purchase' and sessions_reached > 0"
                           ).fetchall()
    assert {r[:4]: r[4] for r in rows} == dict(expected)


def _paths(session_events) -> dict[str, list[str]]:
    """Each session's state path: page_type else event_type, repeats collapsed, cut at the first order line."""
    paths = {}
    for session_id, events in session_events.items():
        path = []
        for event in events:
            state = "(conversion)" if event[5] else (event[4] or event[3])
            if not path or path[-1] != state:
                path.append(state)
            if state == "(conversion)":
                break
        paths[session_id] = path if path[-1] == "(conversion)" else [*path, "(null)"]
    return paths


def test_markov_chain_and_removal_effects_match_an_exact_solve(built_home, session_events):
    paths = _paths(session_events)
    counts = Counter()
    for path in paths.values():
        for a, b in zip(["(start)", *path], path, strict=False):
            counts[(a, b)] += 1
    with connect(built_home, read_only=True) as con:
        transitions = {(r[0], r[1]): r[2] for r in con.execute(
            "select from_state, to_state, transitions from marts.journey_markov_transitions").fetchall()}
        effects = {r[0]: r[1:] for r in con.execute(
            "select state, base_conversion_probability, removal_conversion_probability, removal_effect, "
            "attributed_conversions, unabsorbed_probability from marts.journey_removal_effects").fetchall()}
        converted, sessions = con.execute(
            "select count(*) filter (where has_purchase), count(*) from marts.fct_sessions").fetchone()
    assert transitions == dict(counts)

    states = sorted({a for a, _ in counts} - {"(start)"})
    assert set(effects) == set(states) and len(states) >= 8
    index = {s: i for i, s in enumerate(["(start)", *states])}
    totals = Counter()
    for (a, _), n in counts.items():
        totals[a] += n

    def conversion(removed: str | None) -> float:
        # absorbing chain: x = Q x + r, x[s] = P(absorbed in conversion | at s); a removed state leads to exit
        q = np.zeros((len(index), len(index)))
        r = np.zeros(len(index))
        for (a, b), n in counts.items():
            if a == removed:
                continue
            if b == "(conversion)":
                r[index[a]] += n / totals[a]
            elif b != "(null)":
                q[index[a], index[b]] += n / totals[a]
        return float(np.linalg.solve(np.eye(len(index)) - q, r)[index["(start)"]])

    base = conversion(None)
    # a first-order chain built from the paths converts as often as the sessions did
    assert base == pytest.approx(converted / sessions, abs=1e-9)
    raw = {s: 1 - conversion(s) / base for s in states}
    conversions = sum(n for (_, b), n in counts.items() if b == "(conversion)")
    for state, (stored_base, removed, effect, attributed, unabsorbed) in effects.items():
        assert stored_base == pytest.approx(base, abs=1e-8)
        assert removed == pytest.approx(conversion(state), abs=1e-8)
        assert effect == pytest.approx(raw[state], abs=1e-8)
        assert attributed == pytest.approx(raw[state] / sum(raw.values()) * conversions, abs=1e-6)
        assert unabsorbed < 1e-9


def test_top_paths_and_edges_match_a_recount(built_home, session_events):
    paths = _paths(session_events)
    expected = Counter()
    converted = Counter()
    edges = Counter()
    for path in paths.values():
        key = " > ".join(path[:PATH_STEPS]) + (" > ..." if len(path) > PATH_STEPS else "")
        expected[key] += 1
        converted[key] += path[-1] == "(conversion)"
        for i, (a, b) in enumerate(zip(path[:PATH_STEPS - 1], path[1:PATH_STEPS], strict=False), start=1):
            edges[(i, a, b)] += 1
    with connect(built_home, read_only=True) as con:
        stored = {r[0]: (r[1], r[2]) for r in con.execute(
            "select path, sessions, converted_sessions from marts.journey_top_paths").fetchall()}
        stored_edges = {(r[0], r[1], r[2]): r[3] for r in con.execute(
            "select step_index, source_state, target_state, sessions from marts.journey_path_edges").fetchall()}
        top, = con.execute("select path from marts.journey_top_paths where path_rank = 1").fetchone()
    assert stored == {k: (n, converted[k]) for k, n in expected.items()}
    assert stored_edges == dict(edges)
    assert expected[top] == max(expected.values())
