-- One row per order: purchase lines grouped by order_id (a line without an order id is its own order),
-- with gross revenue, what returns and cancellations that name this order took back, and net revenue.
-- Incremental: an order is recomputed (from all its lines) when one of its lines, or a return naming it,
-- changed since the last successful build, and every order of a customer whose analytics consent changed.
-- Orders of customers who may not be analyzed are left out (macros/consent.sql).
{{ config(
    materialized='incremental',
    unique_key='order_id',
    incremental_strategy='delete+insert',
    pre_hook="{{ delete_changed_documents('orders') }}",
) }}

with

{% if is_incremental() %}
changed_orders as (

    select document_id as order_id from ({{ changed_orders() }}) as changed

),
{% endif %}

lines as (

    select * from {{ ref('int_events_stitched') }}
    where is_order_line
    {% if is_incremental() %}
        and coalesce(order_id, event_id) in (select order_id from changed_orders)
    {% endif %}

),

reversals as (

    select
        original_order_id,
        sum(revenue) as reversed_revenue,
        count(*) as reversal_line_count
    from {{ ref('int_events_stitched') }}
    where is_reversal and original_order_id is not null
    {% if is_incremental() %}
        and original_order_id in (select order_id from changed_orders)
    {% endif %}
    group by original_order_id

),

orders as (

    select
        coalesce(order_id, event_id) as order_id,
        max(customer_id) as customer_id,
        min(channel) as channel,
        min(payment_method) as payment_method,
        count(*) as line_count,
        cast(sum(quantity) as bigint) as item_count,
        sum(revenue) as revenue,
        min(occurred_at) as ordered_at
    from lines
    group by coalesce(order_id, event_id)

)

select
    orders.order_id,
    orders.customer_id,
    orders.channel,
    orders.payment_method,
    orders.line_count,
    orders.item_count,
    cast(orders.revenue as decimal(18, 2)) as revenue,
    cast(coalesce(reversals.reversed_revenue, 0) as decimal(18, 2)) as reversed_revenue,
    cast(orders.revenue - coalesce(reversals.reversed_revenue, 0) as decimal(18, 2)) as net_revenue,
    coalesce(reversals.reversal_line_count, 0) > 0 as has_reversal,
    cast(orders.ordered_at as date) as ordered_date,
    orders.ordered_at
from orders
left join reversals
    on orders.order_id = reversals.original_order_id
where {{ analyzable('orders.customer_id') }}
