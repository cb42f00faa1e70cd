-- One row per session; runaway sessions (int_sessions_quarantine) are left out.
-- Incremental like int_events_sessionized: the sessions of persons in scope are recomputed.
-- depends_on: {{ ref('int_sessions_reprocess_scope') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_reprocessed('started_at') }}",
) }}

with

runaway as (

    select session_id from {{ ref('int_sessions_quarantine') }}

),

events as (

    select
        sessionized.session_id,
        sessionized.customer_id,
        sessionized.person_key,
        sessionized.occurred_at,
        stitched.anonymous_id,
        stitched.channel,
        stitched.event_type,
        stitched.order_id,
        stitched.is_order_line
    from {{ ref('int_events_sessionized') }} as sessionized
    inner join {{ ref('int_events_stitched') }} as stitched
        on sessionized.event_id = stitched.event_id
    left join runaway
        on sessionized.session_id = runaway.session_id
    {{ join_reprocess_scope('sessionized') }}
    where runaway.session_id is null

),

sessions as (

    select
        session_id,
        max(customer_id) as customer_id,
        max(person_key) as person_key,
        min(anonymous_id) as anonymous_id,
        min(channel) as channel,
        count(*) as event_count,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_view_count,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_view_count,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as cart_add_count,
        count(distinct order_id) as order_count,
        max(case when event_type = 'add_to_cart' then 1 else 0 end) = 1 as has_cart_add,
        max(case when event_type = 'checkout' then 1 else 0 end) = 1 as has_checkout,
        max(case when is_order_line then 1 else 0 end) = 1 as has_purchase,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at
    from events
    group by session_id

)

select
    session_id,
    customer_id,
    person_key,
    anonymous_id,
    channel,
    event_count,
    page_view_count,
    product_view_count,
    cart_add_count,
    order_count,
    {{ dbt.datediff('started_at', 'ended_at', 'second') }} as duration_seconds,
    customer_id is not null as is_known_customer,
    has_cart_add,
    has_checkout,
    has_purchase,
    has_cart_add and not has_purchase as is_cart_abandoned,
    cast(started_at as date) as started_date,
    started_at,
    ended_at
from sessions
