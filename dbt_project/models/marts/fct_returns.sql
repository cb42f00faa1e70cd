-- One row per return or cancellation document (order_id of the reversal, else the event itself): the
-- amount taken back (always positive), the customer, and the order it reverses where the source says so.
-- Incremental: a return is recomputed (from all its lines) when one of its lines changed since the last
-- successful build, and every return of a customer whose analytics consent changed. Returns of customers who
-- may not be analyzed are left out (macros/consent.sql).
{{ config(
    materialized='incremental',
    unique_key='return_id',
    incremental_strategy='delete+insert',
    pre_hook="{{ delete_changed_documents('returns') }}",
) }}

with

reversal_lines as (

    select * from {{ ref('int_events_stitched') }}
    where is_reversal
    {% if is_incremental() %}
        and coalesce(order_id, event_id) in ({{ changed_documents('is_reversal') }})
    {% endif %}

)

select
    coalesce(order_id, event_id) as return_id,
    max(event_type) as return_type,
    max(customer_id) as customer_id,
    max(original_order_id) as original_order_id,
    count(*) as line_count,
    cast(sum(quantity) as bigint) as item_count,
    cast(sum(revenue) as decimal(18, 2)) as returned_revenue,
    cast(min(occurred_at) as date) as returned_date,
    min(occurred_at) as returned_at
from reversal_lines
group by coalesce(order_id, event_id)
having {{ analyzable('max(customer_id)') }}
