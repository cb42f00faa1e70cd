-- One row per event, attributed to its canonical customer: the event's user id resolved through the
-- identity graph, else its device's customer where the device belongs to exactly one customer (so a device
-- identified later has its earlier anonymous events re-stitched on the next build).
-- Incremental: a build adds the events new to the as-of slice (loaded since, or received / occurred since the
-- last build's as-of) and re-attributes stored events whose identity resolution changed (a device identified,
-- two customers merged). Every row it writes carries this build's _build_seq.
{{ config(materialized='incremental', unique_key='event_id', incremental_strategy='delete+insert') }}

with

users as (

    select identifier as user_id, customer_id
    from {{ ref('int_identity_graph') }}
    where identifier_kind = 'user_id'

),

devices as (

    select * from {{ ref('int_identities_stitched') }}

),

event_types as (

    select * from {{ ref('event_types') }}

),

events as (

    select * from {{ ref('int_events_deduplicated') }}
    {% if is_incremental() %}
    {%- set since = segflow_since() %}
    where _load_seq > {{ since.load_seq | int }}
        or received_at >= {{ timestamp_literal(since.as_of) }}
        or occurred_at >= {{ timestamp_literal(since.as_of) }}
    {% endif %}

),

stitched as (

    select
        events.event_id,
        coalesce(users.customer_id, devices.customer_id) as customer_id,
        coalesce(
            users.customer_id,
            devices.customer_id,
            {{ dbt.concat(["'anon:'", 'events.anonymous_id']) }}
        ) as person_key,
        events.user_id,
        events.anonymous_id,
        events.event_type,
        event_types.event_group,
        events.channel,
        events.page_type,
        events.product_id,
        events.category,
        events.order_id,
        events.original_order_id,
        events.payment_method,
        events.campaign_id,
        events.scroll_depth,
        events.quantity,
        events.price,
        events.revenue,
        event_types.is_interactive,
        event_types.is_order_line,
        event_types.is_cart_event,
        event_types.is_reversal,
        events.user_id is null and devices.customer_id is not null as is_stitched,
        events.occurred_at,
        events.received_at,
        {{ build_seq_literal() }} as _build_seq
    from events
    inner join event_types
        on events.event_type = event_types.event_type
    left join users
        on events.user_id = users.user_id
    left join devices
        on events.user_id is null
        and events.anonymous_id = devices.anonymous_id

)

{% if is_incremental() %}
,

restitched as (

    -- stored events whose customer changed with this build's identity graph: the same row, re-attributed
    select
        stored.event_id,
        coalesce(users.customer_id, devices.customer_id) as customer_id,
        coalesce(
            users.customer_id,
            devices.customer_id,
            {{ dbt.concat(["'anon:'", 'stored.anonymous_id']) }}
        ) as person_key,
        stored.user_id,
        stored.anonymous_id,
        stored.event_type,
        stored.event_group,
        stored.channel,
        stored.page_type,
        stored.product_id,
        stored.category,
        stored.order_id,
        stored.original_order_id,
        stored.payment_method,
        stored.campaign_id,
        stored.scroll_depth,
        stored.quantity,
        stored.price,
        stored.revenue,
        stored.is_interactive,
        stored.is_order_line,
        stored.is_cart_event,
        stored.is_reversal,
        stored.user_id is null and devices.customer_id is not null as is_stitched,
        stored.occurred_at,
        stored.received_at,
        {{ build_seq_literal() }} as _build_seq
    from {{ this }} as stored
    left join users
        on stored.user_id = users.user_id
    left join devices
        on stored.user_id is null
        and stored.anonymous_id = devices.anonymous_id
    where coalesce(users.customer_id, devices.customer_id) is distinct from stored.customer_id
        or (stored.user_id is null and devices.customer_id is not null) is distinct from stored.is_stitched

)

select * from stitched
union all
select * from restitched
where event_id not in (select event_id from stitched)

{% else %}

select * from stitched

{% endif %}
