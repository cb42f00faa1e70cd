with

classified as (

    select * from {{ ref('base_raw__events') }}

),

valid as (

    select
        event_id,
        event_type,
        anonymous_id,
        user_id,
        channel,
        page_url,
        page_type,
        product_id,
        category,
        order_id,
        payment_method,
        feature_name,
        ticket_id,
        campaign_id,
        scroll_depth,
        time_on_page_seconds,
        quantity,
        price,
        occurred_at,
        received_at,
        _load_id,
        _source_file,
        _source_row
    from classified
    where quarantine_reason is null

)

select * from valid
