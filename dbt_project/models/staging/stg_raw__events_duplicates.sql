-- Later deliveries of an event identical to its first delivery (at-least-once delivery): dropped, counted.
select
    _stream,
    _load_id,
    _source_file,
    _source_row,
    event_id
from {{ ref('base_raw__events_redeliveries') }}
where delivery_status = 'duplicate'
