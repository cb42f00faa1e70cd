-- One row per customer and UTC day with activity: an interactive event, an order or a return charged to them.
-- Sessions started that day (fct_sessions: runaway sessions left out), interactive events and views (all of
-- them, runaway sessions' too: they are activity, not sessions), orders placed that day and their gross revenue
-- (fct_orders, by ordered_date), the revenue returns and cancellations of that day took back - charged as
-- int_returns_charged charges them (the buyer of the order a return names, else the customer on the return), the
-- one rule for net revenue per customer - and the difference (net revenue; a return counts on its own day).
-- Anonymous persons are left out (no customer to count them for), and so are customers who may not be analyzed
-- (macros/consent.sql; a customer whose consent changed is in the session scope with their whole history).
-- Incremental by day: the days from int_sessions_reprocess_scope's reprocess_from on of each person in it, and
-- every day holding a line of a changed order or return (for every customer), are removed and computed again
-- (macros/sessions_and_engagement.sql: delete_daily_reprocessed, in_daily_reprocess_scope).
-- depends_on: {{ ref('int_sessions_reprocess_scope') }}
-- (a contract needs on_schema_change append_new_columns or fail; fail trips on PostgreSQL's text vs varchar)
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    pre_hook="{{ delete_daily_reprocessed() }}",
) }}

with

events as (

    select
        events.customer_id,
        cast(events.occurred_at as date) as activity_date,
        count(*) as event_count,
        sum(case when events.event_type in ('page_view', 'screen_view', 'product_view') then 1 else 0 end)
            as view_count
    from {{ ref('int_events_stitched') }} as events
    where events.customer_id is not null
        and events.is_interactive
        and {{ analyzable('events.customer_id') }}
        {% if is_incremental() %}
        and {{ in_daily_reprocess_scope('events', 'customer_id', 'occurred_at') }}
        {% endif %}
    group by events.customer_id, cast(events.occurred_at as date)

),

sessions as (

    select
        sessions.customer_id,
        sessions.started_date as activity_date,
        count(*) as session_count
    from {{ ref('fct_sessions') }} as sessions
    where sessions.customer_id is not null
        {% if is_incremental() %}
        and {{ in_daily_reprocess_scope('sessions', 'customer_id', 'started_at') }}
        {% endif %}
    group by sessions.customer_id, sessions.started_date

),

orders as (

    select
        orders.customer_id,
        orders.ordered_date as activity_date,
        count(*) as order_count,
        sum(orders.revenue) as gross_revenue
    from {{ ref('fct_orders') }} as orders
    where orders.customer_id is not null
        {% if is_incremental() %}
        and {{ in_daily_reprocess_scope('orders', 'customer_id', 'ordered_at') }}
        {% endif %}
    group by orders.customer_id, orders.ordered_date

),

returns as (

    select
        returns.charged_customer_id as customer_id,
        returns.returned_date as activity_date,
        sum(returns.returned_revenue) as reversed_revenue
    from {{ ref('int_returns_charged') }} as returns
    where returns.charged_customer_id is not null
        {% if is_incremental() %}
        and {{ in_daily_reprocess_scope('returns', 'charged_customer_id', 'returned_at') }}
        {% endif %}
    group by returns.charged_customer_id, returns.returned_date

),

days as (

    select customer_id, activity_date from events
    union
    select customer_id, activity_date from sessions
    union
    select customer_id, activity_date from orders
    union
    select customer_id, activity_date from returns

),

final as (

    select
        days.customer_id,
        days.activity_date,
        cast(coalesce(sessions.session_count, 0) as bigint) as session_count,
        cast(coalesce(events.event_count, 0) as bigint) as event_count,
        cast(coalesce(events.view_count, 0) as bigint) as view_count,
        cast(coalesce(orders.order_count, 0) as bigint) as order_count,
        cast(coalesce(orders.gross_revenue, 0) as decimal(18, 2)) as gross_revenue,
        cast(coalesce(returns.reversed_revenue, 0) as decimal(18, 2)) as reversed_revenue,
        cast(coalesce(orders.gross_revenue, 0) - coalesce(returns.reversed_revenue, 0) as decimal(18, 2))
            as net_revenue,
        coalesce(events.event_count, 0) > 0 as is_active_day
    from days
    left join events
        on days.customer_id = events.customer_id
        and days.activity_date = events.activity_date
    left join sessions
        on days.customer_id = sessions.customer_id
        and days.activity_date = sessions.activity_date
    left join orders
        on days.customer_id = orders.customer_id
        and days.activity_date = orders.activity_date
    left join returns
        on days.customer_id = returns.customer_id
        and days.activity_date = returns.activity_date

)

select * from final
