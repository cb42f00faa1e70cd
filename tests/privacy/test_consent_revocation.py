"""Consent, end to end through real landing files: a customer who revokes analytics consent after earlier
builds disappears from the customer marts, the session, order and daily facts, earlier weeks' feature snapshots
and segment assignments and every export - and re-running an earlier week does not bring them back; everybody
else stays as they were. The incremental build that applies the decisions writes the same facts as a full one.

Week 4 of the built demo is segmented and published first. Then a consent file lands (loaded by the real
loader from landing/consent/): X revokes analytics consent, Y only marketing, Z - who had declined in the
profile - grants analytics. The ELT and the segmentation run for week 5, then week 4 is run again.
"""

from __future__ import annotations

import csv
import shutil

import pytest
from tests_support import identifier_pattern, mention_split, relations, table_differences, week_end

from segflow.jobs.anomalies import detect_anomalies
from segflow.jobs.build import build
from segflow.jobs.drift import check_drift
from segflow.jobs.elt import run_elt
from segflow.jobs.publish_segments import publish
from segflow.jobs.segment import recluster
from segflow.jobs.validate import validate
from segflow.settings import Settings
from segflow.warehouse import connect

pytestmark = pytest.mark.slow

WEEK4, WEEK5 = week_end(4), week_end(5)
# the tables that hold consenting customers only (dim_customers: the register keeps the id and the decision)
PERSON_LEVEL = ("marts.customer_", "marts.dim_customers", "marts.fct_", "intermediate.int_events_sessionized",
                "intermediate.int_customer_segments", "ml.")
# the facts the consent filter applies to, compared between the incremental and a full build
FACTS = ("intermediate.int_events_sessionized", "marts.fct_sessions", "marts.fct_page_views", "marts.fct_orders",
         "marts.fct_returns", "marts.fct_customer_daily_activity", "marts.fct_funnel_sessions",
         "marts.dim_customers", "marts.agg_daily_activity")


def _segment(settings: Settings, as_of) -> None:
    detect_anomalies(settings, as_of=as_of)
    recluster(settings, as_of=as_of)
    check_drift(settings, as_of=as_of)
    publish(settings, as_of=as_of)


def _pick(settings: Settings) -> tuple[str, str, str]:
    with connect(settings, read_only=True) as con:
        both = [c for (c,) in con.execute(
            "select customer_id from ml.feature_snapshots inner join marts.dim_customers using (customer_id) "
            "where has_analytics_consent and has_marketing_consent and customer_id in "
            "(select customer_id from marts.fct_sessions) and customer_id in (select customer_id from marts.fct_orders) "
            "order by customer_id limit 2").fetchall()]
        declined = con.execute(
            "select d.customer_id from marts.dim_customers as d inner join intermediate.int_events_stitched as e "
            "using (customer_id) where not d.has_analytics_consent and e.is_interactive "
            "group by 1 having count(*) > 5 order by 1 limit 1").fetchall()[0][0]
    return both[0], both[1], declined


def _split(settings: Settings, pattern: str, prefixes=PERSON_LEVEL) -> dict[str, tuple[int, int, str]]:
    with connect(settings, read_only=True) as con:
        return {rel: mention_split(con, rel, cols, pattern) for rel, cols in relations(con, views=False).items()
                if rel.startswith(prefixes) and "customer_id" in cols}


def _week4_rows(settings: Settings, customer: str) -> dict[str, tuple[int, int, str]]:
    """Week 4's snapshot, assignment and anomaly rows: (the customer's, the others', a hash of the others')."""
    with connect(settings, read_only=True) as con:
        return {table: con.execute(
            "select count(*) filter (where customer_id = $1), count(*) filter (where customer_id <> $1), "
            f"coalesce(sum(hash(t)) filter (where customer_id <> $1), 0)::varchar from ml.{table} as t "
            "where as_of = $2", [customer, WEEK4]).fetchall()[0]
            for table in ("feature_snapshots", "segment_assignments", "customer_anomalies")}


def _export_lines(settings: Settings) -> dict[str, list[str]]:
    return {p.name: p.read_text().splitlines() for p in (settings.exports_dir / "segments").glob("*.csv")}


@pytest.fixture(scope="module")
def revoked(built_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("consent") / "home"
    shutil.copytree(built_home.home, home, ignore=shutil.ignore_patterns("*.wal"))
    settings = Settings(home=home)
    validate(settings, as_of=WEEK4)
    _segment(settings, WEEK4)
    x, y, z = _pick(settings)
    pattern_x = identifier_pattern([x])
    before = {"tables": _split(settings, pattern_x), "exports": _export_lines(settings),
              "week4": _week4_rows(settings, x)}

    path = settings.landing_dir / "consent" / "consent_2025-10-01.csv"
    path.parent.mkdir(parents=True)
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([["customer_id", "purpose", "granted", "recorded_at"],
                                  [x, "analytics", "false", "2025-10-01T09:00:00Z"],
                                  [y, "marketing", "false", "2025-10-01T09:30:00Z"],
                                  [z, "analytics", "true", "2025-10-02T12:00:00Z"]])
    elt = run_elt(settings, as_of=WEEK5)
    _segment(settings, WEEK5)
    incremental5 = settings.home.parent / "after_week5.duckdb"
    shutil.copy(settings.warehouse_path, incremental5)
    facts = {}
    with connect(settings, read_only=True) as con:
        for c in (x, z):
            facts[c] = {table: con.execute(f"select count(*) from {table} where customer_id = ?", [c]).fetchall()[0][0]
                        for table in FACTS if table not in ("marts.agg_daily_activity", "marts.dim_customers")}
        dim_x = con.execute("select * from marts.dim_customers where customer_id = ?", [x]).df().iloc[0].to_dict()
    full5 = build(settings, as_of=WEEK5, full_refresh=True)
    differences = table_differences(incremental5, settings.warehouse_path, FACTS)
    after_week5 = {"tables": _split(settings, pattern_x), "exports": _export_lines(settings),
                   "week4": _week4_rows(settings, x)}
    with connect(settings, read_only=True) as con:
        consent5 = {c: con.execute("select has_analytics_consent, has_marketing_consent, analytics_consent_source "
                                   "from marts.dim_customers where customer_id = ?", [c]).fetchall()[0]
                    for c in (x, y, z)}
        in_features5 = {c: con.execute("select count(*) from marts.customer_features where customer_id = ?",
                                       [c]).fetchall()[0][0] for c in (x, y, z)}

    rerun = build(settings, as_of=WEEK4)  # week 4 again, after the revocation
    validate(settings, as_of=WEEK4)
    _segment(settings, WEEK4)
    with connect(settings, read_only=True) as con:
        consent4 = con.execute("select has_analytics_consent, analytics_consent_source from marts.dim_customers "
                               "where customer_id = ?", [x]).fetchall()[0]
        snapshot4 = {c for (c,) in con.execute("select customer_id from ml.feature_snapshots where as_of = ?",
                                               [WEEK4]).fetchall()}
        log = con.execute("select action, subjects, status from meta.erasure_log order by started_at").fetchall()
    return {"settings": settings, "x": x, "y": y, "z": z, "pattern_x": pattern_x, "before": before, "elt": elt,
            "after_week5": after_week5, "consent5": consent5, "in_features5": in_features5, "rerun": rerun,
            "consent4": consent4, "snapshot4": snapshot4, "log": log, "facts": facts, "dim_x": dim_x,
            "full5": full5, "differences": differences,
            "after_rerun": {"tables": _split(settings, pattern_x), "exports": _export_lines(settings)}}


def test_the_revocation_came_in_as_a_landing_file(revoked):
    assert revoked["elt"]["load"]["files_loaded"] == 1 and revoked["elt"]["gate"]["success"]
    assert revoked["consent5"][revoked["x"]] == (False, True, "consent_record")
    assert revoked["consent5"][revoked["y"]] == (True, False, "profile")
    assert revoked["consent5"][revoked["z"]][0] is True


def test_the_revoking_customer_leaves_marts_snapshots_assignments_and_exports(revoked):
    before = revoked["before"]["tables"]
    assert before["ml.feature_snapshots"][0] == 1 and before["ml.segment_assignments"][0] == 1
    assert before["marts.customer_features"][0] == 1
    for state in ("after_week5", "after_rerun"):
        tables = revoked[state]["tables"]
        naming = {rel: n for rel, (n, _, _) in tables.items() if n and rel != "marts.dim_customers"}
        assert naming == {}, state
        assert tables["marts.dim_customers"][0] == 1  # the consent register keeps the decision
        for name, lines in revoked[state]["exports"].items():
            assert not any(revoked["x"] in line for line in lines), (state, name)
    assert revoked["in_features5"][revoked["x"]] == 0


def test_earlier_weeks_are_redacted_and_everybody_else_kept(revoked):
    before, after = revoked["before"], revoked["after_week5"]
    for table, (theirs, others, digest) in before["week4"].items():
        assert theirs == 1, table
        assert after["week4"][table] == (0, others, digest), table  # only X's week-4 row went
    week4 = "segments_2025-09-29.csv"
    assert after["exports"][week4] == [line for line in before["exports"][week4] if revoked["x"] not in line]
    assert len(after["exports"][week4]) == len(before["exports"][week4]) - 1
    assert ("consent_redaction", 1, "done") in revoked["log"]


def test_a_grant_counts_from_its_date_a_revocation_for_every_week(revoked):
    assert revoked["in_features5"][revoked["z"]] == 1 and revoked["in_features5"][revoked["y"]] == 1
    assert revoked["rerun"].mode == "full"
    assert revoked["consent4"] == (False, "later_revocation")
    assert revoked["x"] not in revoked["snapshot4"]  # re-running week 4 does not bring the revoked customer back
    assert revoked["z"] not in revoked["snapshot4"]  # nor applies the later grant to week 4
    assert revoked["y"] in revoked["snapshot4"]


def test_the_facts_follow_consent_and_the_incremental_build_equals_a_full_one(revoked):
    x, z = revoked["x"], revoked["z"]
    assert revoked["elt"]["build"]["mode"] == "incremental"  # the decisions were applied by an incremental build
    assert revoked["full5"].mode == "full"
    assert set(revoked["facts"][x].values()) == {0}, revoked["facts"][x]  # X's history left every fact
    # Z declined in the profile, so had no rows; the grant wrote Z's history (Z has sessions and events)
    assert revoked["facts"][z]["marts.fct_sessions"] > 0 and revoked["facts"][z]["intermediate.int_events_sessionized"] > 0
    before = revoked["before"]["tables"]
    assert before["marts.fct_sessions"][0] > 0 and before["marts.fct_orders"][0] > 0  # X had rows before
    for table, (rows, only_incremental, only_full) in revoked["differences"].items():
        assert rows > 0 or table == "marts.fct_returns", table  # the demo's generator delivers no returns
        assert (only_incremental, only_full) == (0, 0), table


def test_the_register_keeps_only_the_decision_of_a_revoked_customer(revoked):
    dim = revoked["dim_x"]
    assert (dim["has_analytics_consent"], dim["has_marketing_consent"]) == (False, True)
    for column in ("email_hash", "country", "age_band", "signup_at", "first_seen_at", "last_seen_at"):
        assert dim[column] is None or dim[column] != dim[column], column  # NULL (NaT/NaN in pandas)
