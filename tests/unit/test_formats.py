"""The built-in format adapters (Segment spec, GA4 BigQuery export): pure record -> canonical rows.

Fixture expectations come from ``tests/fixtures/formats/README.md`` (parsed here, so README and tests
cannot drift apart); line counts are taken from the files themselves.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segflow.sources import canonical
from segflow.sources.formats import ADAPTERS, FormatError, ga4, segment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
SEGMENT = FIXTURES / "segment_sample.jsonl"
GA4 = FIXTURES / "ga4_sample.jsonl"
STREAMS = ("events", "identities", "customers", "consent")


def parse(line: str) -> dict:
    """What the loader does with a JSON line: numbers stay text."""
    return json.loads(line, parse_float=str, parse_int=str)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def convert_file(path: Path, adapter) -> tuple[dict[int, dict], dict[int, str]]:
    """{line number: rows} for good lines and {line number: reason} for bad ones."""
    good: dict[int, dict] = {}
    bad: dict[int, str] = {}
    for number, line in enumerate(lines(path), start=1):
        try:
            good[number] = adapter(parse(line))
        except json.JSONDecodeError:
            bad[number] = "invalid JSON"
        except FormatError as error:
            bad[number] = str(error)
    return good, bad


def readme_counts() -> dict[str, dict[str, object]]:
    """The 'Expected counts' table of the fixtures README."""
    table: dict[str, dict[str, object]] = {}
    for line in (FIXTURES / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].endswith(".jsonl"):
            bad = [int(n) for n in cells[6].split(",") if n.strip()]
            table[cells[0]] = {"lines": int(cells[1]), **dict(zip(STREAMS, map(int, cells[2:6]), strict=True)),
                               "bad": bad}
    return table


def stream_counts(converted: dict[int, dict]) -> Counter:
    counts: Counter = Counter()
    for rows in converted.values():
        for stream, stream_rows in rows.items():
            counts[stream] += len(stream_rows)
    return counts


def assert_canonical(rows: dict) -> None:
    for stream, stream_rows in rows.items():
        assert stream in canonical.STREAMS
        for row in stream_rows:
            assert tuple(row) == canonical.columns(stream)
            assert all(value is None or isinstance(value, str) for value in row.values()), row
            for column in canonical.REQUIRED[stream]:
                assert row[column] is not None, (stream, column, row)


def events_of(converted: dict[int, dict], number: int) -> list[dict]:
    return converted[number].get("events", [])


@pytest.fixture(scope="module")
def seg() -> tuple[dict[int, dict], dict[int, str]]:
    return convert_file(SEGMENT, segment.convert)


@pytest.fixture(scope="module")
def g4() -> tuple[dict[int, dict], dict[int, str]]:
    return convert_file(GA4, ga4.convert)


def test_registry() -> None:
    assert ADAPTERS == {"segment": segment.convert, "ga4": ga4.convert}
    assert issubclass(FormatError, ValueError)


@pytest.mark.parametrize("name, adapter", [("segment_sample.jsonl", segment.convert),
                                           ("ga4_sample.jsonl", ga4.convert)])
def test_fixture_counts_match_readme(name: str, adapter) -> None:
    expected = readme_counts()[name]
    path = FIXTURES / name
    with open(path, encoding="utf-8") as handle:
        assert sum(1 for _ in handle) == expected["lines"]
    good, bad = convert_file(path, adapter)
    assert sorted(bad) == expected["bad"]
    assert len(good) + len(bad) == expected["lines"]
    counts = stream_counts(good)
    assert {stream: counts[stream] for stream in STREAMS} == {stream: expected[stream] for stream in STREAMS}
    assert set(counts) <= set(STREAMS)
    for rows in good.values():
        assert_canonical(rows)


# --- Segment ---------------------------------------------------------------------------------------------


def test_segment_bad_lines(seg) -> None:
    _, bad = seg
    assert bad == {8: "invalid JSON", 17: "Segment message has no 'type'"}


def test_segment_event_types_and_channels(seg) -> None:
    good, _ = seg
    summary = {n: [(r["event_type"], r["channel"]) for r in events_of(good, n)] for n in good}
    assert summary[1] == [("page_view", "web")]
    assert summary[3] == [("product_view", "web")]
    assert summary[4] == [("add_to_cart", "web")]
    assert summary[6] == [("checkout", "web")]
    assert summary[11] == [("screen_view", "app")]
    assert summary[12] == [("app_open", "app")]
    assert summary[13] == summary[16] == [("email_open", "email")]
    assert summary[14] == [("email_click", "email")]
    assert summary[15] == [("custom", "web")]
    assert summary[19] == [("purchase", "app")]
    assert summary[20] == [("cancellation", "web")]
    assert summary[21] == [("support_ticket", "support")]
    assert summary[24] == [("remove_from_cart", "web")]
    assert summary[25] == [("email_send", "email")]
    assert summary[5] == summary[10] == summary[18] == []
    assert events_of(good, 15)[0]["event_name"] == "Wishlist Shared"


def test_segment_page_fields(seg) -> None:
    good, _ = seg
    home, product = events_of(good, 1)[0], events_of(good, 2)[0]
    assert home["event_id"] == "msg-001" and home["event_name"] == "Home" and home["page_type"] == "Home"
    assert home["page_url"] == "https://shop.example.com/" and home["referrer"] == "https://www.google.com/"
    assert home["occurred_at"] == "2024-03-01T09:00:00.120Z" and home["received_at"] == "2024-03-01T09:00:00.480Z"
    assert home["anonymous_id"] == "anon-a1" and home["user_id"] is None and home["campaign_id"] == "spring_sale"
    assert product["page_type"] == "Product"
    assert events_of(good, 23)[0]["event_name"] is None


def test_segment_order_completed_one_row_per_product(seg) -> None:
    good, _ = seg
    rows = events_of(good, 7)
    assert [r["event_id"] for r in rows] == ["msg-007:1", "msg-007:2", "msg-007:3"]
    assert {r["order_id"] for r in rows} == {"ORD-1001"}
    assert [r["product_id"] for r in rows] == ["SKU-100", "SKU-200", "CAP-01"]  # the last one has only a sku
    assert [r["quantity"] for r in rows] == ["1", "2", "1"]
    assert [r["price"] for r in rows] == ["89.9", "14.95", "30.0"]
    assert [r["category"] for r in rows] == ["Shoes", "Socks", "Accessories"]
    assert all(r["revenue"] is None and r["original_order_id"] is None for r in rows)
    assert {(r["currency"], r["payment_method"], r["user_id"], r["email"]) for r in rows} == {
        ("EUR", "card", "cust-1", "alice@example.com")}


def test_segment_refund_and_cancellation(seg) -> None:
    good, _ = seg
    [refund] = events_of(good, 9)
    assert refund["event_type"] == "return" and refund["event_id"] == "msg-009:1"
    assert refund["original_order_id"] == "ORD-1001" and refund["order_id"] is None
    assert (refund["product_id"], refund["quantity"], refund["price"]) == ("SKU-200", "2", "14.95")
    [cancel] = events_of(good, 20)
    assert cancel["original_order_id"] == "ORD-2001" and cancel["order_id"] is None
    assert cancel["revenue"] == "47.4" and cancel["quantity"] is None
    [order] = events_of(good, 19)
    assert order["order_id"] == "ORD-2001" and order["revenue"] == "42.5" and order["quantity"] is None
    assert order["event_id"] == "msg-019" and order["event_name"] == "order_completed"


def test_segment_duplicate_line_gives_identical_rows(seg) -> None:
    good, _ = seg
    assert good[13] == good[16]
    ids = [r["event_id"] for rows in good.values() for r in rows.get("events", [])]
    assert len(ids) == 21 and len(set(ids)) == 20


def test_segment_identify_alias_and_consent(seg) -> None:
    good, _ = seg
    [identity] = good[5]["identities"]
    assert identity == {"identity_id": "msg-005", "kind": "identify", "user_id": "cust-1", "anonymous_id": "anon-a1",
                        "previous_id": None, "email": "alice@example.com",
                        "occurred_at": "2024-03-01T09:03:00.000Z", "received_at": "2024-03-01T09:03:00.200Z"}
    [customer] = good[5]["customers"]
    assert customer == {"customer_id": "cust-1", "email": "alice@example.com", "signup_at": "2023-11-20T14:05:00Z",
                        "updated_at": "2024-03-01T09:03:00.000Z", "country": "FR", "age_band": None,
                        "consent_marketing": None, "consent_analytics": None}
    assert good[22]["customers"][0]["signup_at"] == "2024-02-28T08:00:00Z"
    assert good[22]["customers"][0]["country"] == "DE"
    assert [(c["purpose"], c["granted"]) for c in good[5]["consent"]] == [("analytics", "true"),
                                                                          ("marketing", "false")]
    assert [(c["purpose"], c["granted"]) for c in good[22]["consent"]] == [("analytics", "true"),
                                                                           ("marketing", "true")]
    assert good[24]["consent"] == [{"customer_id": "cust-1", "purpose": "marketing", "granted": "true",
                                    "recorded_at": "2024-03-06T08:10:00.000Z"}]
    [alias] = good[10]["identities"]
    assert (alias["kind"], alias["previous_id"], alias["user_id"]) == ("alias", "legacy-4711", "cust-1")
    assert good[18] == {}


def base_message(**fields) -> dict:
    return {"messageId": "m-1", "type": "track", "event": "Product Viewed", "userId": "u-1",
            "timestamp": "2024-01-02T03:04:05.678+01:00", **fields}


@pytest.mark.parametrize("name, event_type", [
    ("Order Completed", "purchase"), ("order_completed", "purchase"), ("ORDER COMPLETED", "purchase"),
    ("product_added", "add_to_cart"), ("Email Sent", "email_send"), ("Support Ticket Created", "support_ticket"),
    ("order_refunded", "return"), ("Order Cancelled", "cancellation"), ("Signed Up", "custom"),
])
def test_segment_track_names(name: str, event_type: str) -> None:
    [row] = segment.convert(base_message(event=name))["events"]
    assert (row["event_type"], row["event_name"]) == (event_type, name)


def test_segment_numbers_stay_as_delivered_text() -> None:
    line = ('{"messageId": "m-1", "type": "track", "event": "Order Completed", "userId": "u-1", '
            '"timestamp": "2024-01-02T03:04:05Z", "properties": {"order_id": 123, "total": 49.90, "currency": "EUR"}}')
    [row] = segment.convert(parse(line))["events"]
    assert (row["order_id"], row["revenue"]) == ("123", "49.90")
    typed = base_message(event="Order Completed", properties={
        "order_id": "o-1", "products": [{"product_id": 7, "price": 2.5, "quantity": 3}]})
    [line_row] = segment.convert(typed)["events"]
    assert (line_row["product_id"], line_row["price"], line_row["quantity"]) == ("7", "2.5", "3")


def test_segment_refund_with_own_id_and_negative_total() -> None:
    msg = base_message(event="Order Refunded", properties={"order_id": "o-1", "refund_id": "r-9", "total": "-12.00"})
    [row] = segment.convert(msg)["events"]
    assert (row["order_id"], row["original_order_id"], row["revenue"]) == ("r-9", "o-1", "-12.00")


def test_segment_timestamp_fallbacks_and_app_channel() -> None:
    msg = base_message(timestamp=None, originalTimestamp="2024-01-02T03:04:00Z", sentAt="2024-01-02T03:04:09Z",
                       context={"device": {"type": "android"}})
    [row] = segment.convert(msg)["events"]
    assert (row["occurred_at"], row["received_at"], row["channel"]) == (
        "2024-01-02T03:04:00Z", "2024-01-02T03:04:09Z", "app")
    [row] = segment.convert(base_message())["events"]
    assert row["occurred_at"] == row["received_at"] == "2024-01-02T03:04:05.678+01:00"
    assert row["channel"] == "web"


def test_segment_anonymous_identify_links_nothing() -> None:
    msg = base_message(type="identify", userId=None, anonymousId="a-1", traits={"email": "x@example.com"})
    assert segment.convert(msg) == {}


@pytest.mark.parametrize("record, reason", [
    (["not", "an", "object"], "not an object"),
    ({"messageId": "m-1"}, "has no 'type'"),
    (base_message(type="batch"), "unknown type 'batch'"),
    (base_message(messageId=None), "has no 'messageId'"),
    (base_message(event=None), "track has no 'event'"),
    (base_message(timestamp=None), "has no 'timestamp'"),
    (base_message(type="alias", previousId=None), "needs both 'userId' and 'previousId'"),
    (base_message(event="Order Completed", properties={"products": ["SKU-1"]}), "products[0] is not an object"),
])
def test_segment_errors(record, reason: str) -> None:
    with pytest.raises(FormatError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        segment.convert(record)


# --- GA4 -------------------------------------------------------------------------------------------------


def test_ga4_bad_line(g4) -> None:
    _, bad = g4
    assert bad == {10: "GA4 row has no 'event_timestamp'"}


@pytest.mark.parametrize("micros, iso", [
    (1612137599123456, "2021-01-31T23:59:59.123456Z"),
    ("1612137599123456", "2021-01-31T23:59:59.123456Z"),
    (0, "1970-01-01T00:00:00.000000Z"),
    ("1612137600000001", "2021-02-01T00:00:00.000001Z"),
])
def test_ga4_timestamps(micros, iso: str) -> None:
    assert ga4.micros_to_iso(micros) == iso


def test_ga4_event_rows(g4) -> None:
    good, _ = g4
    types = {n: [r["event_type"] for r in events_of(good, n)] for n in good}
    assert types == {1: ["custom"], 2: ["page_view"], 3: ["product_view"], 4: ["add_to_cart"], 5: ["page_view"],
                     6: ["checkout"], 7: ["purchase", "purchase"], 8: ["return"], 9: ["page_view"],
                     11: ["custom"], 12: ["screen_view"], 13: ["screen_view"], 14: ["in_app_purchase"],
                     15: ["purchase"], 16: ["return"], 17: ["page_view"], 18: ["custom"],
                     19: ["remove_from_cart"], 20: ["custom"]}
    [page] = events_of(good, 2)
    assert page["event_name"] == "page_view" and page["channel"] == "web"
    assert page["anonymous_id"] == "1839234567.1612129000" and page["user_id"] is None
    assert (page["session_hint"], page["page_url"], page["referrer"]) == (
        "1612130000", "https://shop.example.com/", "https://www.google.com/")
    assert page["page_type"] is None and page["received_at"] is None
    assert page["occurred_at"] == "2021-01-31T21:53:20.100002Z"
    assert page["campaign_id"] == "winter_sale"
    [article] = events_of(good, 17)
    assert (article["page_type"], article["campaign_id"]) == ("article", "newsletter_feb")
    assert {r["channel"] for n in (11, 12, 13, 14, 15, 16) for r in events_of(good, n)} == {"app"}
    assert events_of(good, 12)[0]["campaign_id"] is None  # "(direct)" is not a campaign


def test_ga4_purchase_and_refund(g4) -> None:
    good, _ = g4
    lines_ = events_of(good, 7)
    base_id = good[7]["identities"][0]["identity_id"]
    assert [r["event_id"] for r in lines_] == [f"{base_id}:1", f"{base_id}:2"]
    assert [(r["product_id"], r["category"], r["quantity"], r["price"], r["revenue"]) for r in lines_] == [
        ("SKU-100", "Shoes", "1", "89.9", "89.9"), ("SKU-200", "Socks", "2", "14.95", "29.9")]
    assert {(r["order_id"], r["original_order_id"], r["currency"], r["payment_method"]) for r in lines_} == {
        ("T-5001", None, "EUR", "card")}
    [refund] = events_of(good, 8)
    assert (refund["order_id"], refund["original_order_id"]) == (None, "T-5001")
    assert (refund["product_id"], refund["quantity"], refund["revenue"]) == ("SKU-200", "2", "29.9")
    assert refund["occurred_at"] == "2021-01-31T23:59:59.123456Z"
    [order] = events_of(good, 15)
    assert (order["order_id"], order["revenue"], order["quantity"]) == ("T-6001", "42.5", None)
    [whole_refund] = events_of(good, 16)
    assert (whole_refund["original_order_id"], whole_refund["revenue"]) == ("T-6001", "42.5")
    [iap] = events_of(good, 14)
    assert (iap["product_id"], iap["price"], iap["quantity"], iap["revenue"]) == ("premium_monthly", "4.99", "1", "4.99")


def test_ga4_single_item_events_keep_one_row(g4) -> None:
    good, _ = g4
    for number in (3, 4, 19):
        [row] = events_of(good, number)
        assert (row["product_id"], row["category"], row["price"], row["quantity"]) == ("SKU-100", "Shoes", "89.9", "1")
        assert row["revenue"] is None and ":" not in row["event_id"]
    for number in (6, 20):  # several items on a non-order event: one row, no product
        [row] = events_of(good, number)
        assert row["product_id"] is None


def test_ga4_identities(g4) -> None:
    good, _ = g4
    with_identity = sorted(n for n, rows in good.items() if "identities" in rows)
    assert with_identity == [5, 6, 7, 8, 13, 14, 15, 16]
    [identity] = good[13]["identities"]
    assert identity == {"identity_id": events_of(good, 13)[0]["event_id"], "kind": "identify", "user_id": "C-2002",
                        "anonymous_id": "f3a1c2d4e5b6a7980123456789abcdef", "previous_id": None, "email": None,
                        "occurred_at": "2021-02-01T00:40:30.000000Z", "received_at": None}


def test_ga4_ids_equal_for_duplicates_only(g4) -> None:
    good, _ = g4
    assert good[2] == good[9]
    ids = [r["event_id"] for rows in good.values() for r in rows["events"]]
    assert len(ids) == 20 and len(set(ids)) == 19
    assert all(len(i.split(":")[0]) == 32 for i in ids)
    record = parse(lines(GA4)[1])
    changed = copy.deepcopy(record)
    changed["event_params"][0]["value"]["int_value"] = "1612130001"
    assert ga4.record_id(changed) != ga4.record_id(record)


def test_ga4_ids_ignore_number_spelling_and_absent_fields() -> None:
    record = {"event_name": "purchase", "event_timestamp": "1612137599123456", "user_pseudo_id": "p-1",
              "items": [{"item_id": "A", "price": "50.00", "quantity": "2"}], "ecommerce": {"transaction_id": None}}
    typed = {"event_name": "purchase", "event_timestamp": 1612137599123456, "user_pseudo_id": "p-1", "user_id": None,
             "items": [{"item_id": "A", "price": 50.0, "quantity": 2, "item_revenue": None}]}
    assert ga4.record_id(record) == ga4.record_id(typed)
    assert ga4.record_id(record) != ga4.record_id({**record, "user_pseudo_id": "p-2"})


def test_ga4_parquet_rows_convert_like_json(g4, tmp_path) -> None:
    """Typed input (ints, floats, full structs) read back from Parquet gives the very same rows and ids."""
    good, bad = g4
    table = pa.Table.from_pylist([json.loads(line) for line in lines(GA4)])
    pq.write_table(table, tmp_path / "ga4.parquet")
    typed_rows = pq.read_table(tmp_path / "ga4.parquet").to_pylist()
    assert isinstance(typed_rows[0]["event_timestamp"], int)
    for number, record in enumerate(typed_rows, start=1):
        if number in bad:
            with pytest.raises(FormatError, match=bad[number]):
                ga4.convert(record)
        else:
            assert ga4.convert(record) == good[number], number


def test_ga4_params_may_be_missing_and_value_param_is_the_fallback() -> None:
    record = {"event_name": "purchase", "event_timestamp": 1, "user_id": "c-1", "event_params": None,
              "platform": "IOS"}
    [row] = ga4.convert(record)["events"]
    assert (row["channel"], row["revenue"], row["order_id"], row["session_hint"]) == ("app", None, None, None)
    record["event_params"] = [{"key": "value", "value": {"double_value": 12.5}},
                              {"key": "transaction_id", "value": {"string_value": "T-1"}}]
    [row] = ga4.convert(record)["events"]
    assert (row["revenue"], row["order_id"], row["user_id"], row["anonymous_id"]) == ("12.5", "T-1", "c-1", None)


@pytest.mark.parametrize("record, reason", [
    ("not a dict", "not an object"),
    ({"event_timestamp": 1, "user_pseudo_id": "p"}, "no 'event_name'"),
    ({"event_name": "page_view", "user_pseudo_id": "p"}, "no 'event_timestamp'"),
    ({"event_name": "page_view", "event_timestamp": "yesterday", "user_pseudo_id": "p"}, "unparseable"),
    ({"event_name": "page_view", "event_timestamp": "12.5", "user_pseudo_id": "p"}, "unparseable"),
    ({"event_name": "page_view", "event_timestamp": 1, "user_id": None, "user_pseudo_id": ""}, "neither"),
])
def test_ga4_errors(record, reason: str) -> None:
    with pytest.raises(FormatError, match=reason):
        ga4.convert(record)
