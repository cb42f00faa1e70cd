-- One row per later valid delivery of an event_id: every valid row of base_raw__events that is not the first
-- valid delivery of its event_id. Deliveries are ordered by delivery (the load manifest's sequence, then the
-- row in the file), never by a timestamp inside the data: the first is the event; a later identical one is a
-- duplicate; a later one with different content is a conflict (quarantined, never silently applied).
-- Only event ids delivered more than once are ranked (about 1% of them), so the sort stays small.
-- Incremental by load: the new loads' deliveries are ranked after the earlier deliveries of the same event ids,
-- so a verdict, once given, never changes (a replaced or removed load makes the next build a full refresh).
{{ config(materialized='incremental', incremental_strategy='append') }}

with

valid as (

    select event_id, _stream, _load_id, _source_file, _source_row, _load_seq, content_hash
    from {{ ref('base_raw__events') }}
    where quarantine_reason is null

),

{% if is_incremental() %}
{%- set since = segflow_since() %}
ranked_ids as (

    -- the event ids that the new loads deliver: their deliveries, old and new, are ranked together
    select distinct event_id from valid where _load_seq > {{ since.load_seq | int }}

),
{% else %}
ranked_ids as (

    -- the event ids delivered more than once (usually a small share): only those need ranking
    select event_id from valid group by event_id having count(*) > 1

),
{% endif %}

candidates as (

    select valid.*
    from valid
    inner join ranked_ids
        on valid.event_id = ranked_ids.event_id

),

ranked as (

    select
        candidates.*,
        row_number() over deliveries as delivery_rank,
        first_value(content_hash) over deliveries as first_content_hash
    from candidates
    window deliveries as (
        partition by event_id
        order by _load_seq, _load_id, _source_row
        rows between unbounded preceding and unbounded following
    )

)

select
    event_id,
    _stream,
    _load_id,
    _source_file,
    _source_row,
    _load_seq,
    delivery_rank,
    case when content_hash = first_content_hash then 'duplicate' else 'conflict' end as delivery_status
from ranked
where delivery_rank > 1
{%- if is_incremental() %}
    and _load_seq > {{ since.load_seq | int }}
{%- endif %}
