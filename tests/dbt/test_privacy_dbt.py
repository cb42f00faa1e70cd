"""Keyed pseudonyms through real dbt builds: where the key never shows up, that the hashes are Python's HMAC,
that a hostile key changes nothing but the hashes, and that a raw-PII purge keeps every pseudonym.

The landing files are hand-made (e-mail on events, profiles and identify statements); every expected hash is
computed here with Python's ``hmac`` from the fixture's addresses, never read back from the warehouse.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import secrets
import shutil
import subprocess
import threading
from datetime import datetime, timedelta

import pytest

from segflow.jobs.build import build
from segflow.jobs.load import load_landing
from segflow.jobs.purge_pii import purge_pii
from segflow.privacy import PiiKeyError, hmac_pads
from segflow.settings import Settings
from segflow.warehouse import connect

pytestmark = pytest.mark.slow

AS_OF = datetime(2025, 1, 10)
# a key made of what broke the inlined salt: quotes, a statement, a comment, a backslash (and random)
CRAFTED_KEY = "'); select email from raw.events -- \\' " + secrets.token_hex(12)
PLAIN_KEY = secrets.token_hex(32)

EVENTS = ("event_id,event_type,occurred_at,anonymous_id,user_id,email",
          [("E1", "page_view", "2025-01-02T10:00:00Z", "D1", "", "Anna@Example.com"),
           ("E2", "page_view", "2025-01-02T11:00:00Z", "", "", " bob@example.org "),  # identified by e-mail only
           ("E3", "page_view", "2025-01-03T09:00:00Z", "", "", "bob@example.org"),
           ("E4", "page_view", "2025-01-03T10:00:00Z", "D2", "U1", ""),
           ("E5", "page_view", "2025-01-04T10:00:00Z", "", "U3", "")])
CUSTOMERS = ("customer_id,email,signup_at,country,consent_analytics",
             [("U1", "carl@example.net", "2025-01-01T08:00:00Z", "DE", "true"),
              ("U2", "anna@example.com", "2025-01-01T08:00:00Z", "FR", "true")])
IDENTITIES = ("identity_id,kind,user_id,anonymous_id,previous_id,email,occurred_at",
              [("I1", "identify", "U3", "", "", "Dora@Example.com", "2025-01-01T12:00:00Z")])
TREE = {"events/events_2025-01-02.csv": EVENTS, "customers/customers_2025-01-01.csv": CUSTOMERS,
        "identities/identities_2025-01-01.csv": IDENTITIES}
ADDRESSES = ["Anna@Example.com", " bob@example.org ", "bob@example.org", "carl@example.net", "anna@example.com",
             "Dora@Example.com"]


def expected(key: str, email: str) -> str:
    return hmac.new(key.encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()


def make_home(root, key: str, monkeypatch) -> Settings:
    monkeypatch.setenv("SEGFLOW_PII_KEY", key)
    settings = Settings(home=root, consent_policy="collected_under_consent")
    settings.ensure_dirs()
    for relative, (header, rows) in TREE.items():
        path = settings.landing_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            fh.write(header + "\n")
            csv.writer(fh, lineterminator="\n").writerows(rows)
    assert load_landing(settings).count("loaded") == len(TREE)
    return settings


def query(settings: Settings, sql: str, params=None) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def model_tables(settings: Settings) -> list[str]:
    return [f"{s}.{t}" for s, t in query(settings, "select table_schema, table_name from information_schema.tables "
                                                   "where table_schema in ('staging', 'intermediate', 'marts') "
                                                   "order by 1, 2")]


def watch_processes(stop: threading.Event, seen: list[str]) -> None:
    while not stop.is_set():
        out = subprocess.run(["ps", "-eo", "args", "-ww"], capture_output=True, text=True, check=False).stdout
        seen.extend(out.splitlines())
        stop.wait(0.1)


@pytest.fixture(scope="module")
def crafted_home(tmp_path_factory):
    """Built with CRAFTED_KEY, while every process's command line is sampled."""
    monkeypatch = pytest.MonkeyPatch()
    settings = make_home(tmp_path_factory.mktemp("crafted") / "home", CRAFTED_KEY, monkeypatch)
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=watch_processes, args=(stop, seen), daemon=True)
    watcher.start()
    try:
        build(settings, as_of=AS_OF)
    finally:
        stop.set()
        watcher.join()
    yield settings, seen
    monkeypatch.undo()


@pytest.fixture(scope="module")
def plain_home(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    settings = make_home(tmp_path_factory.mktemp("plain") / "home", PLAIN_KEY, monkeypatch)
    build(settings, as_of=AS_OF)
    yield settings
    monkeypatch.undo()


def test_the_key_is_in_no_artifact_log_compiled_sql_warehouse_or_command_line(crafted_home):
    settings, command_lines = crafted_home
    ipad, opad = hmac_pads(CRAFTED_KEY.encode())
    needles = [CRAFTED_KEY.encode(), CRAFTED_KEY.encode().hex().encode(), ipad, opad, ipad.hex().encode(),
               opad.hex().encode(), CRAFTED_KEY.split()[-1].encode()]  # the random tail alone, too
    files = [p for p in settings.artifacts_dir.rglob("*") if p.is_file()] + [settings.warehouse_path]
    names = {p.name for p in files}
    assert {"manifest.json", "run_results.json", "dbt.log", "build.out"} <= names  # what dbt leaves, searched
    compiled = [p for p in files if "compiled" in p.parts and p.name == "stg_raw__customers.sql"]
    assert compiled and "segflow_pseudonymize(lower(" in compiled[0].read_text()
    for path in files:
        content = path.read_bytes()
        assert not [n for n in needles if n in content], path
    assert any("dbt" in line and " build " in line for line in command_lines)  # the sampler saw dbt running
    assert not [line for line in command_lines if CRAFTED_KEY.split()[-1] in line]


def test_pseudonyms_equal_pythons_hmac_of_the_trimmed_lower_cased_address(crafted_home):
    settings, _ = crafted_home
    assert query(settings, "select customer_id, email_hash from staging.stg_raw__customers order by 1") == [
        ("U1", expected(CRAFTED_KEY, "carl@example.net")), ("U2", expected(CRAFTED_KEY, "anna@example.com"))]
    assert query(settings, "select email_hash from staging.base_raw__identities") == [
        (expected(CRAFTED_KEY, "Dora@Example.com"),)]
    events = dict(query(settings, "select event_id, user_id from staging.stg_raw__events"))
    assert events["E2"] == events["E3"] == "email:" + expected(CRAFTED_KEY, "bob@example.org")
    customers = {c for (c,) in query(settings, "select customer_id from marts.dim_customers")}
    assert "email:" + expected(CRAFTED_KEY, "bob@example.org") in customers
    # E1's address is U2's (other case): the identity graph joins them through the pseudonym
    stitched = dict(query(settings, "select event_id, customer_id from intermediate.int_events_stitched"))
    assert stitched["E1"] == "U2"


def test_no_table_past_raw_holds_an_address(crafted_home):
    settings, _ = crafted_home
    with connect(settings, read_only=True) as con:
        columns = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                              "where table_schema in ('staging', 'intermediate', 'marts') "
                              "and data_type = 'VARCHAR'").fetchall()
        leaks = [(s, t, c) for s, t, c in columns
                 if con.execute(f'select count(*) from {s}.{t} where "{c}" like \'%@%\'').fetchall()[0][0]]
    assert len(columns) > 100 and leaks == []


def test_a_crafted_key_changes_nothing_but_the_hashes(crafted_home, plain_home):
    crafted, _ = crafted_home
    tables = model_tables(crafted)
    assert tables == model_tables(plain_home) and len(tables) > 30
    for table in tables:
        with connect(crafted, read_only=True) as a, connect(plain_home, read_only=True) as b:
            has_hash = a.execute("select count(*) from information_schema.columns where table_schema || '.' || "
                                 "table_name = ? and column_name = 'email_hash'", [table]).fetchall()[0][0]
            sql = (f"select count(*), count(email_hash), count(distinct email_hash) from {table}" if has_hash
                   else f"select count(*) from {table}")
            assert a.execute(sql).fetchall() == b.execute(sql).fetchall(), table
    assert query(crafted, "select email_hash from marts.dim_customers where customer_id = 'U1'") == [
        (expected(CRAFTED_KEY, "carl@example.net"),)]
    assert query(plain_home, "select email_hash from marts.dim_customers where customer_id = 'U1'") == [
        (expected(PLAIN_KEY, "carl@example.net"),)]


PSEUDONYM_VIEWS = {
    "staging.stg_raw__customers": "customer_id, email_hash",
    "staging.base_raw__identities": "identity_id, email_hash",
    "staging.base_raw__events": "event_id, user_id, email_hash, quarantine_reason",
    "staging.stg_raw__events": "event_id, user_id, email_hash",
    "intermediate.int_identity_graph": "*",
    "intermediate.int_events_stitched": "event_id, customer_id, person_key",
    "marts.dim_customers": "customer_id, email_hash, has_analytics_consent",
}


def pseudonym_state(settings: Settings) -> dict[str, list[tuple]]:
    return {t: sorted(query(settings, f"select {cols} from {t}"), key=repr) for t, cols in PSEUDONYM_VIEWS.items()}


def test_purging_raw_pii_keeps_every_pseudonym_through_a_full_refresh(plain_home, tmp_path, monkeypatch):
    target = tmp_path / "home"
    shutil.copytree(plain_home.home, target, ignore=shutil.ignore_patterns("*.wal"))
    monkeypatch.setenv("SEGFLOW_PII_KEY", PLAIN_KEY)
    settings = Settings(home=target, consent_policy="collected_under_consent")
    before = pseudonym_state(settings)
    addresses = {"events": 3, "customers": 2, "identities": 1}  # non-empty e-mails in the fixture's files
    assert sum(addresses.values()) == len(ADDRESSES)

    not_yet = purge_pii(settings, as_of=datetime.now() + timedelta(days=30), retention_days=90)
    assert sum(not_yet.rows.values()) == 0  # loaded minutes ago: inside the retention period
    report = purge_pii(settings, as_of=datetime.now() + timedelta(days=91), retention_days=90)
    assert {k: v for k, v in report.rows.items() if v} == {f"raw.{s}.email": n for s, n in addresses.items()}
    for stream, count in addresses.items():
        assert query(settings, f"select count(email), count(_email_pseudonym) from raw.{stream}") == [(0, count)]
    kept = {h for (h,) in query(settings, "select _email_pseudonym from raw.events union all "
                                          "select _email_pseudonym from raw.customers union all "
                                          "select _email_pseudonym from raw.identities") if h}
    assert kept == {expected(PLAIN_KEY, a) for a in ADDRESSES}
    again = purge_pii(settings, as_of=datetime.now() + timedelta(days=91), retention_days=90)
    assert sum(again.rows.values()) == 0  # nothing is purged twice
    audit = query(settings, "select table_name, column_name, rows_purged, retention_days from meta.pii_purges "
                            "where rows_purged > 0 order by 1")
    assert audit == [(f"raw.{s}", "email", n, 90) for s, n in sorted(addresses.items())]

    result = build(settings, as_of=AS_OF, full_refresh=True)
    assert result.mode == "full"
    assert pseudonym_state(settings) == before
    build(settings, as_of=AS_OF + timedelta(days=1))  # and incrementally
    assert pseudonym_state(settings) == before

    # the pseudonyms kept belong to this key: another key would re-key every other customer, so it is refused
    monkeypatch.setenv("SEGFLOW_PII_KEY", secrets.token_hex(32))
    other = Settings(home=target, consent_policy="collected_under_consent")
    with pytest.raises(PiiKeyError, match="Set the earlier key again"):
        build(other, as_of=AS_OF)
    with pytest.raises(PiiKeyError, match="Set the earlier key again"):
        purge_pii(other, as_of=datetime.now() + timedelta(days=91), retention_days=90)
