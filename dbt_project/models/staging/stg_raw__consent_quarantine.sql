-- Consent rows that cannot be used, with the reason and the delivered text.
select
    _load_id,
    _source_file,
    _source_row,
    quarantine_reason,
    customer_id,
    purpose,
    granted_text,
    recorded_at_text
from {{ ref('base_raw__consent') }}
where quarantine_reason is not null
