-- One row per event, attributed to its canonical customer: the event's user id resolved through the
-- identity graph, else its device's customer where the device belongs to exactly one customer (so a device
-- identified later has its earlier anonymous events re-stitched on the next build).
-- Incremental: a build adds the events new to the as-of slice (loaded since, or received / occurred since the
-- last build's as-of) and re-attributes stored events whose identity resolution changed (a device identified,
-- two customers merged). Every row it writes carries this build's _build_seq.
{{ config(materialized='incremental', unique_key='event_id', incremental_strategy='delete+insert') }}

{#- the event's own columns, carried as they are: one list for new events and for stored events that this
    build re-attributes (both resolve the customer the same way, below) -#}
{%- set carried = ['user_id', 'anonymous_id', 'event_type', 'channel', 'page_type', 'product_id', 'category',
    'order_id', 'original_order_id', 'payment_method', 'campaign_id', 'scroll_depth', 'quantity', 'price',
    'revenue', 'page_url', 'time_on_page_seconds', 'feature_name', 'device_type'] -%}
{#- (page_url, time_on_page_seconds, device_type: fct_page_views and fct_sessions; feature_name:
    customer_engagement. Each carried column costs about 0.5 s per 10M events: carry only what a mart reads.) -#}
{%- set typed = ['event_group', 'is_interactive', 'is_order_line', 'is_cart_event', 'is_reversal'] -%}
{#- (CTE name, alias of the event columns, alias of the event-type columns, relation) -#}
{%- set branches = [('stitched', 'events', 'event_types',
    'events inner join ' ~ ref('event_types') ~ ' as event_types on events.event_type = event_types.event_type')] -%}
{%- if is_incremental() -%}
    {%- do branches.append(('restitched', 'stored', 'stored', this ~ ' as stored')) -%}
{%- endif %}

with

users as (

    select identifier as user_id, customer_id
    from {{ ref('int_identity_graph') }}
    where identifier_kind = 'user_id'

),

devices as (

    select * from {{ ref('int_identities_stitched') }}

),

events as (

    select * from {{ ref('int_events_deduplicated') }}
    {% if is_incremental() %}
    {%- set since = segflow_since() %}
    where _load_seq > {{ since.load_seq | int }}
        or received_at >= {{ timestamp_literal(since.as_of) }}
        or occurred_at >= {{ timestamp_literal(since.as_of) }}
    {% endif %}

),

{%- for name, alias, type_alias, relation in branches %}
{{ name }} as (

    select
        {{ alias }}.event_id,
        coalesce(users.customer_id, devices.customer_id) as customer_id,
        coalesce(users.customer_id, devices.customer_id, {{ dbt.concat(["'anon:'", alias ~ '.anonymous_id']) }})
            as person_key,
        {%- for column in carried %}
        {{ alias }}.{{ column }},
        {%- endfor %}
        {%- for column in typed %}
        {{ type_alias }}.{{ column }},
        {%- endfor %}
        {{ alias }}.user_id is null and devices.customer_id is not null as is_stitched,
        {{ alias }}.occurred_at,
        {{ alias }}.received_at,
        {{ build_seq_literal() }} as _build_seq
    from {{ relation }}
    left join users
        on {{ alias }}.user_id = users.user_id
    left join devices
        on {{ alias }}.user_id is null
        and {{ alias }}.anonymous_id = devices.anonymous_id
    {%- if name == 'restitched' %}
    -- stored events whose customer changed with this build's identity graph: the same row, re-attributed
    where coalesce(users.customer_id, devices.customer_id) is distinct from stored.customer_id
        or (stored.user_id is null and devices.customer_id is not null) is distinct from stored.is_stitched
    {%- endif %}

){% if not loop.last %},{% endif %}
{% endfor %}

{% if is_incremental() %}

select * from stitched
union all
select * from restitched
where event_id not in (select event_id from stitched)

{% else %}

select * from stitched

{% endif %}
