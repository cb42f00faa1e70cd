-- One row per analytics-consenting customer with at least one order before the as-of bound: historic
-- customer lifetime value (net revenue to date) and the order history behind it.
-- Returns and cancellations are charged as int_returns_charged says: to the buyer of the order they name when
-- that order is in fct_orders, else to the customer on the return.
with

customers as (

    select * from {{ ref('dim_customers') }}
    where has_analytics_consent

),

all_orders as (

    select * from {{ ref('fct_orders') }}

),

run_context as (

    select * from {{ ref('int_run_context') }}

),

order_stats as (

    select
        customer_id,
        count(*) as order_count,
        count(distinct ordered_date) as purchase_days,
        sum(revenue) as gross_revenue,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at
    from all_orders
    where customer_id is not null
    group by customer_id

),

charged_returns as (

    select
        charged_customer_id as customer_id,
        sum(returned_revenue) as returned_revenue
    from {{ ref('int_returns_charged') }}
    where charged_customer_id is not null
    group by charged_customer_id

),

totals as (

    select
        order_stats.customer_id,
        order_stats.order_count,
        order_stats.purchase_days,
        order_stats.gross_revenue,
        coalesce(charged_returns.returned_revenue, 0) as returned_revenue,
        order_stats.first_ordered_at,
        order_stats.last_ordered_at
    from order_stats
    inner join customers
        on order_stats.customer_id = customers.customer_id
    left join charged_returns
        on order_stats.customer_id = charged_returns.customer_id

),

final as (

    select
        totals.customer_id,
        cast(totals.order_count as integer) as order_count,
        cast(totals.purchase_days as integer) as purchase_days,
        cast(totals.gross_revenue as decimal(18, 2)) as gross_revenue,
        cast(totals.returned_revenue as decimal(18, 2)) as returned_revenue,
        cast(totals.gross_revenue - totals.returned_revenue as decimal(18, 2)) as net_revenue,
        cast(totals.gross_revenue - totals.returned_revenue as {{ type_double() }}) / totals.order_count
            as avg_order_value_net,
        cast(totals.first_ordered_at as date) as first_order_date,
        cast(totals.last_ordered_at as date) as last_order_date,
        totals.first_ordered_at,
        totals.last_ordered_at,
        run_context.as_of
    from totals
    cross join run_context

)

select * from final
