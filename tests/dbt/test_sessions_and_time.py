"""Session ids that never change once issued, and event times that cannot be true.

Hand-made files, a real load and two real dbt builds: the second adds a late event earlier in a person's
history, an event dated after its file was delivered (2099) and one dated at the epoch (1970). A bot that
never goes idle makes a runaway session, which is quarantined instead of counted.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta

import pytest

from segflow.jobs.build import build
from segflow.jobs.load import load_landing
from segflow.settings import Settings
from segflow.warehouse import connect

pytestmark = pytest.mark.slow

HEADER = ("event_id", "event_type", "occurred_at", "user_id")


def _write(settings: Settings, name: str, rows: list[tuple]) -> None:
    path = settings.landing_dir / "events" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)


def _sessions(settings: Settings) -> dict[str, str]:
    """first event of each session -> session id"""
    with connect(settings, read_only=True) as con:
        return dict(con.execute("select min_by(event_id, occurred_at), session_id from "
                                "intermediate.int_events_sessionized group by session_id").fetchall())


def test_late_events_do_not_rename_later_sessions_and_impossible_times_are_quarantined(tmp_path):
    # no profiles or consent records: the events are processed only when collected under consent (the facts hold
    # consenting customers and anonymous visitors only)
    settings = Settings(home=tmp_path / "home", consent_policy="collected_under_consent")
    # a bot that never goes idle: one event every 10 minutes for 30 hours (above the 24-hour maximum)
    bot = [(f"b{i:03d}", "page_view", (datetime(2025, 1, 1) + timedelta(minutes=10 * i)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"), "BOT") for i in range(181)]
    _write(settings, "events_2025-01-03.csv", [
        ("e1", "page_view", "2025-01-02T10:00:00Z", "U1"), ("e2", "page_view", "2025-01-02T10:10:00Z", "U1"),
        ("e3", "page_view", "2025-01-03T10:00:00Z", "U1"), ("f1", "page_view", "2025-01-02T09:00:00Z", "U2"),
        *bot])
    load_landing(settings)
    build(settings)
    before = _sessions(settings)
    assert set(before) == {"e1", "e3", "f1", "b000"}
    with connect(settings, read_only=True) as con:
        runaway = con.execute("select person_key, event_count, quarantine_reason "
                              "from intermediate.int_sessions_quarantine").fetchall()
        in_facts = con.execute("select person_key, count(*) from marts.fct_sessions group by 1 order by 1").fetchall()
    assert runaway == [("BOT", 181, "runaway_session")]
    assert in_facts == [("U1", 2), ("U2", 1)]  # the runaway session is not a session

    _write(settings, "events_2025-01-04.csv", [
        ("e0", "page_view", "2025-01-01T08:00:00Z", "U1"),   # late: earlier in U1's history, its own session
        ("x1", "page_view", "2099-01-01T00:00:00Z", "U1"),   # after its file was delivered
        ("x2", "page_view", "1970-01-01T00:00:00Z", "U2")])  # an epoch-zero default
    load_landing(settings)
    build(settings)
    after = _sessions(settings)
    # every session issued before keeps its id; the late event got a session of its own
    assert {k: after[k] for k in before} == before
    assert set(after) == set(before) | {"e0"}
    with connect(settings, read_only=True) as con:
        quarantined = con.execute("select event_id, quarantine_reason from staging.stg_raw__events_quarantine "
                                  "order by 1").fetchall()
        as_of = con.execute("select as_of from intermediate.int_run_context").fetchone()[0]
    assert quarantined == [("x1", "implausible_timestamp"), ("x2", "implausible_timestamp")]
    # the default as-of is one second after the last plausible receipt: 2099 did not move it
    assert as_of == datetime(2025, 1, 3, 10, 0, 1)


def test_times_without_an_offset_are_utc_whatever_the_machine_zone(tmp_path, monkeypatch):
    """docs/data-contract.md: a delivered time without an offset is UTC. On a machine in New York, DuckDB's
    session zone would otherwise read '10:00:00' as 10:00 local (15:00 UTC)."""
    monkeypatch.setenv("TZ", "America/New_York")
    settings = Settings(home=tmp_path / "home")
    _write(settings, "events_2025-01-03.csv", [
        ("n1", "page_view", "2025-01-02 10:00:00", "U1"), ("n2", "page_view", "2025-01-02T11:00:00+01:00", "U1"),
        ("n3", "page_view", "2025-07-02T10:00:00", "U2")])  # summer time in New York
    load_landing(settings)
    build(settings)
    with connect(settings, read_only=True) as con:
        times = dict(con.execute("select event_id, occurred_at from staging.stg_raw__events").fetchall())
    assert times == {"n1": datetime(2025, 1, 2, 10), "n2": datetime(2025, 1, 2, 10), "n3": datetime(2025, 7, 2, 10)}
