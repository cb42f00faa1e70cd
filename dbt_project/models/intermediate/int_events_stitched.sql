-- One row per event, attributed to its canonical customer: the event's user id resolved through the
-- identity graph, else its device's customer where the device belongs to exactly one customer (so a device
-- identified later has its earlier anonymous events re-stitched on the next build).
with

events as (

    select * from {{ ref('int_events_deduplicated') }}

),

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

stitched as (

    select
        events.event_id,
        coalesce(users.customer_id, devices.customer_id) as customer_id,
        coalesce(
            users.customer_id,
            devices.customer_id,
            {{ dbt.concat(["'anon:'", 'events.anonymous_id']) }}
        ) as person_key,
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
        events.received_at
    from events
    inner join event_types
        on events.event_type = event_types.event_type
    left join users
        on events.user_id = users.user_id
    left join devices
        on events.user_id is null
        and events.anonymous_id = devices.anonymous_id

)

select * from stitched
