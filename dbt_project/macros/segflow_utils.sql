{#- Cross-database helpers. Each dispatches so an adapter can override it (postgres comes with the
    portability issue); the default implementations are DuckDB's. -#}

{#- Cast text to a type, NULL when the text does not parse. -#}
{% macro try_cast(expr, type) -%}
    {{ return(adapter.dispatch('try_cast', 'segflow')(expr, type)) }}
{%- endmacro %}
{% macro default__try_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}

{#- Parse an ISO-8601 text timestamp (with or without offset) to a UTC timestamp without time zone. -#}
{% macro parse_utc_timestamp(expr) -%}
    {{ return(adapter.dispatch('parse_utc_timestamp', 'segflow')(expr)) }}
{%- endmacro %}
{% macro default__parse_utc_timestamp(expr) -%}
    (try_cast({{ expr }} as timestamptz) at time zone 'UTC')
{%- endmacro %}

{#- Empty or blank text becomes NULL. -#}
{% macro clean_text(expr) -%}
    nullif(trim({{ expr }}), '')
{%- endmacro %}

{#- A deterministic surrogate key from columns (NULL-safe). -#}
{% macro surrogate_key(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '_null_')") -%}
        {%- if not loop.last %}{% do parts.append("'|'") %}{% endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}

{#- The build's as-of bound as a SQL timestamp literal, or NULL when the var is not set. -#}
{% macro as_of_literal() -%}
    {%- set as_of = var('segflow__as_of') -%}
    {%- if as_of is none or as_of == '' -%}
        cast(null as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast('{{ as_of }}' as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{#- True when the text is a whole number (so '1.5' is never rounded into a quantity). -#}
{% macro is_integer_text(expr) -%}
    {{ return(adapter.dispatch('is_integer_text', 'segflow')(expr)) }}
{%- endmacro %}
{% macro default__is_integer_text(expr) -%}
    regexp_full_match({{ expr }}, '[+-]?[0-9]+')
{%- endmacro %}

{#- The names of the raw event streams (one raw table each; see segflow/sources/canonical.py). -#}
{% macro event_streams() -%}
    {{ return(['events', 'orders', 'support_tickets', 'email_events']) }}
{%- endmacro %}

{#- Pseudonymize an identifier (e-mail): salted hash of the lower-cased text, NULL stays NULL. -#}
{% macro pseudonymize(expr) -%}
    case when {{ expr }} is not null
        then {{ dbt.hash(dbt.concat(["'" ~ var('segflow__pii_salt') ~ "'", "lower(" ~ expr ~ ")"])) }} end
{%- endmacro %}
