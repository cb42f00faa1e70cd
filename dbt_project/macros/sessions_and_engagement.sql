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

{#- Seconds from one timestamp to another as a double, with the fraction (dbt.datediff counts whole-second
    boundaries, differently on each engine). -#}
{% macro seconds_between(start_expr, end_expr) -%}
    cast(extract(epoch from ({{ end_expr }} - {{ start_expr }})) as {{ type_double() }})
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
    {%- if weights.recency < 0 or weights.frequency < 0 or weights.depth < 0 or (total - 1.0) | abs > 0.000001 -%}
        {{ exceptions.raise_compiler_error(
            "segflow__engagement_weight_recency, _frequency and _depth must be >= 0 and sum to 1 (got "
            ~ weights.recency ~ " + " ~ weights.frequency ~ " + " ~ weights.depth ~ " = " ~ total ~ ")") }}
    {%- endif -%}
    {{ return(weights) }}
{%- endmacro %}

{#- Days whose rows fct_customer_daily_activity recomputes in an incremental run, besides the persons in the
    session scope: every day on which a return or cancellation was added or re-attributed (a reversal is not an
    interactive event, so the session scope does not see it; its former customer is not recorded, so the whole
    day is recomputed). -#}
{% macro reversal_days_changed() -%}
    select distinct cast(occurred_at as date) as activity_date
    from {{ ref('int_events_stitched') }}
    where _build_seq > {{ segflow_since().build_seq | int }}
        and is_reversal
{%- endmacro %}

{#- In an incremental run of fct_customer_daily_activity, true for the rows (of `alias`, with a customer column
    and a timestamp column) that this build recomputes: a person in the session scope from the day of its
    reprocess_from on, or any customer on a day of changed reversals. -#}
{% macro in_daily_reprocess_scope(alias, customer_column, time_column) -%}
    (
        exists (
            select 1 from {{ ref('int_sessions_reprocess_scope') }} as scope
            where scope.person_key = {{ alias }}.{{ customer_column }}
                and {{ alias }}.{{ time_column }} >= cast(cast(scope.reprocess_from as date) as {{ dbt.type_timestamp() }})
        )
        or cast({{ alias }}.{{ time_column }} as date) in ({{ reversal_days_changed() }})
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
