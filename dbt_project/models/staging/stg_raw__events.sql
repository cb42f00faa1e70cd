-- One row per event: the first valid delivery of each event_id from every event stream. An event identified
-- only by an e-mail gets the pseudonymous user id 'email:<hash>' (the address itself stays in raw).
with

classified as (

    -- valid rows that are no later delivery of their event_id: the first valid delivery of each
    select base.*
    from {{ ref('base_raw__events') }} as base
    left join {{ ref('base_raw__events_redeliveries') }} as redeliveries
        on base._load_id = redeliveries._load_id
        and base._stream = redeliveries._stream
        and base._source_row = redeliveries._source_row
    where base.quarantine_reason is null
        and redeliveries._load_id is null

)

select
    event_id,
    event_type,
    event_name,
    event_group,
    anonymous_id,
    coalesce(user_id, case when email_hash is not null then {{ dbt.concat(["'email:'", 'email_hash']) }} end)
        as user_id,
    email_hash,
    session_hint,
    channel,
    page_url,
    page_type,
    referrer,
    product_id,
    category,
    order_id,
    original_order_id,
    payment_method,
    feature_name,
    ticket_id,
    campaign_id,
    device_type,
    scroll_depth,
    time_on_page_seconds,
    quantity,
    price,
    revenue,
    currency,
    is_order_line,
    is_reversal,
    occurred_at,
    received_at,
    _stream,
    _load_id,
    _load_seq,
    _source_file,
    _source_row
from classified
