-- One row per customer and UTC day with activity: an interactive event, or a return / cancellation. Sessions
-- started that day (fct_sessions: runaway sessions left out), interactive events and views (all of them, runaway
-- sessions' too: they are activity, not sessions), orders with a line that day, their gross revenue, what
-- returns and cancellations dated that day took back, and the difference (net revenue, cash-flow view: a return
-- counts on its own day, not its order's). Anonymous persons are left out (no customer to count them for).
-- Incremental by day: the days from int_sessions_reprocess_scope's reprocess_from on of each person in it, and
-- every day on which a return / cancellation changed, are removed and computed again (macros:
-- delete_daily_reprocessed, in_daily_reprocess_scope).
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
        events.event_id,
        events.order_id,
        events.event_type,
        events.revenue,
        events.is_interactive,
        events.is_order_line,
        events.is_reversal
    from {{ ref('int_events_stitched') }} as events
    where events.customer_id is not null
        and (events.is_interactive or events.is_reversal)
        {% if is_incremental() %}
        and {{ in_daily_reprocess_scope('events', 'customer_id', 'occurred_at') }}
        {% endif %}

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

daily_events as (

    select
        customer_id,
        activity_date,
        sum(case when is_interactive then 1 else 0 end) as event_count,
        sum(case when event_type in ('page_view', 'screen_view', 'product_view') then 1 else 0 end) as view_count,
        count(distinct case when is_order_line then coalesce(order_id, event_id) end) as order_count,
        sum(case when is_order_line then revenue else 0 end) as gross_revenue,
        sum(case when is_reversal then revenue else 0 end) as reversed_revenue
    from events
    group by customer_id, activity_date

),

final as (

    select
        daily_events.customer_id,
        daily_events.activity_date,
        cast(coalesce(sessions.session_count, 0) as bigint) as session_count,
        cast(daily_events.event_count as bigint) as event_count,
        cast(daily_events.view_count as bigint) as view_count,
        cast(daily_events.order_count as bigint) as order_count,
        cast(coalesce(daily_events.gross_revenue, 0) as decimal(18, 2)) as gross_revenue,
        cast(coalesce(daily_events.reversed_revenue, 0) as decimal(18, 2)) as reversed_revenue,
        cast(coalesce(daily_events.gross_revenue, 0) - coalesce(daily_events.reversed_revenue, 0) as decimal(18, 2))
            as net_revenue,
        daily_events.event_count > 0 as is_active_day
    from daily_events
    left join sessions
        on daily_events.customer_id = sessions.customer_id
        and daily_events.activity_date = sessions.activity_date

)

select * from final
