-- One row per customer who consented to analytics and signed up before the as-of bound: the behavioral
-- features the weekly segmentation clusters on. All "days" are measured from the as-of bound.
-- A feature that is undefined for a customer (an average over no orders, a rate over no sends) is either null
-- (the days_* and avg_days_* columns) or imputed as 0 and flagged by the has_* column named in its description.
-- depends_on: {{ ref('int_run_context') }}
with

customers as (

    select * from {{ ref('dim_customers') }}
    where has_analytics_consent

),

run_context as (

    select * from {{ ref('int_run_context') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}
    where customer_id is not null

),

orders as (

    select * from {{ ref('fct_orders') }}
    where customer_id is not null

),

events as (

    select * from {{ ref('int_events_stitched') }}
    where customer_id is not null

),

session_stats as (

    select
        sessions.customer_id,
        count(*) as session_count,
        sum(case when sessions.started_at >= {{ dbt.dateadd('day', -var('segflow__recent_window_days'), 'run_context.as_of') }}
            then 1 else 0 end) as sessions_28d,
        sum(case when sessions.started_at >= {{ dbt.dateadd('day', -7, 'run_context.as_of') }}
            then 1 else 0 end) as sessions_7d,
        avg(sessions.page_view_count + sessions.product_view_count) as pages_per_session,
        avg(sessions.duration_seconds) / 60.0 as avg_session_minutes,
        sum(case when sessions.has_cart_add then 1 else 0 end) as cart_sessions,
        sum(case when sessions.is_cart_abandoned then 1 else 0 end) as abandoned_sessions,
        max(sessions.ended_at) as last_session_at
    from sessions
    cross join run_context
    group by sessions.customer_id

),

order_stats as (

    select
        orders.customer_id,
        count(*) as order_count,
        sum(orders.revenue) as revenue,
        sum(case when orders.ordered_at >= {{ dbt.dateadd('day', -var('segflow__recent_window_days'), 'run_context.as_of') }}
            then 1 else 0 end) as orders_28d,
        sum(case when orders.ordered_at >= {{ dbt.dateadd('day', -var('segflow__recent_window_days'), 'run_context.as_of') }}
            then orders.revenue else 0 end) as revenue_28d,
        max(orders.ordered_at) as last_order_at,
        min(orders.ordered_at) as first_order_at,
        count(distinct orders.ordered_date) as purchase_days,
        max(orders.ordered_date) as last_order_date,
        min(orders.ordered_date) as first_order_date
    from orders
    cross join run_context
    group by orders.customer_id

),

return_stats as (

    select
        returns.charged_customer_id as customer_id,
        sum(returns.returned_revenue) as returned_revenue
    from {{ ref('int_returns_charged') }} as returns
    where returns.charged_customer_id is not null
    group by returns.charged_customer_id

),

event_stats as (

    select
        events.customer_id,
        sum(case when events.is_interactive and events.channel = 'app' then 1 else 0 end) as app_events,
        sum(case when events.is_interactive then 1 else 0 end) as interactive_events,
        sum(case when events.event_type = 'email_send' then 1 else 0 end) as email_sends,
        sum(case when events.event_type = 'email_click' then 1 else 0 end) as email_clicks,
        sum(case when events.event_type = 'email_open' then 1 else 0 end) as email_opens,
        sum(case when events.event_type = 'support_ticket'
            and events.occurred_at >= {{ dbt.dateadd('day', -90, as_of_value()) }} then 1 else 0 end)
            as support_tickets_90d,
        count(distinct case
            when events.is_interactive
                and events.occurred_at >= {{ dbt.dateadd('day', -var('segflow__recent_window_days'), as_of_value()) }}
            then cast(events.occurred_at as date) end) as active_days_28d,
        max(case when events.is_interactive then events.occurred_at end) as last_interactive_at,
        min(case when events.event_type = 'product_view' then events.occurred_at end) as first_product_view_at
    from events
    group by events.customer_id

),

features as (

    select
        customers.customer_id,
        run_context.as_of_date,
        cast({{ dbt.datediff(
            'coalesce(session_stats.last_session_at, order_stats.last_order_at, customers.signup_at)',
            'run_context.as_of', 'day'
        ) }} as integer) as recency_days,
        cast({{ dbt.datediff('customers.signup_at', 'run_context.as_of', 'day') }} as integer) as tenure_days,
        cast(coalesce(order_stats.order_count, 0) as integer) as frequency,
        -- net of returns and cancellations (a customer can owe nothing less than 0)
        cast(greatest(coalesce(order_stats.revenue, 0) - coalesce(return_stats.returned_revenue, 0), 0) as {{ type_double() }})
            as monetary,
        cast(coalesce(order_stats.revenue / nullif(order_stats.order_count, 0), 0) as {{ type_double() }}) as avg_order_value,
        cast(coalesce(return_stats.returned_revenue, 0) as {{ type_double() }}) as returned_revenue,
        cast(coalesce(order_stats.orders_28d, 0) as integer) as orders_28d,
        cast(coalesce(order_stats.revenue_28d, 0) as {{ type_double() }}) as revenue_28d,
        cast(coalesce(session_stats.session_count, 0) as integer) as session_count,
        cast(coalesce(session_stats.sessions_28d, 0) as integer) as sessions_28d,
        cast(coalesce(session_stats.sessions_7d, 0) as integer) as sessions_7d,
        cast(coalesce(event_stats.active_days_28d, 0) as integer) as active_days_28d,
        cast(coalesce(session_stats.pages_per_session, 0) as {{ type_double() }}) as pages_per_session,
        cast(coalesce(session_stats.avg_session_minutes, 0) as {{ type_double() }}) as avg_session_minutes,
        cast(coalesce(1.0 * session_stats.abandoned_sessions / nullif(session_stats.cart_sessions, 0), 0) as {{ type_double() }})
            as cart_abandonment_rate,
        cast(coalesce(1.0 * event_stats.app_events / nullif(event_stats.interactive_events, 0), 0) as {{ type_double() }})
            as app_event_share,
        cast(coalesce(1.0 * event_stats.email_clicks / nullif(event_stats.email_sends, 0), 0) as {{ type_double() }})
            as email_click_rate,
        cast(coalesce(event_stats.support_tickets_90d, 0) as integer) as support_tickets_90d,
        order_stats.last_order_at,
        run_context.as_of,
        -- recency both ways: from the last order and from the last activity (null when there was none)
        cast({{ dbt.datediff('order_stats.last_order_at', 'run_context.as_of', 'day') }} as integer)
            as days_since_last_order,
        cast({{ dbt.datediff(
            "case when event_stats.last_interactive_at is null or order_stats.last_order_at > event_stats.last_interactive_at"
            ~ " then order_stats.last_order_at else event_stats.last_interactive_at end",
            'run_context.as_of', 'day'
        ) }} as integer) as days_since_last_activity,
        cast(coalesce(order_stats.purchase_days, 0) as integer) as purchase_days,
        -- purchase velocity: mean days between purchase days (needs two of them)
        cast(case when order_stats.purchase_days >= 2
            then 1.0 * {{ dbt.datediff('order_stats.first_order_date', 'order_stats.last_order_date', 'day') }}
                / (order_stats.purchase_days - 1) end as {{ type_double() }}) as avg_days_between_orders,
        -- first product view to first purchase, in days (null without a view before the first purchase)
        cast(case when event_stats.first_product_view_at <= order_stats.first_order_at
            then {{ dbt.datediff('event_stats.first_product_view_at', 'order_stats.first_order_at', 'second') }} / 86400.0
            end as {{ type_double() }}) as days_first_view_to_first_purchase,
        cast(coalesce(1.0 * event_stats.email_opens / nullif(event_stats.email_sends, 0), 0) as {{ type_double() }})
            as email_open_rate,
        coalesce(order_stats.order_count, 0) > 0 as has_orders,
        coalesce(session_stats.session_count, 0) > 0 as has_sessions,
        coalesce(session_stats.cart_sessions, 0) > 0 as has_cart_sessions,
        coalesce(event_stats.interactive_events, 0) > 0 as has_interactive_events,
        coalesce(event_stats.email_sends, 0) > 0 as has_email_sends
    from customers
    cross join run_context
    left join session_stats
        on customers.customer_id = session_stats.customer_id
    left join order_stats
        on customers.customer_id = order_stats.customer_id
    left join event_stats
        on customers.customer_id = event_stats.customer_id
    left join return_stats
        on customers.customer_id = return_stats.customer_id

)

select * from features
