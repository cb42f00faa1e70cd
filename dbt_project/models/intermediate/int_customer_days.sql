-- One row per customer and UTC day with activity before the as-of bound: interactive events, orders placed,
-- their gross revenue and the revenue that returns/cancellations took back that day. The daily input of the
-- lifecycle stages (a day with only a return is kept: it changes net revenue, not activity). Returns are charged
-- as int_returns_charged says.
with

events as (

    select
        customer_id,
        cast(occurred_at as date) as activity_date,
        count(*) as interactive_events
    from {{ ref('int_events_stitched') }}
    where customer_id is not null
        and is_interactive
    group by customer_id, cast(occurred_at as date)

),

orders as (

    select
        customer_id,
        ordered_date as activity_date,
        count(*) as order_count,
        sum(revenue) as gross_revenue
    from {{ ref('fct_orders') }}
    where customer_id is not null
    group by customer_id, ordered_date

),

returns as (

    -- charged to the order's buyer when the return names a known order (int_returns_charged)
    select
        charged_customer_id as customer_id,
        returned_date as activity_date,
        sum(returned_revenue) as returned_revenue
    from {{ ref('int_returns_charged') }}
    where charged_customer_id is not null
    group by charged_customer_id, returned_date

),

days as (

    select customer_id, activity_date from events
    union
    select customer_id, activity_date from orders
    union
    select customer_id, activity_date from returns

)

select
    days.customer_id,
    days.activity_date,
    cast(coalesce(events.interactive_events, 0) as integer) as interactive_events,
    cast(coalesce(orders.order_count, 0) as integer) as order_count,
    cast(coalesce(orders.gross_revenue, 0) as decimal(18, 2)) as gross_revenue,
    cast(coalesce(returns.returned_revenue, 0) as decimal(18, 2)) as returned_revenue,
    coalesce(events.interactive_events, 0) > 0 or coalesce(orders.order_count, 0) > 0 as is_active
from days
left join events
    on days.customer_id = events.customer_id
    and days.activity_date = events.activity_date
left join orders
    on days.customer_id = orders.customer_id
    and days.activity_date = orders.activity_date
left join returns
    on days.customer_id = returns.customer_id
    and days.activity_date = returns.activity_date
