-- One row per raw row of every event stream (events, orders, support_tickets, email_events): every column
-- typed once, with the validation verdict (`quarantine_reason`).
-- Which delivery of an event_id counts is decided in base_raw__events_redeliveries (only the ~1% of event ids
-- delivered more than once need ranking; ranking every row here cost a 10M-row sort of ~50 columns).
-- Incremental by load: a build types only the loads that arrived since the last successful build.
{{ config(materialized='incremental', incremental_strategy='append') }}
{%- set text_columns = ['occurred_at_text', 'received_at_text', 'scroll_depth_text', 'time_on_page_text',
    'quantity_text', 'price_text', 'revenue_text'] %}
{%- set kept_columns = ['_stream', 'event_id', 'event_type', 'event_name', 'event_group', 'anonymous_id', 'user_id',
    'email_hash', 'session_hint', 'channel', 'page_url', 'page_type', 'referrer', 'product_id', 'category',
    'currency', 'order_id', 'original_order_id', 'payment_method', 'feature_name', 'ticket_id', 'campaign_id', 'device_type',
    'scroll_depth', 'time_on_page_seconds', 'quantity', 'price', 'revenue', 'is_order_line', 'is_reversal',
    'occurred_at', 'received_at', 'quarantine_reason', 'content_hash', '_load_id', '_source_file', '_source_row',
    '_load_seq', '_loaded_at'] %}

{%- set new_loads = none -%}
{%- if is_incremental() and execute -%}
    {%- set since = segflow_since() -%}
    {%- set new_loads = run_query(
        "select load_id from " ~ source('meta', 'load_manifest') ~ " where load_seq > " ~ (since.load_seq | int)
    ).columns[0].values() | list -%}
{%- endif %}

with

source as (

    {% for stream in event_streams() %}
    select '{{ stream }}' as _stream, * from {{ source('raw', stream) }}
    {%- if new_loads is not none %}
    -- a literal list, so the filter is applied while scanning (only the new loads' rows are read)
    where _load_id in ({% for load_id in new_loads %}'{{ load_id | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% else %}null{% endfor %})
    {%- endif %}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

manifest as (

    select load_id, load_seq, loaded_at from {{ source('meta', 'load_manifest') }}

),

event_types as (

    select * from {{ ref('event_types') }}

),

currencies as (

    select currency, minor_units from {{ ref('currencies') }}

),

texts as (

    select
        source._stream,
        {{ clean_text('source.event_id') }} as event_id,
        lower({{ clean_text('source.event_type') }}) as event_type,
        {{ clean_text('source.event_name') }} as event_name,
        {{ clean_text('source.anonymous_id') }} as anonymous_id,
        {{ clean_text('source.user_id') }} as user_id,
        -- pseudonymized at once: the address itself never leaves the raw layer
        {{ pseudonymize(clean_text('source.email'), purged='source._email_pseudonym') }} as email_hash,
        {{ clean_text('source.session_hint') }} as session_hint,
        lower({{ clean_text('source.channel') }}) as channel,
        {{ clean_text('source.page_url') }} as page_url,
        {{ clean_text('source.page_type') }} as page_type,
        {{ clean_text('source.referrer') }} as referrer,
        {{ clean_text('source.product_id') }} as product_id,
        {{ clean_text('source.category') }} as category,
        upper({{ clean_text('source.currency') }}) as currency,
        {{ clean_text('source.order_id') }} as order_id,
        {{ clean_text('source.original_order_id') }} as original_order_id,
        {{ clean_text('source.payment_method') }} as payment_method,
        {{ clean_text('source.feature_name') }} as feature_name,
        {{ clean_text('source.ticket_id') }} as ticket_id,
        {{ clean_text('source.campaign_id') }} as campaign_id,
        {{ normalize_device_type('source.device_type') }} as device_type,
        {{ clean_text('source.occurred_at') }} as occurred_at_text,
        {{ clean_text('source.received_at') }} as received_at_text,
        {{ clean_text('source.scroll_depth') }} as scroll_depth_text,
        {{ clean_text('source.time_on_page_s') }} as time_on_page_text,
        {{ clean_text('source.quantity') }} as quantity_text,
        {{ clean_text('source.price') }} as price_text,
        {{ clean_text('source.revenue') }} as revenue_text,
        source._load_id,
        source._source_file,
        source._source_row,
        manifest.load_seq as _load_seq,
        manifest.loaded_at as _loaded_at,
        -- a NUL is never text (a corrupt block; PostgreSQL cannot store it): the row is not staged
        {{ holds_nul(raw_event_columns(), 'source.') }} as has_nul
    from source
    left join manifest
        on source._load_id = manifest.load_id

),

typed as (

    select
        texts.*,
        case when {{ is_integer_text('scroll_depth_text') }}
            then {{ try_cast('scroll_depth_text', 'integer') }} end as scroll_depth,
        {{ try_cast('time_on_page_text', 'double') }} as time_on_page_seconds,
        case when {{ is_integer_text('quantity_text') }}
            then {{ try_cast('quantity_text', 'bigint') }} end as quantity_as_delivered,
        {{ try_cast('price_text', 'decimal(18, 2)') }} as price,
        {{ try_cast('revenue_text', 'decimal(18, 2)') }} as revenue_as_delivered,
        -- the amounts as delivered, to find digits beyond the currency's minor unit (never rounded away)
        {{ try_cast('price_text', 'decimal(38, 18)') }} as price_exact,
        {{ try_cast('revenue_text', 'decimal(38, 18)') }} as revenue_exact,
        {{ parse_utc_timestamp('occurred_at_text') }} as occurred_at,
        {{ parse_utc_timestamp('received_at_text') }} as received_at_parsed
    from texts

),

classified as (

    select
        typed.*,
        coalesce(typed.received_at_parsed, typed.occurred_at) as received_at,
        event_types.event_group,
        coalesce(event_types.is_order_line, false) as is_order_line,
        coalesce(event_types.is_reversal, false) as is_reversal,
        -- returns / cancellations: the type says they subtract, so the delivered sign is ignored
        case when event_types.is_reversal then abs(typed.quantity_as_delivered) else typed.quantity_as_delivered end
            as quantity,
        -- line revenue: as delivered, else quantity x price; returns/cancellations count as positive amounts
        case
            when event_types.is_reversal then abs(coalesce(typed.revenue_as_delivered, typed.quantity_as_delivered * typed.price))
            else coalesce(typed.revenue_as_delivered, typed.quantity_as_delivered * typed.price)
        end as revenue,
        case
            when typed.has_nul then 'invalid_text'
            when typed.event_id is null then 'missing_event_id'
            when event_types.event_type is null then 'unknown_event_type'
            when typed.occurred_at is null or (typed.received_at_text is not null and typed.received_at_parsed is null)
                then 'invalid_timestamp'
            -- an event cannot happen after the file that carries it was delivered (beyond clock skew), nor
            -- before the configured start of plausible data (epoch-zero and 0001-01-01 defaults)
            when typed.occurred_at > {{ dbt.dateadd('minute', var('segflow__clock_skew_minutes'), 'typed._loaded_at') }}
                or typed.received_at_parsed > {{ dbt.dateadd('minute', var('segflow__clock_skew_minutes'), 'typed._loaded_at') }}
                or typed.occurred_at < cast('{{ var('segflow__min_event_date') }}' as {{ dbt.type_timestamp() }})
                then 'implausible_timestamp'
            -- received later after it happened than the allowed lateness (segflow__max_lateness_hours): too late to
            -- merge into sessions that were closed and published long ago; kept here, counted, never merged
            when typed.received_at_parsed > {{ dbt.dateadd('hour', var('segflow__max_lateness_hours'), 'typed.occurred_at') }}
                then 'late_event'
            when typed.anonymous_id is null and typed.user_id is null and typed.email_hash is null
                then 'missing_identity'
            -- a JSON object or array where an id belongs ({"id": "u1"}): staging it would invent a customer
            when {{ looks_like_json('typed.event_id') }} or {{ looks_like_json('typed.user_id') }}
                or {{ looks_like_json('typed.anonymous_id') }} then 'invalid_identifier'
            when (typed.scroll_depth_text is not null and typed.scroll_depth is null)
                or (typed.time_on_page_text is not null and typed.time_on_page_seconds is null)
                or (typed.quantity_text is not null and typed.quantity_as_delivered is null)
                or (typed.price_text is not null and typed.price is null)
                or (typed.revenue_text is not null and typed.revenue_as_delivered is null) then 'invalid_number'
            -- 0.001 of a currency with cents: never rounded to 0.00
            when {{ beyond_minor_unit('typed.price_exact', 'currencies.minor_units') }}
                or {{ beyond_minor_unit('typed.revenue_exact', 'currencies.minor_units') }} then 'price_precision'
            when (event_types.is_order_line or event_types.is_cart_event)
                and typed.quantity_as_delivered <= 0 then 'non_positive_quantity'
            when event_types.is_cart_event and typed.quantity_as_delivered is null then 'non_positive_quantity'
            when typed.price < 0 then 'negative_price'
            when event_types.is_order_line and typed.revenue_as_delivered < 0 then 'negative_revenue'
            when event_types.is_order_line
                and typed.revenue_as_delivered is null and (typed.price is null or typed.quantity_as_delivered is null)
                then 'incomplete_order_line'
            when event_types.is_reversal
                and typed.revenue_as_delivered is null and (typed.price is null or typed.quantity_as_delivered is null)
                then 'incomplete_order_line'
        end as quarantine_reason
    from typed
    left join event_types
        on typed.event_type = event_types.event_type
    left join currencies
        on typed.currency = currencies.currency

),

hashed as (

    select
        classified.*,
        -- what the event says (delivery bookkeeping and received_at left out): equal content = duplicate
        {{ content_fingerprint([
            'event_type', 'event_name', 'anonymous_id', 'user_id', 'email_hash', 'session_hint', 'channel', 'page_url',
            'page_type', 'referrer', 'product_id', 'category', 'currency', 'order_id', 'original_order_id',
            'payment_method', 'feature_name', 'ticket_id', 'campaign_id', 'device_type', 'occurred_at', 'scroll_depth',
            'time_on_page_seconds', 'quantity', 'price', 'revenue'
        ]) }} as content_hash
    from classified

)

select
    {%- for column in kept_columns %}
    hashed.{{ column }},
    {%- endfor %}
    -- the text as delivered, only where typing it failed (for a valid row the typed value says it; the raw row
    -- stays in raw.<_stream> at _source_row)
    {%- for column in text_columns %}
    case when hashed.quarantine_reason is not null then hashed.{{ column }} end as {{ column }}{% if not loop.last %},{% endif %}
    {%- endfor %}
from hashed
