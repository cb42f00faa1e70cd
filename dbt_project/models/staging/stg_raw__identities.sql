-- One row per valid identity statement: identify links a user to a device and/or e-mail; alias links a
-- previous id (an earlier user id or an anonymous id) to a user.
select
    identity_id,
    kind,
    user_id,
    anonymous_id,
    previous_id,
    email_hash,
    occurred_at,
    received_at,
    _load_id,
    _source_file,
    _source_row
from {{ ref('base_raw__identities') }}
where quarantine_reason is null
