{#- Cross-database helpers. Each dispatches so an adapter can override it: the default implementations are
    DuckDB's, the postgres__ ones PostgreSQL's (run `segflow_create_pg_functions` first: on-run-start). -#}

{#- Cast text to a type, NULL when the text does not parse. -#}
{% macro try_cast(expr, type) -%}
    {{ return(adapter.dispatch('try_cast', 'segflow')(expr, type)) }}
{%- endmacro %}
{% macro default__try_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}
{% macro postgres__try_cast(expr, type) -%}
    {%- set kind = type | lower -%}
    {%- if kind.startswith('decimal') or kind.startswith('numeric') -%}
        cast(segflow_try_numeric({{ expr }}) as {{ type }})
    {%- elif kind in ('integer', 'bigint') -%}
        cast(segflow_try_numeric(case when {{ is_integer_text(expr) }} then {{ expr }} end) as {{ type }})
    {%- elif kind in ('double', 'double precision', 'float') -%}
        cast(segflow_try_numeric({{ expr }}) as double precision)
    {%- else -%}
        {{ exceptions.raise_compiler_error("postgres__try_cast: no safe cast to " ~ type) }}
    {%- endif -%}
{%- endmacro %}

{#- Parse an ISO-8601 text timestamp (with or without offset) to a UTC timestamp without time zone. -#}
{% macro parse_utc_timestamp(expr) -%}
    {{ return(adapter.dispatch('parse_utc_timestamp', 'segflow')(expr)) }}
{%- endmacro %}
{% macro default__parse_utc_timestamp(expr) -%}
    (case when regexp_full_match({{ expr }}, '{{ iso_timestamp_pattern() }}')
        then try_cast({{ expr }} as timestamptz) end at time zone 'UTC')
{%- endmacro %}

{#- What counts as a timestamp on every engine: ISO-8601 date, optional time and fraction, optional Z / UTC /
    offset. Engines accept more ('yesterday', 'infinity', 'epoch'); segflow quarantines those. -#}
{% macro iso_timestamp_pattern() -%}
    \s*[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?\s*(Z|z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)?\s*
{%- endmacro %}
{% macro postgres__parse_utc_timestamp(expr) -%}
    (segflow_try_timestamptz({{ expr }}) at time zone 'UTC')
{%- endmacro %}

{#- True when the text is a whole number (so '1.5' is never rounded into a quantity). -#}
{% macro is_integer_text(expr) -%}
    {{ return(adapter.dispatch('is_integer_text', 'segflow')(expr)) }}
{%- endmacro %}
{% macro default__is_integer_text(expr) -%}
    regexp_full_match({{ expr }}, '[+-]?[0-9]+')
{%- endmacro %}
{% macro postgres__is_integer_text(expr) -%}
    ({{ expr }} ~ '^[+-]?[0-9]+$')
{%- endmacro %}

{#- An 8-byte float column type that every engine spells the same way. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'segflow')()) }}
{%- endmacro %}
{% macro default__type_double() -%}double{%- endmacro %}
{% macro postgres__type_double() -%}double precision{%- endmacro %}

{#- PostgreSQL has no try_cast: small functions that return NULL instead of raising (on-run-start). -#}
{% macro segflow_create_pg_functions() -%}
    {%- if target.type == 'postgres' -%}
        -- only plain numbers and ISO-8601 timestamps: PostgreSQL also accepts 'NaN', 'yesterday', 'epoch', ...
        create or replace function segflow_try_numeric(value text) returns numeric language plpgsql immutable as $fn$
        begin
            if value !~ '^\s*[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?\s*$' then return null; end if;
            return value::numeric;
        exception when others then return null; end $fn$;
        create or replace function segflow_try_timestamptz(value text) returns timestamptz language plpgsql
        immutable as $fn$
        begin
            if value !~ '^{{ iso_timestamp_pattern() }}$' then return null; end if;
            return value::timestamptz;
        exception when others then return null; end $fn$;
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- Text to boolean by an explicit word list (the same on every engine), NULL when it is none of them. -#}
{% macro to_boolean(expr) -%}
    case
        when lower(trim({{ expr }})) in ('true', 't', 'yes', 'y', '1') then true
        when lower(trim({{ expr }})) in ('false', 'f', 'no', 'n', '0') then false
    end
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

{#- The names of the raw event streams (one raw table each; see segflow/sources/canonical.py). -#}
{% macro event_streams() -%}
    {{ return(['events', 'orders', 'support_tickets', 'email_events']) }}
{%- endmacro %}

{#- A fingerprint of a row's values (NULL-safe) for equality checks within one engine: DuckDB's native hash is
    several times cheaper than md5 over the concatenated text. -#}
{% macro content_fingerprint(columns) -%}
    {{ return(adapter.dispatch('content_fingerprint', 'segflow')(columns)) }}
{%- endmacro %}
{% macro default__content_fingerprint(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}
{% macro postgres__content_fingerprint(columns) -%}
    {{ surrogate_key(columns) }}
{%- endmacro %}

{#- Pseudonymize an identifier (e-mail): salted hash of the lower-cased text, NULL stays NULL. -#}
{% macro pseudonymize(expr) -%}
    case when {{ expr }} is not null
        then {{ dbt.hash(dbt.concat(["'" ~ var('segflow__pii_salt') ~ "'", "lower(" ~ expr ~ ")"])) }} end
{%- endmacro %}
