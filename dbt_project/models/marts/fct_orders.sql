with

order_lines as (

    select * from {{ ref('int_events_stitched') }}
    where is_order_line

),

orders as (

    select
        order_id,
        max(customer_id) as customer_id,
        min(channel) as channel,
        min(payment_method) as payment_method,
        count(*) as line_count,
        sum(quantity) as item_count,
        sum(quantity * price) as revenue,
        min(occurred_at) as ordered_at
    from order_lines
    group by order_id

)

select
    order_id,
    customer_id,
    channel,
    payment_method,
    line_count,
    item_count,
    cast(revenue as decimal(18, 2)) as revenue,
    cast(ordered_at as date) as ordered_date,
    ordered_at
from orders
