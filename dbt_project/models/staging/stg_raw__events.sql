-- One row per event: the first valid delivery of each event_id from every event stream. An event identified
-- only by an e-mail gets the pseudonymous user id 'email:<hash>' (the address itself stays in raw).
with

classified as (

    select * from {{ ref('base_raw__events') }}
    where delivery_status = 'first'

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
