-- One row per UTC day, segment lens and segment with customer activity: the daily series per segment, the input
-- for trend and seasonality work. Three lenses (segment_kind):
--   ml_segment       the customer's current segment of the weekly segmentation (int_customer_segments),
--                    '(unsegmented)' without one; applied to the customer's whole history
--   rfm_segment      the customer's current named RFM segment (customer_rfm), '(no order)' without one
--   lifecycle_stage  the customer's lifecycle stage ON THAT DAY (customer_lifecycle_history), '(no stage)' for
--                    customers outside it (no analytics consent)
-- Each customer counts once per lens and day, so every lens sums to the same daily totals (agg_daily_activity's
-- customer part).
with

daily as (

    select * from {{ ref('fct_customer_daily_activity') }}

),

{#- (segment_kind, relation, its segment column, placeholder without one, extra join condition) -#}
{%- set lenses = [
    ('ml_segment', ref('int_customer_segments'), 'segment_name', '(unsegmented)', ''),
    ('rfm_segment', ref('customer_rfm'), 'rfm_segment', '(no order)', ''),
    ('lifecycle_stage', ref('customer_lifecycle_history'), 'stage', '(no stage)',
        'and daily.activity_date >= lens.valid_from and (lens.valid_to is null or daily.activity_date < lens.valid_to)'),
] %}

lensed as (
{% for kind, relation, column, placeholder, condition in lenses %}
    select
        daily.*,
        '{{ kind }}' as segment_kind,
        coalesce(lens.{{ column }}, '{{ placeholder }}') as segment
    from daily
    left join {{ relation }} as lens
        on daily.customer_id = lens.customer_id
        {{ condition }}
    {% if not loop.last %}union all{% endif %}
{% endfor %}
)

select
    activity_date,
    cast(segment_kind as {{ dbt.type_string() }}) as segment_kind,
    cast(segment as {{ dbt.type_string() }}) as segment,
    cast(count(*) as bigint) as customers,
    cast(sum(case when is_active_day then 1 else 0 end) as bigint) as active_customers,
    cast(sum(session_count) as bigint) as session_count,
    cast(sum(event_count) as bigint) as event_count,
    cast(sum(view_count) as bigint) as view_count,
    cast(sum(order_count) as bigint) as order_count,
    cast(sum(gross_revenue) as decimal(18, 2)) as gross_revenue,
    cast(sum(net_revenue) as decimal(18, 2)) as net_revenue
from lensed
group by activity_date, segment_kind, segment
