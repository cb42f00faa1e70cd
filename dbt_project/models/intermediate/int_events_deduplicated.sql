-- One row per event_id among the events received before the as-of bound (first delivery wins).
with

events as (

    select * from {{ ref('stg_raw__events') }}

),

run_context as (

    select * from {{ ref('int_run_context') }}

),

in_scope as (

    select events.*
    from events
    cross join run_context
    where events.received_at < run_context.as_of
        and events.occurred_at < run_context.as_of

),

ranked as (

    select
        *,
        row_number() over (
            partition by event_id order by received_at, _load_id, _source_row
        ) as delivery_rank
    from in_scope

)

select
    event_id,
    event_type,
    anonymous_id,
    user_id,
    channel,
    page_url,
    page_type,
    product_id,
    category,
    order_id,
    payment_method,
    feature_name,
    ticket_id,
    campaign_id,
    scroll_depth,
    time_on_page_seconds,
    quantity,
    price,
    occurred_at,
    received_at,
    _load_id,
    _source_file,
    _source_row
from ranked
where delivery_rank = 1
