-- One row per UTC day with customer activity or an anonymous session: the day's totals over customers
-- (fct_customer_daily_activity: active customers, their sessions, events, views, orders, gross / reversed / net
-- revenue) and the sessions of persons never identified (fct_sessions). Days without either have no row.
-- A table: it is small (one row per day) and re-aggregated from the incremental daily facts on every build.
-- Per-segment daily activity (segment x day) follows with the segment assignments.

with

customer_days as (

    select * from {{ ref('fct_customer_daily_activity') }}

),

anonymous_sessions as (

    select
        started_date as activity_date,
        count(*) as anonymous_session_count
    from {{ ref('fct_sessions') }}
    where customer_id is null
    group by started_date

),

customer_totals as (

    select
        activity_date,
        sum(case when is_active_day then 1 else 0 end) as active_customer_count,
        sum(session_count) as session_count,
        sum(event_count) as event_count,
        sum(view_count) as view_count,
        sum(order_count) as order_count,
        sum(gross_revenue) as gross_revenue,
        sum(reversed_revenue) as reversed_revenue,
        sum(net_revenue) as net_revenue
    from customer_days
    group by activity_date

),

days as (

    select activity_date from customer_totals
    union
    select activity_date from anonymous_sessions

),

final as (

    select
        days.activity_date,
        cast(coalesce(customer_totals.active_customer_count, 0) as bigint) as active_customer_count,
        cast(coalesce(customer_totals.session_count, 0) as bigint) as session_count,
        cast(coalesce(anonymous_sessions.anonymous_session_count, 0) as bigint) as anonymous_session_count,
        cast(coalesce(customer_totals.event_count, 0) as bigint) as event_count,
        cast(coalesce(customer_totals.view_count, 0) as bigint) as view_count,
        cast(coalesce(customer_totals.order_count, 0) as bigint) as order_count,
        cast(coalesce(customer_totals.gross_revenue, 0) as decimal(18, 2)) as gross_revenue,
        cast(coalesce(customer_totals.reversed_revenue, 0) as decimal(18, 2)) as reversed_revenue,
        cast(coalesce(customer_totals.net_revenue, 0) as decimal(18, 2)) as net_revenue
    from days
    left join customer_totals
        on days.activity_date = customer_totals.activity_date
    left join anonymous_sessions
        on days.activity_date = anonymous_sessions.activity_date

)

select * from final
