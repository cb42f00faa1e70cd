"""Segment spec messages (track, page, screen, identify, alias, group) -> canonical rows.

https://segment.com/docs/connections/spec/ . One call converts one parsed JSON message. Numbers are expected
to arrive as text already (the loader parses with ``parse_float=str, parse_int=str``); real ints/floats are
converted with ``str()``. Timestamps are kept as the delivered ISO text: staging parses them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from segflow.sources.formats._common import FormatError, Row, collect, first, get, row

TYPES = frozenset({"track", "page", "screen", "identify", "alias", "group"})

# Segment e-commerce spec v2 and common semantic events -> canonical event_type (keys normalized by _key)
TRACK_TYPES: dict[str, str] = {
    "product viewed": "product_view",
    "product added": "add_to_cart",
    "product removed": "remove_from_cart",
    "checkout started": "checkout",
    "order completed": "purchase",
    "order refunded": "return",
    "order cancelled": "cancellation",
    "email opened": "email_open",
    "email link clicked": "email_click",
    "email delivered": "email_send",
    "email sent": "email_send",
    "application opened": "app_open",
    "ticket created": "support_ticket",
    "support ticket created": "support_ticket",
}
ORDER_TYPES = frozenset({"purchase", "return", "cancellation"})
PRODUCT_TYPES = frozenset({"product_view", "add_to_cart", "remove_from_cart"})
APP_DEVICES = frozenset({"ios", "android"})


def _key(name: str) -> str:
    """'Order Completed', 'order_completed', 'ORDER-completed' -> 'order completed'."""
    return " ".join(re.split(r"[\s_\-]+", name.strip().lower()))


def _timestamps(msg: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(occurred_at, received_at) as delivered text."""
    occurred = first(msg.get("timestamp"), msg.get("originalTimestamp"))
    received = first(msg.get("receivedAt"), msg.get("sentAt"), msg.get("timestamp"))
    return occurred, received


def _channel(msg: Mapping[str, Any], event_type: str) -> str:
    if event_type.startswith("email_"):
        return "email"
    if event_type == "support_ticket":
        return "support"
    device = str(get(msg, "context", "device", "type") or "").lower()
    return "app" if get(msg, "context", "app") or device in APP_DEVICES else "web"


def _consent(msg: Mapping[str, Any], occurred_at: str | None) -> list[Row]:
    """context.consent.categoryPreferences -> one row per canonical purpose (all matching keys must grant)."""
    user_id = first(msg.get("userId"))
    prefs = get(msg, "context", "consent", "categoryPreferences")
    if user_id is None or not isinstance(prefs, Mapping):
        return []
    decisions: dict[str, bool] = {}
    for category, value in prefs.items():
        name = str(category).lower()
        purpose = ("analytics" if "analytic" in name
                   else "marketing" if "advertis" in name or "marketing" in name else None)
        if purpose is None or value is None:
            continue
        granted = value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes")
        decisions[purpose] = decisions.get(purpose, True) and granted
    return [row("consent", customer_id=user_id, purpose=purpose, granted=granted, recorded_at=occurred_at)
            for purpose, granted in decisions.items()]


def _product(product: Any, where: str) -> dict[str, Any]:
    if not isinstance(product, Mapping):
        raise FormatError(f"Segment {where} is not an object")
    return {"product_id": first(product.get("product_id"), product.get("sku")),
            "category": product.get("category"), "quantity": product.get("quantity"),
            "price": product.get("price")}


def _events(msg: Mapping[str, Any], kind: str, message_id: str) -> list[Row]:
    occurred_at, received_at = _timestamps(msg)
    if occurred_at is None:
        raise FormatError(f"Segment {kind} has no 'timestamp'")
    props = msg.get("properties") if isinstance(msg.get("properties"), Mapping) else {}
    if kind == "track":
        name = first(msg.get("event"))
        if name is None:
            raise FormatError("Segment track has no 'event'")
        event_type = TRACK_TYPES.get(_key(name), "custom")
    else:
        name = first(msg.get("name"), props.get("name"))
        event_type = "page_view" if kind == "page" else "screen_view"
    base: dict[str, Any] = {
        "event_id": message_id, "event_type": event_type, "event_name": name,
        "occurred_at": occurred_at, "received_at": received_at,
        "anonymous_id": msg.get("anonymousId"), "user_id": msg.get("userId"),
        "email": first(get(msg, "context", "traits", "email"), props.get("email")),
        "channel": "web" if kind == "page" else "app" if kind == "screen" else _channel(msg, event_type),
        "page_url": first(props.get("url"), get(msg, "context", "page", "url")),
        "referrer": first(props.get("referrer"), get(msg, "context", "page", "referrer")),
        "currency": props.get("currency"),
        "campaign_id": first(props.get("campaign_id"), get(msg, "context", "campaign", "name")),
    }
    if kind == "screen":
        base["page_url"] = base["referrer"] = None
    if kind == "page":
        base["page_type"] = first(props.get("category"), msg.get("category"), name)
    if event_type == "support_ticket":
        base["ticket_id"] = first(props.get("ticket_id"), props.get("id"))
    if event_type in PRODUCT_TYPES:
        base.update(_product(props, "properties"))
    if event_type not in ORDER_TYPES:
        return [row("events", **base)]

    order_id = props.get("order_id")
    if event_type == "purchase":
        base.update(order_id=order_id, payment_method=props.get("payment_method"))
    else:
        base.update(order_id=first(props.get("refund_id"), props.get("return_id")), original_order_id=order_id)
    products = props.get("products")
    if isinstance(products, list) and products:
        return [row("events", **{**base, **_product(product, f"properties.products[{index - 1}]"),
                                 "event_id": f"{message_id}:{index}"})
                for index, product in enumerate(products, start=1)]
    if event_type == "purchase":
        base["revenue"] = first(props.get("revenue"), props.get("total"))
    else:
        # the same precedence as purchases (revenue, then total), so a reversal takes back what was booked
        base["revenue"] = first(props.get("revenue"), props.get("total"), props.get("value"))
    return [row("events", **base)]


def _identity(msg: Mapping[str, Any], kind: str, message_id: str) -> dict[str, list[Row]]:
    occurred_at, received_at = _timestamps(msg)
    user_id = first(msg.get("userId"))
    traits = msg.get("traits") if isinstance(msg.get("traits"), Mapping) else {}
    email = first(traits.get("email"), get(msg, "context", "traits", "email"))
    if kind == "alias":
        previous_id = first(msg.get("previousId"))
        if user_id is None or previous_id is None:
            raise FormatError("Segment alias needs both 'userId' and 'previousId'")
        return {"identities": [row("identities", identity_id=message_id, kind="alias", user_id=user_id,
                                   anonymous_id=msg.get("anonymousId"), previous_id=previous_id,
                                   occurred_at=occurred_at, received_at=received_at)]}
    if user_id is None:  # an anonymous identify only sets traits: nothing links it to a customer
        return {}
    identity = row("identities", identity_id=message_id, kind="identify", user_id=user_id,
                   anonymous_id=msg.get("anonymousId"), email=email, occurred_at=occurred_at,
                   received_at=received_at)
    customer = row("customers", customer_id=user_id, email=email,
                   signup_at=first(traits.get("createdAt"), traits.get("created_at")),
                   updated_at=occurred_at,
                   country=first(get(traits, "address", "country"), traits.get("country")))
    return {"identities": [identity], "customers": [customer]}


def convert(record: dict) -> dict[str, list[dict[str, str | None]]]:
    """One Segment message -> {stream: rows}; raises FormatError when it cannot be converted."""
    if not isinstance(record, Mapping):
        raise FormatError(f"Segment message is not an object but {type(record).__name__}")
    kind = first(record.get("type"))
    if kind is None:
        raise FormatError("Segment message has no 'type'")
    kind = kind.strip().lower()
    if kind not in TYPES:
        raise FormatError(f"Segment message has unknown type {record.get('type')!r}")
    message_id = first(record.get("messageId"))
    if message_id is None:
        raise FormatError(f"Segment {kind} message has no 'messageId'")
    if kind in ("identify", "alias"):
        rows = _identity(record, kind, message_id)
    elif kind == "group":  # account membership: nothing segflow models
        rows = {}
    else:
        rows = {"events": _events(record, kind, message_id)}
    return collect(**rows, consent=_consent(record, _timestamps(record)[0]))
