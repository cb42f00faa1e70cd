"""Identity stitching, identity guards, delivery conflicts, events-only feeds and returns, on hand-made files.

Every expected value below is read off the fixture rows in this module, never from the warehouse's totals.
Two landing trees: an identity tree (events, customers, identities) built as of 2025-01-10 (and a copy built
as of 2025-01-04), and an orders-only feed built under each consent policy.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import shutil
from datetime import datetime
from decimal import Decimal

import pytest
from tests_support import TEST_PII_KEY

from segflow.jobs.build import build
from segflow.jobs.load import load_landing
from segflow.settings import Settings
from segflow.warehouse import connect

pytestmark = pytest.mark.slow

GUARDS = {"identity_max_links": 5, "identity_max_component_size": 4}
AS_OF = datetime(2025, 1, 10)

EVENT_HEADER = ("event_id", "event_type", "occurred_at", "received_at", "anonymous_id", "user_id", "price")


def ev(event_id, day_hour, user="", anon="", event_type="page_view", price="", received=""):
    """One events row; day_hour '02T10' -> 2025-01-02T10:00:00Z."""
    return (event_id, event_type, f"2025-01-{day_hour}:00:00Z", received, anon, user, price)


EVENTS_0102 = [
    # 1. multi-device: U1 on D1 and D2, plus anonymous-only events on both
    ev("E1", "02T10", "U1", "D1"), ev("E2", "02T11", "U1", "D2"), ev("E3", "02T09", anon="D1"),
    ev("E4", "02T12", anon="D2"),
    # 2. late identification: D3 anonymous on Jan 2 (and Jan 3, next file); U2 appears on Jan 5
    ev("E5", "02T10", anon="D3"),
    # 3. shared device D4: U3 and U4, plus anonymous events
    ev("E8", "02T13", "U3", "D4"), ev("E9", "02T14", "U4", "D4"), ev("E10", "02T15", anon="D4"),
    ev("E11", "02T16", anon="D4"),
    # 4. e-mail merge (the e-mails are in the customers file)
    ev("E12", "02T10", "U5"), ev("E13", "02T11", "U6"),
    # 5. aliases: U8 -> U7, anonymous D9 -> U9
    ev("E14", "02T10", "U7"), ev("E15", "02T11", "U8"), ev("E16", "02T12", anon="D9"), ev("E17", "02T13", "U9"),
    # 6. alias chain A1 <- A2 <- ... <- A5 (each a known user id through its own event)
    *[ev(f"EA{i}", "02T10", f"A{i}") for i in range(1, 6)],
    # 9. delivered again in the next file: E100 identically, E101 with other content
    ev("E100", "02T17", "U1", "D1"),
    ev("E101", "02T18", "U1", "D1", received="2025-01-02T18:05:00Z"),
]
EVENTS_0103 = [
    ev("E6", "03T10", anon="D3"),
    ev("E100", "02T17", "U1", "D1"),
    ev("E101", "02T18", "U1", "D1", event_type="product_view", price="12.00", received="2025-01-02T18:01:00Z"),
]
EVENTS_0105 = [ev("E7", "05T10", "U2", "D3")]

CUSTOMER_HEADER = ("customer_id", "email", "signup_at", "country", "age_band", "consent_marketing",
                   "consent_analytics")
CUSTOMERS = [
    ("U5", "Same.Person@Example.com", "2025-01-01T08:00:00Z", "DE", "25-34", "true", "true"),
    ("U6", "same.person@example.com", "2025-01-01T09:00:00Z", "DE", "25-34", "true", "true"),
    *[(f"G{i}", "noreply@example.com", "2025-01-01T08:00:00Z", "FR", "35-44", "", "") for i in range(1, 7)],
]

IDENTITY_HEADER = ("identity_id", "kind", "user_id", "anonymous_id", "previous_id", "email", "occurred_at",
                   "received_at")


def alias(identity_id, user, previous):
    return (identity_id, "alias", user, "", previous, "", "2025-01-01T12:00:00Z", "")


IDENTITIES = [alias("I1", "U7", "U8"), alias("I2", "U9", "D9"),
              *[alias(f"I{i + 2}", f"A{i + 1}", f"A{i}") for i in range(1, 5)]]

IDENTITY_TREE = {
    "events/events_2025-01-02.csv": (EVENT_HEADER, EVENTS_0102),
    "events/events_2025-01-03.csv": (EVENT_HEADER, EVENTS_0103),
    "events/events_2025-01-05.csv": (EVENT_HEADER, EVENTS_0105),
    "customers/customers_2025-01-01.csv": (CUSTOMER_HEADER, CUSTOMERS),
    "identities/identities_2025-01-01.csv": (IDENTITY_HEADER, IDENTITIES),
}

ORDER_HEADER = ("event_id", "event_type", "occurred_at", "user_id", "product_id", "quantity", "price", "revenue",
                "order_id", "original_order_id")
ORDERS = [
    ("P1", "purchase", "2025-01-02T10:00:00Z", "C1", "pa", "2", "10.00", "", "O1", ""),
    ("P2", "purchase", "2025-01-02T10:00:00Z", "C1", "pb", "1", "5.50", "", "O1", ""),
    ("P3", "purchase", "2025-01-03T09:00:00Z", "C2", "pc", "1", "7.25", "", "O2", ""),
    ("R1", "return", "2025-01-04T10:00:00Z", "C1", "pa", "-1", "10.00", "", "RT1", "O1"),
    ("X1", "cancellation", "2025-01-05T10:00:00Z", "C1", "", "", "", "-3.00", "", ""),
]
ORDERS_TREE = {"orders/orders_2025-01-01.csv": (ORDER_HEADER, ORDERS)}


def write_tree(settings: Settings, tree: dict) -> None:
    for relative, (header, rows) in tree.items():
        path = settings.landing_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)


def built(home, tree: dict, as_of: datetime = AS_OF, **settings_kw) -> Settings:
    settings = Settings(home=home, **settings_kw)
    settings.ensure_dirs()
    write_tree(settings, tree)
    load_landing(settings)
    build(settings, as_of=as_of)
    return settings


def query(settings: Settings, sql: str, params=None) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def stitched(settings: Settings, *event_ids: str) -> list[tuple]:
    return query(settings, "select event_id, customer_id, person_key, is_stitched "
                           "from intermediate.int_events_stitched where list_contains(?, event_id) order by event_id",
                 [list(event_ids)])


def customer_ids(settings: Settings) -> set[str]:
    return {c for (c,) in query(settings, "select customer_id from marts.dim_customers")}


@pytest.fixture(scope="module")
def identity_home(tmp_path_factory) -> Settings:
    return built(tmp_path_factory.mktemp("identity") / "home", IDENTITY_TREE, **GUARDS)


@pytest.fixture(scope="module")
def identity_home_jan4(identity_home, tmp_path_factory) -> Settings:
    """The same loaded warehouse (a copy), rebuilt as of 2025-01-04."""
    target = tmp_path_factory.mktemp("identity_jan4") / "home"
    shutil.copytree(identity_home.home, target, ignore=shutil.ignore_patterns("*.wal"))
    settings = Settings(home=target, **GUARDS)
    build(settings, as_of=datetime(2025, 1, 4))
    return settings


@pytest.fixture(scope="module")
def orders_home(tmp_path_factory) -> Settings:
    return built(tmp_path_factory.mktemp("orders") / "home", ORDERS_TREE, consent_policy="collected_under_consent")


@pytest.fixture(scope="module")
def orders_home_recorded(tmp_path_factory) -> Settings:
    return built(tmp_path_factory.mktemp("orders_recorded") / "home", ORDERS_TREE)


def test_multi_device_user_takes_anonymous_events_of_both_devices(identity_home):
    assert stitched(identity_home, "E1", "E2", "E3", "E4") == [
        ("E1", "U1", "U1", False), ("E2", "U1", "U1", False), ("E3", "U1", "U1", True), ("E4", "U1", "U1", True)]
    assert query(identity_home, "select anonymous_id, customer_id from intermediate.int_identities_stitched "
                                "where anonymous_id in ('D1', 'D2') order by 1") == [("D1", "U1"), ("D2", "U1")]


def test_late_identification_restitches_earlier_events_but_respects_as_of(identity_home, identity_home_jan4):
    assert stitched(identity_home, "E5", "E6", "E7") == [
        ("E5", "U2", "U2", True), ("E6", "U2", "U2", True), ("E7", "U2", "U2", False)]
    # as of Jan 4 the identifying event (Jan 5) is not in scope: D3's events are still anonymous
    assert stitched(identity_home_jan4, "E5", "E6", "E7") == [
        ("E5", None, "anon:D3", False), ("E6", None, "anon:D3", False)]
    assert "U2" not in customer_ids(identity_home_jan4)
    assert query(identity_home_jan4, "select count(*) from intermediate.int_identities_stitched "
                                     "where anonymous_id = 'D3'") == [(0,)]


def test_shared_device_merges_nobody_and_is_reported_once(identity_home):
    assert stitched(identity_home, "E8", "E9", "E10", "E11") == [
        ("E10", None, "anon:D4", False), ("E11", None, "anon:D4", False),
        ("E8", "U3", "U3", False), ("E9", "U4", "U4", False)]
    assert {"U3", "U4"} <= customer_ids(identity_home)
    assert query(identity_home, "select issue, identifier_kind, identifier, linked_users "
                                "from intermediate.int_identity_issues where issue = 'shared_device'"
                 ) == [("shared_device", "anonymous_id", "D4", 2)]


def test_same_email_in_any_case_merges_into_smallest_user_id(identity_home):
    assert customer_ids(identity_home) == {"U1", "U2", "U3", "U4", "U5", "U7", "U9",
                                           *[f"G{i}" for i in range(1, 7)], *[f"A{i}" for i in range(1, 6)]}
    assert stitched(identity_home, "E12", "E13") == [("E12", "U5", "U5", False), ("E13", "U5", "U5", False)]
    assert query(identity_home, "select identifier, customer_id, component_size from intermediate.int_identity_graph "
                                "where identifier_kind = 'user_id' and identifier in ('U5', 'U6') order by 1"
                 ) == [("U5", "U5", 2), ("U6", "U5", 2)]
    # one person, two accounts: the person signed up with the earlier account
    assert query(identity_home, "select cast(signup_at as varchar) from marts.dim_customers where customer_id = 'U5'"
                 ) == [("2025-01-01 08:00:00",)]


def test_alias_merges_users_and_attributes_an_aliased_device(identity_home):
    assert stitched(identity_home, "E14", "E15", "E16", "E17") == [
        ("E14", "U7", "U7", False), ("E15", "U7", "U7", False), ("E16", "U9", "U9", True),
        ("E17", "U9", "U9", False)]
    assert query(identity_home, "select user_id, identifier_kind, identifier from intermediate.int_identity_edges "
                                "where user_id in ('U7', 'U9') order by 1") == [
        ("U7", "user_id", "U8"), ("U9", "anonymous_id", "D9")]
    assert "U8" not in customer_ids(identity_home)


def test_identity_guards_cut_bad_identifiers_and_oversized_components(identity_home):
    graph = dict(query(identity_home, "select identifier, customer_id from intermediate.int_identity_graph "
                                      "where identifier_kind = 'user_id' and identifier similar to '[GA][0-9]'"))
    assert graph == {f"{p}{i}": f"{p}{i}" for p, n in (("G", 6), ("A", 5)) for i in range(1, n + 1)}
    issues = query(identity_home, "select issue, identifier_kind, identifier, linked_users "
                                  "from intermediate.int_identity_issues where issue <> 'shared_device' order by 1, 3")
    bad = [row for row in issues if row[0] == "bad_identifier"]
    assert [(kind, users) for _, kind, _, users in bad] == [("email", 6)]
    assert [row for row in issues if row[0] != "bad_identifier"] == [
        ("oversized_component", "user_id", f"A{i}", 5) for i in range(1, 6)]
    assert stitched(identity_home, *[f"EA{i}" for i in range(1, 6)]) == [
        (f"EA{i}", f"A{i}", f"A{i}", False) for i in range(1, 6)]


def test_orders_only_feed_builds_under_each_consent_policy(orders_home, orders_home_recorded):
    users = {row[3] for row in ORDERS}
    assert query(orders_home, "select customer_id, has_analytics_consent, analytics_consent_source "
                              "from marts.dim_customers order by 1") == [
        (c, True, "policy_default") for c in sorted(users)]
    assert query(orders_home, "select customer_id from marts.customer_features order by 1") == [
        (c,) for c in sorted(users)]
    assert query(orders_home_recorded, "select customer_id, has_analytics_consent, analytics_consent_source "
                                       "from marts.dim_customers order by 1") == [
        (c, False, "policy_default") for c in sorted(users)]
    assert query(orders_home_recorded, "select count(*) from marts.customer_features") == [(0,)]


def test_returns_and_cancellations_reduce_revenue(orders_home):
    assert query(orders_home, "select revenue, reversed_revenue, net_revenue from marts.fct_orders "
                              "where order_id = 'O1'") == [(Decimal("25.50"), Decimal("10.00"), Decimal("15.50"))]
    assert query(orders_home, "select return_id, return_type, customer_id, original_order_id, returned_revenue "
                              "from marts.fct_returns order by 1") == [
        ("RT1", "return", "C1", "O1", Decimal("10.00")), ("X1", "cancellation", "C1", None, Decimal("3.00"))]
    monetary = dict(query(orders_home, "select customer_id, monetary from marts.customer_features"))
    assert monetary == pytest.approx({"C1": 25.50 - 10.00 - 3.00, "C2": 7.25})


def test_return_item_count_ignores_the_delivered_sign(orders_home):
    assert query(orders_home, "select item_count from marts.fct_returns where return_id = 'RT1'") == [(1,)]


def test_later_identical_delivery_is_a_duplicate_and_different_one_a_conflict(identity_home):
    assert query(identity_home, "select event_id, _source_file from staging.stg_raw__events_duplicates") == [
        ("E100", "events_2025-01-03.csv")]
    assert query(identity_home, "select event_id, quarantine_reason, _source_file, event_type, price_text "
                                "from staging.stg_raw__events_quarantine") == [
        ("E101", "conflicting_duplicate", "events_2025-01-03.csv", "product_view", "12.00")]
    assert query(identity_home, "select event_id, event_type, price, _source_file from staging.stg_raw__events "
                                "where event_id in ('E100', 'E101') order by 1") == [
        ("E100", "page_view", None, "events_2025-01-02.csv"), ("E101", "page_view", None, "events_2025-01-02.csv")]
    # the load audit counts the conflict for the file that carried it
    assert query(identity_home, "select file_name, rows_conflicting from marts.fct_load_audit "
                                "where stream = 'events' and rows_conflicting > 0") == [("events_2025-01-03.csv", 1)]


@pytest.mark.parametrize("home, tree", [("identity_home", IDENTITY_TREE), ("orders_home", ORDERS_TREE)])
def test_every_written_row_is_accounted_for(home, tree, request):
    settings = request.getfixturevalue(home)
    assert query(settings, "select count(*) filter (where not is_balanced), count(*) from marts.fct_load_audit"
                 ) == [(0, len(tree))]
    audit = {name: (in_file, accounted) for name, in_file, accounted in query(settings, """
        select m.file_name, m.rows_in_file, sum(a.rows_staged + a.rows_quarantined + a.rows_duplicate)
        from meta.load_manifest m join marts.fct_load_audit a using (load_id)
        group by m.file_name, m.rows_in_file""")}
    written = {relative.split("/")[-1]: len(rows) for relative, (_, rows) in tree.items()}
    assert audit == {name: (rows, rows) for name, rows in written.items()}


EMAIL_HEADER = ("event_id", "event_type", "occurred_at", "email", "quantity", "price", "order_id")
EMAIL_TREE = {
    # an order export identified only by e-mail; one address also has a profile with a customer id
    "orders/orders_2025-01-02.csv": (EMAIL_HEADER, [
        ("M1", "purchase", "2025-01-02T10:00:00Z", "Kim@Example.org", "1", "10.00", "K1"),
        ("M2", "purchase", "2025-01-03T10:00:00Z", "kim@example.org ", "2", "5.00", "K2"),
        ("M3", "purchase", "2025-01-03T11:00:00Z", "lee@example.org", "1", "7.50", "K3"),
    ]),
    "customers/customers_2025-01-01.csv": (("customer_id", "email", "signup_at"), [
        ("C900", "kim@example.org", "2024-12-01T00:00:00Z")]),
}


def test_an_export_identified_only_by_email_gets_pseudonymous_customers(tmp_path):
    settings = built(tmp_path / "home", EMAIL_TREE, consent_policy="collected_under_consent")
    customers = dict(query(settings, "select customer_id, frequency from marts.customer_features"))
    lee = [c for c in customers if c != "C900"]
    # Kim's two orders (e-mail in any case, padded) join her profile's customer id; Lee has no profile
    assert customers["C900"] == 2 and len(lee) == 1 and customers[lee[0]] == 1
    # the keyed pseudonym (HMAC-SHA-256 of the lower-cased address under the suite's key)
    assert lee[0] == "email:" + hmac.new(TEST_PII_KEY.encode(), b"lee@example.org", hashlib.sha256).hexdigest()
    # no plain address reaches any table past raw
    with connect(settings, read_only=True) as con:
        tables = con.execute("select table_schema || '.' || table_name from information_schema.tables "
                             "where table_schema in ('staging', 'intermediate', 'marts')").fetchall()
        for (table,) in tables:
            text = con.execute(f"select count(*) from {table} t where cast(t as varchar) ilike '%@example.org%'"
                               ).fetchone()[0]
            assert text == 0, table


def test_a_build_where_every_event_is_quarantined_says_so(tmp_path):
    from segflow.errors import BuildFailed

    tree = {"orders/orders_2025-01-02.csv": (EMAIL_HEADER, [
        ("M1", "purchase", "2025-01-02T10:00:00Z", "a@example.org", "1", "19,90", "K1"),
        ("M2", "purchase", "2025-01-03T10:00:00Z", "b@example.org", "1", "5,00", "K2")])}
    settings = Settings(home=tmp_path / "home")
    write_tree(settings, tree)
    load_landing(settings)
    with pytest.raises(BuildFailed) as err:
        build(settings)  # no as-of: the run's bound comes from the (absent) staged events
    assert "No event passed staging: every loaded event row was quarantined (invalid_number 2)" in str(err.value)
    assert "--replace" in str(err.value)


AMOUNT_HEADER = ("event_id", "event_type", "occurred_at", "user_id", "quantity", "price", "revenue", "currency",
                 "order_id")
AMOUNTS = [
    # (row, expected quarantine reason or None): amounts are exact or quarantined, never rounded
    (("P1", "purchase", "2025-01-02T10:00:00Z", "U1", "1", "0.001", "", "EUR", "O1"), "price_precision"),
    (("P2", "purchase", "2025-01-02T10:00:00Z", "U1", "1", "2.550", "", "EUR", "O2"), None),  # trailing zero: exact
    (("P3", "purchase", "2025-01-02T10:00:00Z", "U1", "2", "100.5", "", "JPY", "O3"), "price_precision"),
    (("P4", "purchase", "2025-01-02T10:00:00Z", "U1", "2", "100", "", "jpy", "O4"), None),  # upper-cased
    (("P5", "purchase", "2025-01-02T10:00:00Z", "U1", "1", "1.234", "", "KWD", "O5"), "price_precision"),
    (("P6", "purchase", "2025-01-02T10:00:00Z", "U1", "1", "1.005", "", "XYZ", "O6"), "price_precision"),
    (("P7", "purchase", "2025-01-02T10:00:00Z", "U1", "1", "9.99", "", "", "O7"), None),  # no currency: 2 decimals
    (("P8", "purchase", "2025-01-02T10:00:00Z", "U1", "3", "5.10", "15.301", "USD", "O8"), "price_precision"),
    (("P9", "purchase", "2025-01-02T10:00:00Z", "U1", "1.5", "2.00", "", "USD", "O9"), "invalid_number"),
]


def test_amounts_beyond_the_currency_minor_unit_are_quarantined_not_rounded(tmp_path):
    settings = built(tmp_path / "home", {"orders/orders_2025-01-02.csv": (AMOUNT_HEADER, [r for r, _ in AMOUNTS])},
                     consent_policy="collected_under_consent")
    reasons = dict(query(settings, "select event_id, quarantine_reason from staging.stg_raw__events_quarantine"))
    assert reasons == {row[0]: reason for row, reason in AMOUNTS if reason}
    staged = dict(query(settings, "select event_id, price from staging.stg_raw__events"))
    assert staged == {"P2": Decimal("2.55"), "P4": Decimal("100.00"), "P7": Decimal("9.99")}
