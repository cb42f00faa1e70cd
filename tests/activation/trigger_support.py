"""Landing files for the trigger tests, written the way a producer does."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta

T0 = datetime(2025, 10, 20, 12, 0, 0)  # after the built data: these are "new" events
FIELDS = ("event_id", "event_type", "occurred_at", "user_id", "anonymous_id", "product_id", "price")


def land(settings, name: str, rows: list[dict], stream: str = "events") -> None:
    """Write a landing file as a producer does: under a temporary name, renamed, then the ready marker."""
    folder = settings.landing_dir / stream
    folder.mkdir(parents=True, exist_ok=True)
    fields = FIELDS if stream == "events" else ("customer_id", "purpose", "granted", "recorded_at")
    tmp = folder / f"_{name}"
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.rename(folder / name)
    (folder / f"{name}.ready").touch()


def session(customer: str, start: datetime, prefix: str, *, views=3, price=250.0, cart=True, buy=False):
    """``views`` views of product P9 at ``price`` a minute apart, an add_to_cart, and maybe a purchase."""
    rows = [{"event_id": f"{prefix}-v{i}", "event_type": "product_view", "user_id": customer,
             "occurred_at": (start + timedelta(minutes=i)).isoformat() + "Z", "product_id": "P9", "price": price}
            for i in range(views)]
    if cart:
        rows.append({"event_id": f"{prefix}-c", "event_type": "add_to_cart", "user_id": customer, "product_id": "P9",
                     "occurred_at": (start + timedelta(minutes=views + 1)).isoformat() + "Z", "price": price})
    if buy:
        rows.append({"event_id": f"{prefix}-b", "event_type": "purchase", "user_id": customer, "product_id": "P9",
                     "occurred_at": (start + timedelta(minutes=views + 20)).isoformat() + "Z", "price": price})
    return rows
