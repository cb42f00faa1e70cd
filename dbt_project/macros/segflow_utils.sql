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
        -- HMAC-SHA-256 (RFC 2104) from the padded keys segflow passes in PGOPTIONS (-c segflow.pii_ipad=<hex>
        -- -c segflow.pii_opad=<hex>): the key is in no SQL text and not in this function
        create or replace function segflow_pseudonymize(value text) returns text language plpgsql stable strict
        as $fn$
        declare
            ipad text := current_setting('segflow.pii_ipad', true);
            opad text := current_setting('segflow.pii_opad', true);
        begin
            if coalesce(ipad, '') = '' or coalesce(opad, '') = '' then
                raise exception 'segflow_pseudonymize: no PII key in this session: run dbt through segflow build '
                    '(it sets segflow.pii_ipad and segflow.pii_opad in PGOPTIONS)';
            end if;
            return encode(sha256(decode(opad, 'hex') || sha256(decode(ipad, 'hex') || convert_to(value, 'UTF8'))),
                'hex');
        end $fn$;
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
    {%- set as_of = run_var('as_of') -%}
    {%- if as_of is none or as_of == '' -%}
        cast(null as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast('{{ as_of }}' as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{#- The last day a build sees, in full or in part: as_of is an exclusive bound, so the day before as_of when it
    is exactly midnight, else as_of's own day (int_run_context.last_date). -#}
{% macro run_context_last_date(as_of) -%}
    case
        when {{ as_of }} = cast(cast({{ as_of }} as date) as {{ dbt.type_timestamp() }})
            then cast({{ dbt.dateadd('day', -1, 'cast(' ~ as_of ~ ' as date)') }} as date)
        else cast({{ as_of }} as date)
    end
{%- endmacro %}

{#- The build's as-of bound as a scalar SQL expression: the literal when the build has one (every scheduled
    build does), else a scalar subquery on int_run_context. Unlike a cross join with int_run_context, neither
    hides the bound from the planner's row estimates on a large relation. A model that calls it needs a
    `-- depends_on: {{ ref('int_run_context') }}` line. -#}
{% macro as_of_value() -%}
    {%- if run_var('as_of') -%}
        {{ as_of_literal() }}
    {%- else -%}
        (select as_of from {{ ref('int_run_context') }})
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

{#- Pseudonymize an identifier (e-mail): HMAC-SHA-256 (hex) of the lower-cased text, keyed by the PII key; NULL stays
    NULL. `segflow_pseudonymize` is defined per connection from a key that never appears in SQL text: a
    temporary macro on DuckDB (the dbt-duckdb plugin segflow.dbt_plugin), a function reading the session's
    settings on PostgreSQL (segflow_create_pg_functions). See segflow/privacy.py. `purged`: the column that
    holds the pseudonym of a raw value that `segflow purge-pii` removed (raw.<stream>._email_pseudonym), so a
    purged row keeps the pseudonym it was built with. Keep in step with segflow.privacy.PSEUDONYM_SQL. -#}
{% macro pseudonymize(expr, purged=none) -%}
    {%- if purged is none -%}
    segflow_pseudonymize(lower({{ expr }}))
    {%- else -%}
    coalesce(segflow_pseudonymize(lower({{ expr }})), {{ purged }})
    {%- endif -%}
{%- endmacro %}

{#- ---------------------------------------------------------------------------------------------------------
    Incremental builds. `segflow build` keeps the build state (meta.build_state) and passes the bounds of the
    last successful build as vars; an incremental model processes only what changed since then (see
    docs/architecture.md, "Incremental builds"). A full refresh (`--full-refresh`, or segflow's own decision
    when the as-of moves backwards, settings or the project change, a load is replaced, or the previous build
    failed) rebuilds every table from the as-of slice.
--------------------------------------------------------------------------------------------------------- -#}

{#- A value that changes with every build (as_of, build_seq, since_*): from the environment variable
    SEGFLOW_RUN_<NAME>, which `segflow build` sets, else the var segflow__<name> (for dbt run by hand). Passing
    these through the environment keeps dbt's partial parsing: a changed --vars value makes dbt re-parse the
    whole project (~6 s a build), a changed environment variable only the files that read it. -#}
{% macro run_var(name) -%}
    {%- set value = env_var('SEGFLOW_RUN_' ~ (name | upper), '') -%}
    {%- if value == '' -%}
        {%- set value = var('segflow__' ~ name, none) -%}
    {%- endif -%}
    {{ return(none if value == '' else value) }}
{%- endmacro %}

{#- The last successful build's bounds (build_seq, as_of, load_seq); only called in incremental runs. -#}
{% macro segflow_since() -%}
    {%- set since = {
        'build_seq': run_var('since_build_seq'),
        'as_of': run_var('since_as_of'),
        'load_seq': run_var('since_load_seq'),
    } -%}
    {%- if since.build_seq is none or since.as_of is none or since.load_seq is none -%}
        {{ exceptions.raise_compiler_error(
            "Incremental runs need the previous build's bounds, which `segflow build` passes "
            ~ "(SEGFLOW_RUN_SINCE_BUILD_SEQ, SEGFLOW_RUN_SINCE_AS_OF, SEGFLOW_RUN_SINCE_LOAD_SEQ, or the vars "
            ~ "segflow__since_build_seq, segflow__since_as_of, segflow__since_load_seq). "
            ~ "Run `segflow build`, or rebuild everything with `dbt build --full-refresh`.") }}
    {%- endif -%}
    {{ return(since) }}
{%- endmacro %}

{#- This build's sequence number: stamped on every row an incremental model writes (`_build_seq`), so the
    next model can select what changed since the last successful build. -#}
{% macro build_seq_literal() -%}
    cast({{ (run_var('build_seq') or 0) | int }} as bigint)
{%- endmacro %}

{#- A SQL timestamp literal from 'YYYY-MM-DD HH:MM:SS' text. -#}
{% macro timestamp_literal(text) -%}
    cast('{{ text }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- True when the models that follow the session scope run incrementally (same rule as is_incremental(), for
    a model that is itself a table: the named relation exists and no full refresh was asked for). -#}
{% macro segflow_reprocessing(identifier) -%}
    {%- if not execute or flags.FULL_REFRESH or run_var('since_build_seq') is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set relation = adapter.get_relation(database=this.database, schema=this.schema, identifier=identifier) -%}
    {{ return(relation) }}
{%- endmacro %}

{#- In an incremental run, keep only the rows of `alias` that the session scope recomputes. -#}
{% macro join_reprocess_scope(alias, time_column='occurred_at') -%}
    {%- if is_incremental() %}
    inner join {{ ref('int_sessions_reprocess_scope') }} as scope
        on {{ alias }}.person_key = scope.person_key
        and {{ alias }}.{{ time_column }} >= scope.reprocess_from
    {%- endif %}
{%- endmacro %}

{#- The FROM clause of a session-level model: every event of a session (int_events_sessionized, alias
    `sessionized`) with its attributes (int_events_stitched, alias `stitched`), runaway sessions
    (int_sessions_quarantine) left out, and in an incremental run only the persons and times in the session
    scope (join_reprocess_scope). -#}
{% macro from_session_events() -%}
    from {{ ref('int_events_sessionized') }} as sessionized
    inner join {{ ref('int_events_stitched') }} as stitched
        on sessionized.event_id = stitched.event_id
    left join {{ ref('int_sessions_quarantine') }} as runaway
        on sessionized.session_id = runaway.session_id
    {{ join_reprocess_scope('sessionized') }}
    where runaway.session_id is null
{%- endmacro %}

{#- pre_hook of a session-level incremental model: remove what the session scope reprocesses (rows of a person
    in scope from its reprocess_from on); the model then appends their recomputed rows. -#}
{% macro delete_reprocessed(time_column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as target
        where exists (
            select 1 from {{ ref('int_sessions_reprocess_scope') }} as scope
            where scope.person_key = target.person_key
                and target.{{ time_column }} >= scope.reprocess_from
        )
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- Each event's session start (first_event_id, session_started_at), from a relation with is_session_start,
    person_key, occurred_at, event_id. DuckDB takes the last start so far in the same ordered pass; engines
    without `ignore nulls` number the sessions and take the first row of each. -#}
{% macro session_first_values(relation) -%}
    {{ return(adapter.dispatch('session_first_values', 'segflow')(relation)) }}
{%- endmacro %}
{% macro default__session_first_values(relation) -%}
    select
        *,
        last_value(case when is_session_start then event_id end ignore nulls) over running as first_event_id,
        last_value(case when is_session_start then occurred_at end ignore nulls) over running as session_started_at
    from {{ relation }}
    window running as (
        partition by person_key order by occurred_at, event_id rows between unbounded preceding and current row
    )
{%- endmacro %}
{% macro postgres__session_first_values(relation) -%}
    select
        *,
        first_value(event_id) over session_events as first_event_id,
        first_value(occurred_at) over session_events as session_started_at
    from (
        select
            *,
            sum(case when is_session_start then 1 else 0 end) over (
                partition by person_key order by occurred_at, event_id
                rows between unbounded preceding and current row
            ) as session_number
        from {{ relation }}
    ) as numbered
    window session_events as (
        partition by person_key, session_number order by occurred_at, event_id
        rows between unbounded preceding and unbounded following
    )
{%- endmacro %}


{#- True when an exact decimal amount has digits beyond the currency's minor unit (units from the currencies
    seed, unknown or missing currency: var segflow__default_currency_minor_units; at most 2, the precision
    segflow keeps). A literal per case: rounding to a column's precision is not portable. -#}
{% macro beyond_minor_unit(amount, minor_units) -%}
    {#- each branch cast back: a CASE takes the type of its first branch (DECIMAL(38,0) would round 2.55 to 3) -#}
    ({{ amount }} <> case least(coalesce({{ minor_units }}, {{ var('segflow__default_currency_minor_units') }}), 2)
        {%- for digits in [0, 1, 2] %}
        {% if loop.last %}else{% else %}when {{ digits }} then{% endif %} cast(round({{ amount }}, {{ digits }}) as decimal(38, 18))
        {%- endfor %} end)
{%- endmacro %}


{#- The canonical event columns as delivered (raw text), for checks over the whole row. -#}
{% macro raw_event_columns() -%}
    {{ return(['event_id', 'event_type', 'event_name', 'occurred_at', 'received_at', 'anonymous_id', 'user_id',
        'email', 'session_hint', 'channel', 'page_url', 'page_type', 'referrer', 'scroll_depth', 'time_on_page_s',
        'product_id', 'category', 'quantity', 'price', 'revenue', 'currency', 'order_id', 'original_order_id',
        'payment_method', 'feature_name', 'ticket_id', 'campaign_id', 'device_type']) }}
{%- endmacro %}

{#- True when any of the columns (each prefixed with `prefix`, e.g. 'source.') holds a NUL character. -#}
{% macro holds_nul(columns, prefix='') -%}
    {{ return(adapter.dispatch('holds_nul', 'segflow')(columns, prefix)) }}
{%- endmacro %}
{% macro default__holds_nul(columns, prefix) -%}
    ({% for c in columns %}coalesce(contains({{ prefix }}{{ c }}, chr(0)), false){% if not loop.last %} or {% endif %}{% endfor %})
{%- endmacro %}
{% macro postgres__holds_nul(columns, prefix) -%}
    {#- PostgreSQL text cannot hold a NUL at all (the load into it fails first), so no row has one -#}
    false
{%- endmacro %}

{#- True when an identifier's text is a JSON object or array rather than an id. -#}
{% macro looks_like_json(expr) -%}
    coalesce(left({{ expr }}, 1) in ('{', '['), false)
{%- endmacro %}
