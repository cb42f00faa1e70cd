"""Right to erasure, end to end on a real warehouse: `segflow erase` (the CLI, as a user runs it) removes one
person from every table, view and file, leaves everybody else's rows exactly as they were, survives a full
rebuild, and keeps the person out when an old landing file is delivered again.

The person is chosen from the built demo (a customer with two devices, an order, a feature row and a rejected
line naming them) and given more ways to be found: an old account aliased to them, a new device they
identified, e-mail-only events (a pseudonymous `email:<hash>` customer merged into them) and a quarantined
event. Their identifiers are collected here from the identity graph and the raw profile - independently of
the erasure code - and "naming the person" is a token search of every varchar column and every file.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests_support import files_naming, identifier_pattern, mention_split, relations, week_end

from segflow.jobs.build import build
from segflow.jobs.drift import check_drift
from segflow.jobs.load import load_landing, load_paths
from segflow.jobs.publish_segments import publish
from segflow.jobs.segment import recluster
from segflow.jobs.validate import validate
from segflow.privacy import install_pseudonymizer, resolve_pii_key
from segflow.settings import Settings
from segflow.warehouse import connect

pytestmark = pytest.mark.slow

AS_OF = week_end(4)
ERASURE_TABLES = {"meta.erasure_log", "meta.erasure_log_detail", "meta.erasure_list", "meta.erased_rows"}
# tables every run writes to (a dry run too): the run log gains the erasure's runs, without the person
RUN_TABLES = {"meta.run_log"}


def _pick_person(settings: Settings) -> tuple[str, str]:
    with connect(settings, read_only=True) as con:
        return con.execute("""
            with rejected as (
                select distinct regexp_extract(raw_line, 'C[0-9]{6}') as customer_id from meta.load_rejects),
            devices as (
                select customer_id, count(*) as n from intermediate.int_identity_graph
                where identifier_kind = 'anonymous_id' group by 1)
            select f.customer_id, c.email
            from marts.customer_features as f
            inner join devices as d on d.customer_id = f.customer_id and d.n >= 2
            inner join rejected as r on r.customer_id = f.customer_id
            inner join raw.customers as c on c.customer_id = f.customer_id
            where f.customer_id in (select customer_id from marts.fct_orders)
            order by 1 limit 1""").fetchall()[0]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def _more_ways_to_find(settings: Settings, person: str, email: str) -> None:
    """An old account aliased to the person, a device they identified, e-mail-only events, a quarantined row."""
    day = "2025-09-27T10:{:02d}:00Z"
    _write(settings.landing_dir / "events" / "events_2025-09-27_more.csv",
           ["event_id", "event_type", "occurred_at", "anonymous_id", "user_id", "email", "channel"], [
               ["E-ERASE-1", "page_view", day.format(0), "", "", email.upper(), "web"],
               ["E-ERASE-2", "page_view", day.format(5), "a-erase-new-device", "", "", "web"],
               ["E-ERASE-3", "not_a_type", day.format(7), "", person, "", "web"],
               ["E-ERASE-4", "page_view", day.format(9), "", f"legacy-{person}", "", "web"],
           ])
    _write(settings.landing_dir / "identities" / "identities_2025-09-27.csv",
           ["identity_id", "kind", "user_id", "anonymous_id", "previous_id", "email", "occurred_at"], [
               ["I-ERASE-1", "identify", person, "a-erase-new-device", "", "", day.format(6)],
               ["I-ERASE-2", "alias", person, "", f"legacy-{person}", "", day.format(10)],
           ])


def _identifiers(settings: Settings, person: str) -> set[str]:
    """Every id and pseudonym of the person, read from the warehouse before the erasure."""
    with connect(settings, read_only=True) as con:
        ids = {v for (v,) in con.execute("select identifier from intermediate.int_identity_graph "
                                         "where customer_id = ?", [person]).fetchall()}
        ids |= {f"anon:{v}" for (v,) in con.execute(
            "select identifier from intermediate.int_identity_graph where customer_id = ? "
            "and identifier_kind = 'anonymous_id'", [person]).fetchall()}
        ids |= {v.lower() for (v,) in con.execute("select email from raw.customers where customer_id = ?",
                                                   [person]).fetchall()}
        # their events, sessions and orders: ids that are the person's too
        ids |= {v for (v,) in con.execute(
            "select event_id from intermediate.int_events_stitched where customer_id = ? union "
            "select event_id from staging.stg_raw__events_quarantine where user_id = ? union "
            "select session_id from marts.fct_sessions where customer_id = ? union "
            "select order_id from marts.fct_orders where customer_id = ?", [person] * 4).fetchall()}
    return ids


def _snapshot(settings: Settings, pattern: str) -> dict[str, tuple[int, int, str]]:
    with connect(settings, read_only=True) as con:
        return {rel: mention_split(con, rel, cols, pattern) for rel, cols in relations(con, views=False).items()}


def _naming(settings: Settings, pattern: str) -> dict[str, int]:
    """Every table and view (all schemas, every varchar column) with rows naming the person. The staging views
    that pseudonymize are read as dbt reads them (with the PII key's session macro)."""
    with connect(settings, read_only=True) as con:
        install_pseudonymizer(con, resolve_pii_key(settings).secret)
        found = {rel: mention_split(con, rel, cols, pattern)[0] for rel, cols in relations(con).items()}
    return {rel: n for rel, n in found.items() if n}


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SEGFLOW_HOME": str(settings.home)}
    return subprocess.run([str(Path(sys.executable).with_name("segflow")), "erase", *args], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def erased(built_home, tmp_path_factory):
    """The built demo with one more week-4 delivery, segmented and published; then the person erased."""
    home = tmp_path_factory.mktemp("erasure") / "home"
    shutil.copytree(built_home.home, home, ignore=shutil.ignore_patterns("*.wal"))
    settings = Settings(home=home)
    person, email = _pick_person(settings)
    _more_ways_to_find(settings, person, email)
    load_landing(settings)
    build(settings, as_of=AS_OF)
    validate(settings, as_of=AS_OF)
    recluster(settings, as_of=AS_OF)
    check_drift(settings, as_of=AS_OF)
    publish(settings, as_of=AS_OF)

    ids = _identifiers(settings, person)
    pattern = identifier_pattern(ids)
    before = _snapshot(settings, pattern)
    exports_before = {p: p.read_bytes() for p in settings.exports_dir.rglob("*") if p.is_file()}
    dry = _cli(settings, "--customer", person, "--reference", "DSR-1", "--dry-run")
    after_dry = _snapshot(settings, pattern)
    exports_after_dry = {p: p.read_bytes() for p in settings.exports_dir.rglob("*") if p.is_file()}
    real = _cli(settings, "--customer", person, "--reference", "DSR-1")
    return {"settings": settings, "person": person, "email": email, "ids": ids, "pattern": pattern,
            "before": before, "dry": dry, "after_dry": after_dry, "exports_before": exports_before,
            "exports_after_dry": exports_after_dry, "real": real}


def test_the_person_is_found_through_every_link(erased):
    ids = erased["ids"]
    person = erased["person"]
    assert {person, f"legacy-{person}", "a-erase-new-device", "anon:a-erase-new-device", erased["email"].lower(),
            "E-ERASE-1", "E-ERASE-3"} <= ids
    assert any(i.startswith("email:") for i in ids)  # the e-mail-only events' pseudonymous customer merged in
    naming_before = {rel for rel, (n, _, _) in erased["before"].items() if n}
    assert {"raw.events", "raw.customers", "raw.identities", "meta.load_rejects", "staging.base_raw__events",
            "intermediate.int_identity_graph", "marts.dim_customers", "marts.customer_features",
            "ml.feature_snapshots", "ml.segment_assignments"} <= naming_before


def test_a_dry_run_counts_and_changes_nothing(erased):
    assert erased["dry"].returncode == 0, erased["dry"].stderr
    dry, real = json.loads(erased["dry"].stdout), json.loads(erased["real"].stdout)
    assert dry["status"] == "dry_run"
    unchanged = set(erased["before"]) - RUN_TABLES
    assert {t: erased["after_dry"][t] for t in unchanged} == {t: erased["before"][t] for t in unchanged}
    assert erased["exports_after_dry"] == erased["exports_before"]
    assert dry["tables"] == real["tables"] and dry["files"] == real["files"]


def test_no_table_view_or_file_names_the_person_afterwards(erased):
    assert erased["real"].returncode == 0, erased["real"].stderr
    settings = erased["settings"]
    assert _naming(settings, erased["pattern"]) == {}
    assert files_naming(settings.exports_dir, erased["ids"]) == []
    assert files_naming(settings.artifacts_dir, erased["ids"]) == []
    assert erased["exports_before"] and files_naming(settings.exports_dir, [erased["person"]]) == []


def test_everybody_else_is_untouched(erased):
    after = _snapshot(erased["settings"], erased["pattern"])
    for relation, (_naming, others, digest) in erased["before"].items():
        if relation in ERASURE_TABLES | RUN_TABLES:
            continue
        assert after[relation] == (0, others, digest), relation  # the same other rows, only the person's gone
    with connect(erased["settings"], read_only=True) as con:
        runs = con.execute("select status, error, summary from meta.run_log where step = 'erase' "
                           "order by started_at").fetchall()
    assert runs == [("success", None, None), ("success", None, None)]  # the dry run and the erasure, no detail
    # the export files lost exactly the person's lines
    for path, content in erased["exports_before"].items():
        if path.suffix not in (".csv", ".jsonl"):  # Parquet / JSON manifests: checked by the naming scan above
            continue
        lines = content.decode().splitlines()
        kept = [line for line in lines if not re.search(erased["pattern"], line.lower())]
        assert path.read_text().splitlines() == kept, path
        assert len(kept) == len(lines) - (1 if path.suffix == ".csv" else 0)


def test_the_audit_log_says_who_what_and_how_many_without_the_person(erased):
    result = json.loads(erased["real"].stdout)
    with connect(erased["settings"], read_only=True) as con:
        log = con.execute("select erasure_id, action, requested_by, reference, status, rows_erased "
                          "from meta.erasure_log").fetchall()
        detail = dict(con.execute("select target, rows_erased from meta.erasure_log_detail where target_kind = "
                                  "'table'").fetchall())
    assert [(r[0], r[1], r[3], r[4]) for r in log] == [(result["erasure_id"], "erase", "DSR-1", "done")]
    assert "(segflow erase)" in log[0][2]
    # rows per table as counted here before the erasure
    for relation in ("raw.events", "raw.customers", "raw.identities", "meta.load_rejects", "marts.dim_customers",
                     "ml.feature_snapshots", "ml.segment_assignments", "staging.base_raw__events"):
        assert detail[relation] == erased["before"][relation][0], relation


def test_a_rebuild_and_a_redelivered_file_do_not_bring_the_person_back(erased):
    settings, pattern = erased["settings"], erased["pattern"]
    raw_rows = sum(n for rel, (n, _, _) in erased["before"].items() if rel.startswith("raw."))
    others_features = erased["before"]["marts.customer_features"][1:]

    rebuilt = build(settings, as_of=AS_OF)
    assert rebuilt.mode == "full" and "erased" in rebuilt.reason
    assert _naming(settings, pattern) == {}
    with connect(settings, read_only=True) as con:
        balanced, erased_rows = con.execute("select bool_and(is_balanced), sum(rows_erased) "
                                            "from marts.fct_load_audit").fetchall()[0]
        features = mention_split(con, "marts.customer_features", ["customer_id"], pattern)
    assert balanced and erased_rows == raw_rows
    assert features[1:] == others_features  # everybody else's features are exactly as before

    # the producer delivers the person's busiest file again
    busiest = max((p for p in settings.landing_dir.rglob("*.csv")),
                  key=lambda p: sum(1 for line in p.read_text().lower().splitlines() if re.search(pattern, line)))
    theirs = sum(1 for line in busiest.read_text().lower().splitlines() if re.search(pattern, line))
    report = load_paths([busiest], settings=settings, stream=busiest.parent.name, replace=True)
    assert [(f.status, f.rows_erased) for f in report.files] == [("loaded", theirs)]
    build(settings, as_of=AS_OF)
    assert _naming(settings, pattern) == {}
    with connect(settings, read_only=True) as con:
        assert con.execute("select bool_and(is_balanced) from marts.fct_load_audit").fetchall()[0][0]


def test_unknown_or_already_erased_ids_erase_nothing(erased):
    settings = erased["settings"]
    with connect(settings, read_only=True) as con:
        logged = con.execute("select count(*) from meta.erasure_log").fetchall()[0][0]
    again = _cli(settings, "--customer", erased["person"])
    unknown = _cli(settings, "--email", "nobody@example.com")
    assert again.returncode == unknown.returncode == 2
    assert again.stderr.count("\n") == 1 and "erased by er-" in again.stderr
    assert "e-mail 'nobody@example.com'" in unknown.stderr and "Traceback" not in unknown.stderr
    with connect(settings, read_only=True) as con:
        assert con.execute("select count(*) from meta.erasure_log").fetchall()[0][0] == logged
