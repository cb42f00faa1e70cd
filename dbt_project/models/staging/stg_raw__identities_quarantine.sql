-- Identity statements that cannot be used, with the reason.
select
    _load_id,
    _source_file,
    _source_row,
    quarantine_reason,
    kind,
    user_id,
    anonymous_id,
    previous_id,
    occurred_at_text,
    received_at_text
from {{ ref('base_raw__identities') }}
where quarantine_reason is not null
