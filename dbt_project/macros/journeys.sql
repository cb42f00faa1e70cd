{#- Helpers of the journey marts (models/marts/journeys, models/intermediate/journeys). -#}

{#- The most steps a funnel may have. Fixed, not a var: fct_funnel_sessions has one enforced-contract column
    per step (step_1_at .. step_8_at); the funnel_steps seed is tested against it. -#}
{% macro funnel_max_steps() -%}
    {{ return(8) }}
{%- endmacro %}

{#- The event columns (of int_events_stitched) a journey state may be named after. Low-cardinality columns
    only: the Markov chain has one removal scenario per state. -#}
{% macro journey_state_allowed_columns() -%}
    {{ return(['page_type', 'event_type', 'event_group', 'category', 'channel']) }}
{%- endmacro %}

{#- The SQL expression naming an event's journey state: the first non-null of the columns listed in
    segflow__journey_state_columns, else '(other)'. `alias` is the relation holding those columns. -#}
{% macro journey_state_expression(alias) -%}
    {%- set columns = var('segflow__journey_state_columns') -%}
    {%- if columns is string -%}{%- set columns = [columns] -%}{%- endif -%}
    {%- if columns | length == 0 -%}
        {{ exceptions.raise_compiler_error("segflow__journey_state_columns must list at least one column") }}
    {%- endif -%}
    {%- for column in columns -%}
        {%- if column not in journey_state_allowed_columns() -%}
            {{ exceptions.raise_compiler_error(
                "segflow__journey_state_columns: '" ~ column ~ "' is not one of "
                ~ journey_state_allowed_columns() | join(', ')) }}
        {%- endif -%}
    {%- endfor -%}
    coalesce({% for column in columns %}{{ alias }}.{{ column }}, {% endfor %}'(other)')
{%- endmacro %}

{#- A double rounded to `digits` decimals on every engine (PostgreSQL has no round(double precision, int)):
    the Markov results are iterated sums whose last bits differ between engines. -#}
{% macro round_double(expr, digits) -%}
    cast(round(cast({{ expr }} as decimal(38, 18)), {{ digits }}) as {{ type_double() }})
{%- endmacro %}

{#- The most path steps journey_top_paths has columns for (step_1 .. step_8); segflow__journey_path_steps
    chooses how many of them are filled (1 .. this). -#}
{% macro journey_path_max_steps() -%}
    {{ return(8) }}
{%- endmacro %}

{#- segflow__journey_path_steps, checked against the columns journey_top_paths has. -#}
{% macro journey_path_steps() -%}
    {%- set steps = var('segflow__journey_path_steps') | int -%}
    {%- if steps < 1 or steps > journey_path_max_steps() -%}
        {{ exceptions.raise_compiler_error("segflow__journey_path_steps must be between 1 and "
            ~ journey_path_max_steps() ~ ", not " ~ steps) }}
    {%- endif -%}
    {{ return(steps) }}
{%- endmacro %}

{#- Seconds elapsed from one timestamp to another, as a double with microsecond precision (dbt.datediff in
    seconds counts second boundaries crossed: 00:00:59.9 -> 00:01:00.1 would be 1 second). -#}
{% macro seconds_between(first_timestamp, second_timestamp) -%}
    (cast({{ dbt.datediff(first_timestamp, second_timestamp, 'microsecond') }} as {{ type_double() }}) / 1000000)
{%- endmacro %}
