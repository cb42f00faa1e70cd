-- One row per interactive event, with its session. A gap strictly greater than
-- segflow__session_timeout_minutes since the person's previous event starts a new session.
-- Narrow on purpose (the event -> session map): what the event says stays in int_events_stitched, and the
-- session marts join it by event_id; at 10M events every carried column cost about half a second to write.
-- Incremental: the events of each person in int_sessions_reprocess_scope from its reprocess_from on are
-- removed and sessionized again; everything else keeps its rows (and so its session ids).
-- Only anonymous persons and customers with analytics consent (macro analyzable); a customer whose consent
-- changed is in the scope with their whole history.
-- depends_on: {{ ref('int_sessions_reprocess_scope') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_reprocessed('occurred_at') }}",
) }}

with

events as (

    select
        stitched.event_id,
        stitched.customer_id,
        stitched.person_key,
        stitched.occurred_at
    from {{ ref('int_events_stitched') }} as stitched
    {{ join_reprocess_scope('stitched') }}
    where stitched.is_interactive
        -- consent: customers who may not be analyzed have no sessions (and so no rows in the session facts)
        and {{ analyzable('stitched.customer_id') }}

),

flagged as (

    select
        *,
        coalesce(
            occurred_at > {{ dbt.dateadd(
                'minute', var('segflow__session_timeout_minutes'),
                'lag(occurred_at) over (partition by person_key order by occurred_at, event_id)') }},
            true
        ) as is_session_start
    from events

),

sessions as (

    -- a session is named after its person and its first event, never after its position in the person's
    -- history: a late event earlier in that history does not rename the sessions after it
    {{ session_first_values('flagged') }}

)

select
    {{ surrogate_key(['person_key', 'first_event_id']) }} as session_id,
    event_id,
    customer_id,
    person_key,
    is_session_start,
    session_started_at,
    occurred_at,
    {{ build_seq_literal() }} as _build_seq
from sessions
