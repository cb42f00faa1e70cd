"""GA4 BigQuery export rows -> canonical rows.

https://support.google.com/analytics/answer/7029846 . One call converts one export row, either parsed from
JSON (numbers as text: ``parse_float=str, parse_int=str``) or from Parquet via pyarrow ``to_pylist()``
(ints, floats, absent struct fields as None). Both give the same rows and the same ids for the same data.

GA4 has no event id, so ``event_id`` is a content hash of the whole row: exact duplicates share it. Before
hashing, None values and empty structs are dropped (Parquet adds every schema field, JSON leaves them out)
and the values of numeric schema fields are normalized ("50", 50, 50.0 and "50.00" hash alike), so the same
row read from JSON or from Parquet gets the same id.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from segflow.sources.formats._common import FormatError, Row, collect, first, get, row, text

EVENT_TYPES: dict[str, str] = {
    "page_view": "page_view",
    "screen_view": "screen_view",
    "view_item": "product_view",
    "add_to_cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "begin_checkout": "checkout",
    "purchase": "purchase",
    "in_app_purchase": "in_app_purchase",
    "refund": "return",
}
APP_PLATFORMS = frozenset({"IOS", "ANDROID"})

# leaf fields the export schema types INTEGER/FLOAT: their values are normalized before hashing
NUMERIC_FIELDS = frozenset({
    "event_timestamp", "event_previous_timestamp", "event_value_in_usd", "event_bundle_sequence_id",
    "event_server_timestamp_offset", "user_first_touch_timestamp", "int_value", "float_value", "double_value",
    "set_timestamp_micros", "revenue", "time_zone_offset_seconds", "total_item_quantity", "purchase_revenue",
    "purchase_revenue_in_usd", "refund_value", "refund_value_in_usd", "shipping_value",
    "shipping_value_in_usd", "tax_value", "tax_value_in_usd", "unique_items", "price", "price_in_usd",
    "quantity", "item_revenue", "item_revenue_in_usd", "item_refund", "item_refund_in_usd",
    "batch_event_index", "batch_ordering_id", "batch_page_id",
})
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PLACEHOLDER = re.compile(r"\(.*\)")  # GA4's "(not set)", "(direct)", "(organic)", ...


def _number_text(value: Any) -> str | None:
    """A numeric field's value as normalized text ('50.00', 50.0, 50 -> '50'); other text unchanged."""
    raw = text(value)
    if raw is None or isinstance(value, bool) or not _NUMBER.fullmatch(raw.strip()):
        return raw
    number = Decimal(raw.strip())
    if number.adjusted() < 40 and number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def _canonical(value: Any, field: str = "") -> Any:
    """JSON-able copy with every leaf as text, None values and empty structs dropped (see module doc)."""
    if isinstance(value, Mapping):
        items = {str(key): _canonical(item, str(key)) for key, item in value.items()}
        items = {key: item for key, item in items.items() if item is not None}
        return items or None
    if isinstance(value, list | tuple):
        return [_canonical(item, field) for item in value]
    return _number_text(value) if field in NUMERIC_FIELDS else text(value)


def record_id(record: Mapping[str, Any]) -> str:
    """Content hash of a whole export row: sha256 hex, first 32 characters."""
    dump = json.dumps(_canonical(record) or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(dump.encode("utf-8")).hexdigest()[:32]


def micros_to_iso(value: Any) -> str:
    """Microseconds since the epoch (int or text) -> '2021-01-31T23:59:59.123456Z'."""
    raw = text(value)
    if raw is None or isinstance(value, bool):
        raise FormatError("GA4 row has no 'event_timestamp'")
    try:
        number = Decimal(raw.strip())
        if not number.is_finite() or number.adjusted() > 20 or number != number.to_integral_value():
            raise ValueError(raw)
        seconds, micros = divmod(int(number), 1_000_000)
        moment = _EPOCH + timedelta(seconds=seconds, microseconds=micros)
    except (InvalidOperation, ValueError, OverflowError):
        raise FormatError(f"GA4 row has an unparseable 'event_timestamp' {raw!r}") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _params(entries: Any) -> dict[str, str | None]:
    """event_params [{key, value: {string_value, int_value, float_value, double_value}}] -> {key: text}."""
    params: dict[str, str | None] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and entry.get("key") is not None:
            value = entry.get("value")
            params[str(entry["key"])] = first(*(get(value, name) for name in
                                                ("string_value", "int_value", "float_value", "double_value")))
    return params


def _campaign(record: Mapping[str, Any], params: Mapping[str, str | None]) -> str | None:
    """The event's own campaign first, then the user's first-touch campaign; GA4 placeholders are not ids."""
    for value in (params.get("campaign"), get(record, "collected_traffic_source", "manual_campaign_name"),
                  get(record, "traffic_source", "name")):
        value = text(value)
        if value is not None and not _PLACEHOLDER.fullmatch(value.strip()):
            return value
    return None


def _item(item: Any, index: int, refund: bool) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise FormatError(f"GA4 items[{index}] is not an object")
    revenue = item.get("item_refund") if refund else item.get("item_revenue")
    return {"product_id": item.get("item_id"), "category": item.get("item_category"),
            "quantity": item.get("quantity"), "price": item.get("price"), "revenue": revenue}


def convert(record: dict) -> dict[str, list[dict[str, str | None]]]:
    """One GA4 export row -> {stream: rows}; raises FormatError when it cannot be converted."""
    if not isinstance(record, Mapping):
        raise FormatError(f"GA4 row is not an object but {type(record).__name__}")
    event_name = first(record.get("event_name"))
    if event_name is None:
        raise FormatError("GA4 row has no 'event_name'")
    occurred_at = micros_to_iso(record.get("event_timestamp"))
    user_id, anonymous_id = first(record.get("user_id")), first(record.get("user_pseudo_id"))
    if user_id is None and anonymous_id is None:
        raise FormatError("GA4 row has neither 'user_id' nor 'user_pseudo_id'")

    event_id = record_id(record)
    event_type = EVENT_TYPES.get(event_name, "custom")
    params = _params(record.get("event_params"))
    platform = str(record.get("platform") or "").upper()
    base: dict[str, Any] = {
        "event_id": event_id, "event_type": event_type, "event_name": event_name, "occurred_at": occurred_at,
        "anonymous_id": anonymous_id, "user_id": user_id, "session_hint": params.get("ga_session_id"),
        "channel": "app" if platform in APP_PLATFORMS else "web", "page_url": params.get("page_location"),
        "page_type": params.get("page_type"), "referrer": params.get("page_referrer"),
        "currency": params.get("currency"), "campaign_id": _campaign(record, params),
        "device_type": get(record, "device", "category"),  # desktop / mobile / tablet / smart tv
    }
    items = record.get("items")
    items = [item for item in items if item is not None] if isinstance(items, list) else []
    refund = event_type == "return"
    transaction = first(get(record, "ecommerce", "transaction_id"), params.get("transaction_id"))
    events: list[Row]
    if event_type in ("purchase", "return"):
        base["payment_method"] = params.get("payment_type")
        base["original_order_id" if refund else "order_id"] = transaction
        if items:
            events = [row("events", **{**base, **_item(item, index - 1, refund),
                                       "event_id": f"{event_id}:{index}"})
                      for index, item in enumerate(items, start=1)]
        else:
            total = get(record, "ecommerce", "refund_value" if refund else "purchase_revenue")
            events = [row("events", **base, revenue=first(total, params.get("value")))]
    elif event_type == "in_app_purchase":  # app-store purchases carry the product in params, not items
        events = [row("events", **base, product_id=params.get("product_id"), quantity=params.get("quantity"),
                      price=params.get("price"), revenue=params.get("value"))]
    else:
        if len(items) == 1:  # a single-product event: the product goes on the row (several: not split)
            base.update(_item(items[0], 0, refund=False), revenue=None)
        events = [row("events", **base)]

    identities = []
    if user_id is not None:  # tells the identity graph this device belongs to this customer
        identities = [row("identities", identity_id=event_id, kind="identify", user_id=user_id,
                          anonymous_id=anonymous_id, occurred_at=occurred_at)]
    return collect(events=events, identities=identities)
