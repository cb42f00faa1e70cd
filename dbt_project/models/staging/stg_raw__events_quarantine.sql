-- Rows that could not be staged, with the reason: rows that fail validation (kept with their text exactly as
-- delivered), and later deliveries of an event_id whose content differs from the first (conflicts).
with

conflicts as (

    select _load_id, _stream, _source_row
    from {{ ref('base_raw__events_redeliveries') }}
    where delivery_status = 'conflict'

),

quarantined as (

    select base.*, conflicts._load_id is not null as is_conflict
    from {{ ref('base_raw__events') }} as base
    left join conflicts
        on base._load_id = conflicts._load_id
        and base._stream = conflicts._stream
        and base._source_row = conflicts._source_row
    where base.quarantine_reason is not null
        or conflicts._load_id is not null

)

select
    _stream,
    _load_id,
    _source_file,
    _source_row,
    case when is_conflict then 'conflicting_duplicate' else quarantine_reason end as quarantine_reason,
    event_id,
    event_type,
    anonymous_id,
    user_id,
    -- as delivered where typing failed; a conflict was valid, so its typed values say what it said
    {%- for column in ['occurred_at', 'received_at', 'quantity', 'price', 'revenue'] %}
    case when is_conflict then cast({{ column }} as {{ dbt.type_string() }}) else {{ column }}_text end
        as {{ column }}_text{% if not loop.last %},{% endif %}
    {%- endfor %}
from quarantined
