-- Types every raw event column and decides, per row, whether it can be staged or must be quarantined.
with

source as (

    select * from {{ source('raw', 'events') }}

),

event_types as (

    select * from {{ ref('event_types') }}

),

typed as (

    select
        {{ clean_text('source.event_id') }} as event_id,
        lower({{ clean_text('source.event_type') }}) as event_type,
        {{ clean_text('source.anonymous_id') }} as anonymous_id,
        {{ clean_text('source.user_id') }} as user_id,
        lower({{ clean_text('source.channel') }}) as channel,
        {{ clean_text('source.page_url') }} as page_url,
        {{ clean_text('source.page_type') }} as page_type,
        {{ clean_text('source.product_id') }} as product_id,
        {{ clean_text('source.category') }} as category,
        {{ clean_text('source.order_id') }} as order_id,
        {{ clean_text('source.payment_method') }} as payment_method,
        {{ clean_text('source.feature_name') }} as feature_name,
        {{ clean_text('source.ticket_id') }} as ticket_id,
        {{ clean_text('source.campaign_id') }} as campaign_id,
        {{ try_cast(clean_text('source.scroll_depth'), 'integer') }} as scroll_depth,
        {{ try_cast(clean_text('source.time_on_page_s'), 'double') }} as time_on_page_seconds,
        {{ try_cast(clean_text('source.quantity'), 'integer') }} as quantity,
        {{ try_cast(clean_text('source.price'), 'decimal(18, 2)') }} as price,
        {{ parse_utc_timestamp(clean_text('source.occurred_at')) }} as occurred_at,
        {{ parse_utc_timestamp(clean_text('source.received_at')) }} as received_at,
        {{ clean_text('source.occurred_at') }} as occurred_at_text,
        {{ clean_text('source.received_at') }} as received_at_text,
        {{ clean_text('source.scroll_depth') }} as scroll_depth_text,
        {{ clean_text('source.time_on_page_s') }} as time_on_page_text,
        {{ clean_text('source.quantity') }} as quantity_text,
        {{ clean_text('source.price') }} as price_text,
        source._load_id,
        source._source_file,
        source._source_row
    from source

),

classified as (

    select
        typed.*,
        case
            when typed.event_id is null then 'missing_event_id'
            when event_types.event_type is null then 'unknown_event_type'
            when typed.occurred_at is null or typed.received_at is null then 'invalid_timestamp'
            when typed.anonymous_id is null and typed.user_id is null then 'missing_identity'
            when (typed.scroll_depth_text is not null and typed.scroll_depth is null)
                or (typed.time_on_page_text is not null and typed.time_on_page_seconds is null)
                or (typed.quantity_text is not null and typed.quantity is null)
                or (typed.price_text is not null and typed.price is null) then 'invalid_number'
            when (event_types.is_order_line or event_types.is_cart_event)
                and (typed.quantity is null or typed.quantity <= 0) then 'non_positive_quantity'
            when typed.price < 0 then 'negative_price'
            when event_types.is_order_line and (typed.order_id is null or typed.price is null)
                then 'incomplete_order_line'
        end as quarantine_reason
    from typed
    left join event_types
        on typed.event_type = event_types.event_type

)

select * from classified
