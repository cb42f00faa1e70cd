"""segflow's canonical schema: the streams a source can land in and the columns each stream has.

Every raw table holds text exactly as delivered (or as a mapping renamed/combined it); dbt staging types
it. A source provides any subset of a stream's columns: the others stay NULL downstream. The minimum an
event row needs is an id (or a mapping that derives one), a timestamp, an event type and an identity
(``user_id`` or ``anonymous_id``).

This module is the one place that lists the canonical columns. The loader creates every raw table with all
of its stream's columns (so a file that lacks optional columns still builds), the mapping validator checks
targets against it, and ``docs/data-contract.md`` describes it.
"""

from __future__ import annotations

# Behavioral event streams. They share one column set and are unified into one timeline in dbt; each has
# its own raw table so a purchase-only or ticket-only feed lands where an analyst expects it.
EVENT_STREAMS = ("events", "orders", "support_tickets", "email_events")

EVENT_COLUMNS = (
    "event_id",            # unique per event; a mapping can derive it as a content hash
    "event_type",          # canonical type (dbt seed event_types), e.g. page_view, purchase, return
    "event_name",          # the source's own name for the event (kept for reference)
    "occurred_at",         # when it happened: ISO-8601, UTC unless it carries an offset
    "received_at",         # when the collector received it (defaults to occurred_at when absent)
    "anonymous_id",        # device / cookie / app-instance id
    "user_id",             # the customer id of a logged-in user
    "email",               # plain e-mail address: pseudonymized in staging, never stored past raw; identifies a
                           # customer when the source has no user id (map it here, never to user_id)
    "session_hint",        # the source's own session id (kept for comparison; segflow sessionizes itself)
    "channel",             # web | app | email | support | store | other
    "page_url",
    "page_type",
    "referrer",
    "scroll_depth",        # percent 0-100
    "time_on_page_s",      # seconds
    "product_id",
    "category",
    "quantity",            # integer; for returns/cancellations the sign is ignored (type decides)
    "price",               # unit price
    "revenue",             # line revenue; when absent, quantity * price
    "currency",
    "order_id",            # for purchases: the order; for returns/cancellations: the return document
    "original_order_id",   # for returns/cancellations: the order they reverse, where the source says so
    "payment_method",
    "feature_name",
    "ticket_id",
    "campaign_id",
    "device_type",         # desktop | mobile | tablet | other; staging normalises synonyms (phone -> mobile, pc ->
                           # desktop, ...) and leaves anything it does not recognise null (last: a warehouse loaded
                           # before it existed gets it appended, see segflow.ddl.ensure_schema)
)

STREAM_COLUMNS: dict[str, tuple[str, ...]] = {
    **{stream: EVENT_COLUMNS for stream in EVENT_STREAMS},
    # one row per profile version
    "customers": ("customer_id", "email", "signup_at", "updated_at", "country", "age_band",
                  "consent_marketing", "consent_analytics"),
    # one row per consent decision: the latest decision per customer and purpose as of the build wins
    "consent": ("customer_id", "purpose", "granted", "recorded_at"),
    # identity statements: identify (user_id <-> anonymous_id / email) and alias (previous_id -> user_id)
    "identities": ("identity_id", "kind", "user_id", "anonymous_id", "previous_id", "email", "occurred_at",
                   "received_at"),
}
STREAMS = tuple(STREAM_COLUMNS)

# Personal data among the canonical columns: redacted in meta.load_rejects (segflow.redaction) and removed from
# raw after SEGFLOW_PII_RETENTION_DAYS (segflow purge-pii). Staging turns the PSEUDONYMIZED ones into a keyed
# pseudonym; a purge keeps that pseudonym beside the row (raw.<stream>._<column>_pseudonym, see
# pseudonym_columns) so staging gives a purged row the same pseudonym as before.
PII_COLUMNS = frozenset({"email"})
PSEUDONYMIZED_COLUMNS = ("email",)

# the columns a row of each stream cannot do without (a mapping must provide or derive them)
REQUIRED: dict[str, tuple[str, ...]] = {
    **{stream: ("event_id", "event_type", "occurred_at") for stream in EVENT_STREAMS},
    "customers": ("customer_id",),
    "consent": ("customer_id", "purpose", "granted"),
    "identities": ("user_id",),
}
# a row needs at least one of these (an e-mail alone identifies a customer: staging pseudonymizes it into the
# user id "email:<hash>", so a plain address never becomes a customer id)
IDENTITY_ANY: dict[str, tuple[str, ...]] = {stream: ("user_id", "anonymous_id", "email") for stream in EVENT_STREAMS}

# What staging accepts as a timestamp (the dbt macro iso_timestamp_pattern holds the same expression; a test
# keeps them equal): ISO-8601 date, optional time and fraction, optional Z / UTC / offset. Engines accept more
# ('yesterday', 'infinity', 'epoch'); segflow quarantines those.
ISO_TIMESTAMP_PATTERN = (r"\s*[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?\s*"
                         r"(Z|z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)?\s*")

TIMESTAMP_COLUMNS = frozenset({"occurred_at", "received_at", "signup_at", "updated_at", "recorded_at"})

# what the warehouse can compute from which canonical columns (shown in docs and by `segflow mapping check`)
FEATURE_NEEDS: dict[str, tuple[str, ...]] = {
    "sessions, pages per session, session minutes": ("occurred_at", "page_view/product_view events"),
    "recency, frequency, monetary, average order value": ("purchase events", "order_id or event_id",
                                                         "revenue or quantity + price"),
    "net revenue (returns, cancellations)": ("return/cancellation events", "revenue or quantity + price"),
    "cart abandonment": ("add_to_cart events", "purchase events"),
    "app share": ("channel = app", "app_open/feature_use events"),
    "time on page, scroll depth, entry and exit pages": ("page_view/screen_view/product_view events",
                                                         "time_on_page_s (else the next event's time)",
                                                         "scroll_depth", "page_type", "page_url"),
    "device of a session": ("device_type",),
    "engagement (feature usage, content depth)": ("feature_use events with feature_name", "category",
                                                  "page_type"),
    "e-mail click rate": ("email_send and email_click events",),
    "support tickets": ("support_ticket events",),
    "tenure": ("customers.signup_at (else the first event)",),
    "identity stitching": ("anonymous_id with user_id on some events", "identify/alias statements",
                           "e-mail"),
}


def columns(stream: str) -> tuple[str, ...]:
    return STREAM_COLUMNS[stream]


def pseudonym_columns(stream: str) -> tuple[str, ...]:
    """The raw table's columns that keep the pseudonym of a purged PII value (after the canonical columns)."""
    return tuple(f"_{c}_pseudonym" for c in PSEUDONYMIZED_COLUMNS if c in STREAM_COLUMNS[stream])


def is_event_stream(stream: str) -> bool:
    return stream in EVENT_STREAMS
