"""Near-real-time triggers: abandoned carts and session offers, from fresh landing files to the outbox and the sink.

One run (`segflow triggers`, DAG ``segflow_triggers`` every 5 minutes):

1. read the complete landing files not read before (:mod:`segflow.activation.trigger_input`), resolve each event
   to its customer through the reference identities, keep them in ``trigger_events`` (the last
   SEGFLOW_TRIGGER_STATE_HOURS of event time); consent records found there go to ``consent_updates``;
2. the **watermark** is the newest event time seen (never the wall clock: replays and tests give the same
   triggers). Events dated after their file landed by more than SEGFLOW_CLOCK_SKEW_MINUTES are ignored, as the
   loader quarantines them, so one bad clock cannot close every cart;
3. sessions are cut per customer at SEGFLOW_SESSION_TIMEOUT_MINUTES of inactivity, as dbt does;
   - **abandoned cart**: a session with an add_to_cart and no purchase (the seed's order-line types) from its
     first add_to_cart until SEGFLOW_TRIGGER_CART_MINUTES after its last one, once the watermark is past that;
   - **session offer**: SEGFLOW_TRIGGER_OFFER_MIN_VIEWS views, in one session, of a product priced at least
     SEGFLOW_TRIGGER_OFFER_MIN_PRICE;
   only sessions with an event read in this run, or whose cart deadline the watermark crossed in this run, are
   looked at;
4. **eligibility**: the customer is in the reference with marketing and analytics consent, not flagged as an
   anomaly (bot) in the latest anomaly run, and no withdrawal of either consent arrived in a landing file
   since (the latest fresh decision per purpose). Unknown customers are never triggered;
5. each trigger has a key (type, customer, first event of the cart or first view of the product in the
   session): ``trigger_outbox`` keeps one row per key, so a trigger is emitted exactly once whatever re-runs;
6. pending outbox rows go to the sink (:mod:`segflow.activation.deliver`), after eligibility is checked again:
   a customer who withdrew consent since the trigger was detected gets status ``suppressed``, never a send.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from segflow.activation.deliver import send_triggers
from segflow.activation.store import open_store
from segflow.activation.trigger_input import (
    landed_at,
    new_deliveries,
    order_line_types,
    read_delivery,
    reference,
)
from segflow.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class TriggerRun:
    run_seq: int
    files_read: int = 0
    events_read: int = 0
    events_unresolved: int = 0
    unreadable_files: list[str] = field(default_factory=list)
    watermark: str | None = None
    reference: str = ""
    detected: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0
    sent: int = 0
    dead: int = 0
    sink: str = "disabled"
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _ingest(con: duckdb.DuckDBPyConnection, settings: Settings, run: TriggerRun, ref) -> None:
    first_run = not con.execute("select count(*) from trigger_runs").fetchall()[0][0]
    horizon = None
    if first_run:  # a new deployment starts from now: files older than the state window are history, not news
        horizon = _utc_now() - timedelta(hours=settings.trigger_state_hours)
    con.execute(f"create or replace temp view ref_identities as select * from read_parquet('{ref.identities}')")
    for delivery, stat in new_deliveries(con, settings):
        landed = landed_at(stat)
        stream = delivery.mapping.stream
        rows = 0
        if horizon is None or landed >= horizon:
            try:
                frame = read_delivery(settings, delivery)
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others; the loader reports it
                run.unreadable_files.append(f"{delivery.path.name}: {type(exc).__name__}: {exc}"[:300])
                frame = None
            if frame is not None and len(frame):
                rows = len(frame)
                con.register("_fresh", frame)
                if stream == "consent":
                    _ingest_consent(con, str(delivery.path))
                else:
                    run.events_unresolved += _ingest_events(con, settings, run.run_seq, str(delivery.path), landed)
                con.unregister("_fresh")
        con.execute("insert or ignore into trigger_files values (?, ?, ?, ?, ?, ?)",
                    [str(delivery.path), stat.st_size, stat.st_mtime_ns, stream, rows, _utc_now()])
        run.files_read += 1
        run.events_read += rows if stream != "consent" else 0


def _ingest_events(con, settings: Settings, run_seq: int, path: str, landed: datetime) -> int:
    """Insert the registered ``_fresh`` events (resolved to customers); returns the rows no customer matched."""
    resolved = f"""
        with fresh as (
            select trim(event_id) as event_id, lower(trim(event_type)) as event_type,
                try_cast(occurred_at as timestamptz)::timestamp as occurred_at,
                nullif(trim(user_id), '') as user_id, nullif(trim(anonymous_id), '') as anonymous_id,
                nullif(trim(product_id), '') as product_id, try_cast(price as double) as price
            from _fresh
        )
        select fresh.*, coalesce(by_user.customer_id, by_device.customer_id) as customer_id
        from fresh
        left join ref_identities as by_user
            on by_user.identifier_kind = 'user_id' and by_user.identifier = fresh.user_id
        left join ref_identities as by_device
            on by_device.identifier_kind = 'anonymous_id' and by_device.identifier = fresh.anonymous_id
        where fresh.event_id is not null and fresh.event_type is not null and fresh.occurred_at is not null
            and fresh.occurred_at <= ?::timestamp + interval ({settings.clock_skew_minutes}) minute
    """
    con.execute(f"create or replace temp table _resolved as {resolved}", [landed])
    unresolved = con.execute("select count(*) from _resolved where customer_id is null").fetchall()[0][0]
    con.execute("insert or ignore into trigger_events select event_id, customer_id, event_type, occurred_at, "
                "product_id, price, ?, ?, ? from _resolved where customer_id is not null "
                "qualify row_number() over (partition by event_id order by occurred_at) = 1",
                [path, landed, run_seq])
    return unresolved


def _ingest_consent(con, path: str) -> None:
    con.execute("""
        insert into consent_updates
        select coalesce(ids.customer_id, trim(c.customer_id)), lower(trim(c.purpose)),
            lower(trim(c.granted)) in ('true', '1', 'yes', 't', 'y'),
            coalesce(try_cast(c.recorded_at as timestamptz)::timestamp, ?), ?
        from _fresh as c
        left join ref_identities as ids on ids.identifier_kind = 'user_id' and ids.identifier = trim(c.customer_id)
        where nullif(trim(c.customer_id), '') is not null and lower(trim(c.purpose)) in ('marketing', 'analytics')
    """, [_utc_now(), path])


def _candidates_sql(settings: Settings, purchases: set[str]) -> str:
    order_types = ", ".join("'" + t.replace("'", "''") + "'" for t in sorted(purchases)) or "''"
    timeout, cart = settings.session_timeout_minutes, settings.trigger_cart_minutes
    return f"""
    with ordered as (
        select *, lag(occurred_at) over (partition by customer_id order by occurred_at, event_id) as previous_at
        from trigger_events
    ),
    numbered as (
        select *, sum(case when previous_at is null or occurred_at - previous_at > interval ({timeout}) minute
                      then 1 else 0 end) over (partition by customer_id order by occurred_at, event_id) as session_no
        from ordered
    ),
    sessions as (
        select customer_id, session_no, max(ingest_run) as last_ingest from numbered group by all
    ),
    carts as (
        select customer_id, session_no, min(occurred_at) as first_add, max(occurred_at) as last_add,
            first(event_id order by occurred_at, event_id) as reference_event_id,
            arg_max(source_file, occurred_at) as source_file, arg_max(file_landed_at, occurred_at) as landed,
            list(distinct product_id order by product_id) filter (where product_id is not null) as products,
            count(*) as adds
        from numbered where event_type = 'add_to_cart' group by all
    ),
    abandoned as (
        select 'abandoned_cart' as trigger_type, carts.customer_id, null::varchar as product_id,
            carts.reference_event_id, carts.last_add + interval ({cart}) minute as event_at, carts.source_file,
            carts.landed, json_object('products', carts.products, 'add_to_cart_events', carts.adds,
                'first_add_at', carts.first_add, 'last_add_at', carts.last_add) as details
        from carts
        inner join sessions using (customer_id, session_no)
        where carts.last_add + interval ({cart}) minute <= $watermark
            and (sessions.last_ingest = $run or carts.last_add + interval ({cart}) minute > $previous)
            and not exists (
                select 1 from trigger_events as bought
                where bought.customer_id = carts.customer_id and bought.event_type in ({order_types})
                    and bought.occurred_at between carts.first_add and carts.last_add + interval ({cart}) minute)
    ),
    viewed as (
        select customer_id, session_no, product_id, count(*) as views, max(price) as price,
            first(event_id order by occurred_at, event_id) as reference_event_id,
            list(occurred_at order by occurred_at, event_id)[{settings.trigger_offer_min_views}] as decisive_at,
            list(source_file order by occurred_at, event_id)[{settings.trigger_offer_min_views}] as source_file,
            list(file_landed_at order by occurred_at, event_id)[{settings.trigger_offer_min_views}] as landed
        from numbered
        where event_type = 'product_view' and product_id is not null
            and price >= {float(settings.trigger_offer_min_price)!r}
        group by all
        having count(*) >= {settings.trigger_offer_min_views}
    ),
    offers as (
        select 'session_offer' as trigger_type, viewed.customer_id, viewed.product_id, viewed.reference_event_id,
            viewed.decisive_at as event_at, viewed.source_file, viewed.landed,
            json_object('views', viewed.views, 'price', viewed.price) as details
        from viewed
        inner join sessions using (customer_id, session_no)
        where sessions.last_ingest = $run
    )
    select * from abandoned union all select * from offers
    """


_ELIGIBLE = """
    select c.customer_id from read_parquet($customers) as c
    where c.has_marketing_consent and c.has_analytics_consent and not c.is_flagged
      and not exists (
        select 1 from (
            select customer_id, purpose, arg_max(is_granted, recorded_at) as is_granted
            from consent_updates group by all
        ) as fresh
        where fresh.customer_id = c.customer_id and not fresh.is_granted)
"""


def _detect(con, settings: Settings, run: TriggerRun, previous, watermark, ref) -> None:
    con.execute(f"create or replace temp table _candidates as {_candidates_sql(settings, order_line_types(settings))}",
                {"watermark": watermark, "previous": previous or datetime(1970, 1, 1), "run": run.run_seq})
    con.execute(f"create or replace temp table _eligible as {_ELIGIBLE}", {"customers": str(ref.customers)})
    run.suppressed = con.execute("select count(*) from _candidates where customer_id not in (select customer_id "
                                 "from _eligible) and trigger_type || ':' || customer_id || ':' || "
                                 "reference_event_id || coalesce(':' || product_id, '') not in "
                                 "(select trigger_key from trigger_outbox)").fetchall()[0][0]
    before = dict(con.execute("select trigger_type, count(*) from trigger_outbox group by all").fetchall())
    con.execute("""
        insert or ignore into trigger_outbox
        select trigger_type || ':' || customer_id || ':' || reference_event_id || coalesce(':' || product_id, ''),
            trigger_type, customer_id, product_id, reference_event_id, event_at, details::varchar, source_file,
            landed, ?, 'pending', null, null
        from _candidates
        where customer_id in (select customer_id from _eligible)
    """, [_utc_now()])
    after = dict(con.execute("select trigger_type, count(*) from trigger_outbox group by all").fetchall())
    run.detected = {kind: after.get(kind, 0) - before.get(kind, 0) for kind in ("abandoned_cart", "session_offer")}


def run_triggers(settings: Settings | None = None, send: bool = True) -> TriggerRun:
    """One detection run: new landing files -> outbox -> sink (when ``send`` and a sink is configured)."""
    settings = settings or get_settings()
    started = _utc_now()
    ref = reference(settings)
    with open_store(settings) as con:
        seq, previous = con.execute("select coalesce(max(run_seq), 0) + 1, max(watermark) from trigger_runs"
                                    ).fetchall()[0]
        run = TriggerRun(run_seq=seq, reference=ref.source)
        _ingest(con, settings, run, ref)
        watermark = con.execute("select max(occurred_at) from trigger_events").fetchall()[0][0]
        if previous is not None and (watermark is None or watermark < previous):
            watermark = previous
        if watermark is not None:
            run.watermark = watermark.isoformat()
            con.execute("delete from trigger_events where occurred_at < ?",
                        [watermark - timedelta(hours=settings.trigger_state_hours)])
            _detect(con, settings, run, previous, watermark, ref)
        if send and settings.sink_url:
            # consent may have been withdrawn since a trigger was detected (while the sink was down): re-check
            con.execute(f"create or replace temp table _eligible as {_ELIGIBLE}", {"customers": str(ref.customers)})
            con.execute("update trigger_outbox set status = 'suppressed' where status = 'pending' and customer_id "
                        "not in (select customer_id from _eligible)")
            report = send_triggers(con, settings)
            run.sink, run.sent, run.dead = settings.sink_url, report.records_delivered, report.records_dead
        run.seconds = round((_utc_now() - started).total_seconds(), 3)
        con.execute("insert into trigger_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [seq, started, _utc_now(), run.files_read, run.events_read, watermark, run.reference,
                     sum(run.detected.values()), run.suppressed, run.sent, run.dead])
    if run.unreadable_files:
        log.warning("trigger run %s could not read %d file(s): %s", seq, len(run.unreadable_files),
                    "; ".join(run.unreadable_files))
    return run


def outbox(settings: Settings | None = None, limit: int = 20) -> dict:
    """The outbox's counts per type and status, and its newest rows."""
    settings = settings or get_settings()
    with open_store(settings) as con:
        counts = con.execute("select trigger_type, status, count(*) from trigger_outbox group by all order by all"
                             ).fetchall()
        rows = con.execute("select trigger_key, trigger_type, customer_id, product_id, event_at, status "
                           "from trigger_outbox order by detected_at desc, trigger_key limit ?", [limit]).df()
    return {"counts": [{"trigger_type": t, "status": s, "triggers": n} for t, s, n in counts],
            "newest": json.loads(rows.to_json(orient="records", date_format="iso"))}

