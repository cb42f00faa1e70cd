-- Rows that could not be staged, kept with the reason and the text exactly as delivered: rows that fail
-- validation, and later deliveries of an event_id whose content differs from the first (conflicts).
with

classified as (

    select * from {{ ref('base_raw__events') }}
    where delivery_status in ('invalid', 'conflict')

)

select
    _stream,
    _load_id,
    _source_file,
    _source_row,
    case when delivery_status = 'conflict' then 'conflicting_duplicate' else quarantine_reason end
        as quarantine_reason,
    event_id,
    event_type,
    anonymous_id,
    user_id,
    occurred_at_text,
    received_at_text,
    quantity_text,
    price_text,
    revenue_text
from classified
