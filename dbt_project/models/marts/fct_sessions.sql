-- One row per session; runaway sessions (int_sessions_quarantine) are left out. What happened in it (events,
-- views, cart events, orders and their revenue), on which device and channel, and its views: entry and exit
-- page, scroll depth, time on page (from fct_page_views, which holds one row per view).
-- Incremental like int_events_sessionized: the sessions of persons in scope are recomputed.
-- depends_on: {{ ref('int_sessions_reprocess_scope') }}
-- (a contract needs on_schema_change append_new_columns or fail; fail trips on PostgreSQL's text vs varchar)
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    pre_hook="{{ delete_reprocessed('started_at') }}",
) }}

with

events as (

    select
        sessionized.session_id,
        sessionized.customer_id,
        sessionized.person_key,
        sessionized.occurred_at,
        stitched.anonymous_id,
        stitched.channel,
        stitched.device_type,
        stitched.event_type,
        stitched.order_id,
        stitched.revenue,
        stitched.is_cart_event,
        stitched.is_order_line
    {{ from_session_events() }}

),

page_views as (

    select page_views.*
    from {{ ref('fct_page_views') }} as page_views
    {{ join_reprocess_scope('page_views') }}

),

sessions as (

    select
        session_id,
        max(customer_id) as customer_id,
        max(person_key) as person_key,
        min(anonymous_id) as anonymous_id,
        min(channel) as channel,
        min(device_type) as device_type,
        count(distinct device_type) as device_type_count,
        count(*) as event_count,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_view_count,
        sum(case when event_type = 'screen_view' then 1 else 0 end) as screen_view_count,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_view_count,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as cart_add_count,
        sum(case when is_cart_event then 1 else 0 end) as cart_event_count,
        count(distinct order_id) as order_count,
        sum(case when is_order_line then revenue else 0 end) as revenue,
        max(case when event_type = 'add_to_cart' then 1 else 0 end) = 1 as has_cart_add,
        max(case when event_type = 'checkout' then 1 else 0 end) = 1 as has_checkout,
        max(case when is_order_line then 1 else 0 end) = 1 as has_purchase,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at
    from events
    group by session_id

),

views as (

    select
        session_id,
        max(case when is_entry then page_type end) as entry_page_type,
        max(case when is_entry then page_url end) as entry_page_url,
        max(case when is_exit then page_type end) as exit_page_type,
        max(case when is_exit then page_url end) as exit_page_url,
        count(distinct case when event_type = 'product_view' then product_id end) as distinct_product_count,
        count(distinct category) as distinct_category_count,
        max(scroll_depth) as scroll_depth_max,
        avg(scroll_depth) as scroll_depth_avg,
        -- summed as exact decimals (to the microsecond): a float sum depends on the order rows arrive in, and an
        -- incremental build must give the same value as a full one
        sum(cast(time_on_page_seconds as decimal(18, 6))) as time_on_page_seconds
    from page_views
    group by session_id

),

final as (

    select
        sessions.session_id,
        sessions.customer_id,
        sessions.person_key,
        sessions.anonymous_id,
        sessions.channel,
        -- the events' one device type; 'mixed' when they name several
        case when sessions.device_type_count > 1 then 'mixed' else sessions.device_type end as device_type,
        views.entry_page_type,
        views.entry_page_url,
        views.exit_page_type,
        views.exit_page_url,
        cast(sessions.event_count as bigint) as event_count,
        cast(sessions.page_view_count as bigint) as page_view_count,
        cast(sessions.screen_view_count as bigint) as screen_view_count,
        cast(sessions.product_view_count as bigint) as product_view_count,
        cast(coalesce(views.distinct_product_count, 0) as bigint) as distinct_product_count,
        cast(coalesce(views.distinct_category_count, 0) as bigint) as distinct_category_count,
        cast(sessions.cart_add_count as bigint) as cart_add_count,
        cast(sessions.cart_event_count as bigint) as cart_event_count,
        cast(sessions.order_count as bigint) as order_count,
        cast(coalesce(sessions.revenue, 0) as decimal(18, 2)) as revenue,
        cast(views.scroll_depth_max as integer) as scroll_depth_max,
        cast(views.scroll_depth_avg as {{ type_double() }}) as scroll_depth_avg,
        cast(views.time_on_page_seconds as {{ type_double() }}) as time_on_page_seconds,
        cast({{ dbt.datediff('sessions.started_at', 'sessions.ended_at', 'second') }} as bigint) as duration_seconds,
        sessions.customer_id is not null as is_known_customer,
        coalesce(sessions.channel = 'app', false) as is_app,
        sessions.has_cart_add,
        sessions.has_checkout,
        sessions.has_purchase,
        sessions.has_cart_add and not sessions.has_purchase as is_cart_abandoned,
        cast(sessions.started_at as date) as started_date,
        sessions.started_at,
        sessions.ended_at
    from sessions
    left join views
        on sessions.session_id = views.session_id

)

select * from final
