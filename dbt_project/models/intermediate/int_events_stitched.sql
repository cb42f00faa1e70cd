-- One row per event, attributed to a customer where the device was ever identified.
with

events as (

    select * from {{ ref('int_events_deduplicated') }}

),

identities as (

    select * from {{ ref('int_identities_stitched') }}

),

event_types as (

    select * from {{ ref('event_types') }}

),

stitched as (

    select
        events.event_id,
        coalesce(events.user_id, identities.customer_id) as customer_id,
        coalesce(
            events.user_id,
            identities.customer_id,
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
        events.payment_method,
        events.campaign_id,
        events.quantity,
        events.price,
        event_types.is_interactive,
        event_types.is_order_line,
        event_types.is_cart_event,
        events.user_id is null and identities.customer_id is not null as is_stitched,
        events.occurred_at,
        events.received_at
    from events
    inner join event_types
        on events.event_type = event_types.event_type
    left join identities
        on events.anonymous_id = identities.anonymous_id

)

select * from stitched
