-- One row per customer and product with a high-intent signal in the look-back window that no purchase followed:
-- the customer added the product to the cart (and did not remove it afterwards), or viewed it at least
-- high_intent_min_views times, and has not bought it since the first signal. A signal counts once
-- high_intent_wait_hours have passed without a purchase (younger signals may still convert and are left out).
-- Customers with analytics consent; has_marketing_consent says whether they may be contacted.
-- depends_on: {{ ref('int_run_context') }}
{%- set lookback_days = var('segflow__high_intent_lookback_days') | int %}
{%- set min_views = var('segflow__high_intent_min_views') | int %}
{%- set wait_hours = var('segflow__high_intent_wait_hours') | int %}
{%- set as_of = as_of_value() %}

with

customers as (

    select customer_id, has_marketing_consent
    from {{ ref('dim_customers') }}
    where has_analytics_consent

),

product_events as (

    select customer_id, product_id, category, event_type, is_order_line, occurred_at
    from {{ ref('int_events_stitched') }}
    where customer_id is not null
        and product_id is not null
        and occurred_at >= {{ dbt.dateadd('day', -lookback_days, as_of) }}
        and (event_type in ('product_view', 'add_to_cart', 'remove_from_cart') or is_order_line)

),

per_product as (

    select
        customer_id,
        product_id,
        max(category) as category,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as cart_adds,
        max(case when event_type = 'add_to_cart' then occurred_at end) as last_cart_add_at,
        max(case when event_type = 'remove_from_cart' then occurred_at end) as last_cart_remove_at,
        min(case when event_type in ('product_view', 'add_to_cart') then occurred_at end) as first_signal_at,
        max(case when event_type in ('product_view', 'add_to_cart') then occurred_at end) as last_signal_at,
        max(case when is_order_line then occurred_at end) as last_purchase_at
    from product_events
    group by customer_id, product_id

),

signals as (

    select
        per_product.*,
        per_product.last_cart_add_at is not null
            and (per_product.last_cart_remove_at is null or per_product.last_cart_remove_at < per_product.last_cart_add_at)
            as has_open_cart,
        per_product.product_views >= {{ min_views }} as has_repeated_views
    from per_product

)

select
    signals.customer_id,
    signals.product_id,
    signals.category,
    case
        when signals.has_open_cart and signals.has_repeated_views then 'cart_and_repeated_views'
        when signals.has_open_cart then 'cart'
        else 'repeated_views'
    end as intent_kind,
    cast(signals.product_views as integer) as product_views,
    cast(signals.cart_adds as integer) as cart_adds,
    signals.first_signal_at,
    signals.last_signal_at,
    cast({{ dbt.datediff('signals.last_signal_at', as_of, 'hour') }} as integer) as hours_since_last_signal,
    customers.has_marketing_consent
from signals
inner join customers
    on signals.customer_id = customers.customer_id
where (signals.has_open_cart or signals.has_repeated_views)
    and (signals.last_purchase_at is null or signals.last_purchase_at < signals.first_signal_at)
    and signals.last_signal_at <= {{ dbt.dateadd('hour', -wait_hours, as_of) }}
