-- One row per valid consent decision (purpose analytics or marketing).
select
    customer_id,
    purpose,
    is_granted,
    recorded_at,
    _load_id,
    _source_file,
    _source_row
from {{ ref('base_raw__consent') }}
where quarantine_reason is null
