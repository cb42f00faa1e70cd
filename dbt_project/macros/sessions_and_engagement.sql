{#- Helpers of the sessions and engagement marts (fct_sessions, fct_page_views, customer_engagement,
    fct_customer_daily_activity). Portable: the same SQL on DuckDB and PostgreSQL. -#}

{#- A device's form factor from delivered text: desktop, mobile, tablet or other; common synonyms mapped
    (GA4's device.category, user-agent parsers' names); anything not recognised - 'unknown', '(not set)', a
    typo - is NULL, never guessed. -#}
{% macro normalize_device_type(expr) -%}
    {%- set text = "lower(" ~ clean_text(expr) ~ ")" -%}
    case
        when {{ text }} in ('desktop', 'computer', 'pc', 'laptop', 'mac') then 'desktop'
        when {{ text }} in ('mobile', 'phone', 'smartphone', 'mobile phone', 'handset') then 'mobile'
        when {{ text }} in ('tablet', 'ipad', 'phablet') then 'tablet'
        when {{ text }} in ('other', 'smart tv', 'smarttv', 'tv', 'console', 'wearable', 'car', 'embedded',
                            'bot', 'crawler') then 'other'
    end
{%- endmacro %}

{#- The engagement score's weights (vars segflow__engagement_weight_*): non-negative and summing to 1, else the
    build stops before anything is written (the score would leave [0, 100]). Returns them as a dict. -#}
{% macro engagement_weights() -%}
    {%- set weights = {
        'recency': var('segflow__engagement_weight_recency') | float,
        'frequency': var('segflow__engagement_weight_frequency') | float,
        'depth': var('segflow__engagement_weight_depth') | float,
    } -%}
    {%- set total = weights.recency + weights.frequency + weights.depth -%}
    {%- if weights.recency < 0 or weights.frequency < 0 or weights.depth < 0 or (total - 1.0) | abs > 0.000000001 -%}
        {{ exceptions.raise_compiler_error(
            "segflow__engagement_weight_recency, _frequency and _depth must be >= 0 and sum to 1 (got "
            ~ weights.recency ~ " + " ~ weights.frequency ~ " + " ~ weights.depth ~ " = " ~ total ~ ")") }}
    {%- endif -%}
    {{ return(weights) }}
{%- endmacro %}

{#- Days whose rows fct_customer_daily_activity recomputes for every customer in an incremental run: each day
    holding a line of an order or a return document that has a line written by this build, or of a return that
    names such an order. An order (fct_orders) or a return (int_returns_charged: charged to the buyer of the
    order it names) can change its customer or its date when one line changes, and its former customer is not
    recorded; recomputing every day it has a line on covers the old and the new row. -#}
{% macro daily_activity_changed_days() -%}
    {%- set since = segflow_since().build_seq | int -%}
    select distinct cast(lines.occurred_at as date) as activity_date
    from {{ ref('int_events_stitched') }} as lines
    where (lines.is_order_line or lines.is_reversal)
        and coalesce(lines.order_id, lines.event_id) in (
            select coalesce(order_id, event_id) from {{ ref('int_events_stitched') }}
            where _build_seq > {{ since }} and (is_order_line or is_reversal)
            union
            select coalesce(order_id, event_id) from {{ ref('int_events_stitched') }}
            where is_reversal and original_order_id in (
                select coalesce(order_id, event_id) from {{ ref('int_events_stitched') }}
                where _build_seq > {{ since }} and is_order_line
            )
        )
{%- endmacro %}

{#- In an incremental run of fct_customer_daily_activity, true for the rows (of `alias`, with a customer column
    and a timestamp or date column) that this build recomputes: a person in the session scope from the day of its
    reprocess_from on (its interactive events and sessions changed there), or any customer on a changed order /
    return day (daily_activity_changed_days). -#}
{% macro in_daily_reprocess_scope(alias, customer_column, time_column) -%}
    (
        exists (
            select 1 from {{ ref('int_sessions_reprocess_scope') }} as scope
            where scope.person_key = {{ alias }}.{{ customer_column }}
                and {{ alias }}.{{ time_column }} >= cast(cast(scope.reprocess_from as date) as {{ dbt.type_timestamp() }})
        )
        or cast({{ alias }}.{{ time_column }} as date) in ({{ daily_activity_changed_days() }})
    )
{%- endmacro %}

{#- pre_hook of fct_customer_daily_activity: remove the customer-days this build recomputes. -#}
{% macro delete_daily_reprocessed() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as target
        where {{ in_daily_reprocess_scope('target', 'customer_id', 'activity_date') }}
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}
