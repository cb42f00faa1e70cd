-- One row per return or cancellation document (fct_returns) with the customer it is charged to: the buyer of
-- the order it names when that order is in the warehouse (the amount is also netted on that order in
-- fct_orders), else the customer on the return. The one rule for net revenue per customer: customer_value,
-- customer_features and fct_customer_daily_activity (and so the lifecycle stages) charge returns through it.
select
    returns.return_id,
    case when orders.order_id is not null then orders.customer_id else returns.customer_id end as charged_customer_id,
    orders.order_id is not null as is_linked_to_order,
    returns.returned_revenue,
    returns.returned_date,
    returns.returned_at
from {{ ref('fct_returns') }} as returns
left join {{ ref('fct_orders') }} as orders
    on returns.original_order_id = orders.order_id
