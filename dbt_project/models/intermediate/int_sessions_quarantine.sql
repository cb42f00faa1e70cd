-- One row per runaway session: longer than segflow__max_session_hours from first to last event (a bot, a
-- stuck tracker, a kiosk that never goes idle). Quarantined with a reason, kept out of fct_sessions.
-- Incremental like int_events_sessionized: the sessions of persons in scope are recomputed.
-- depends_on: {{ ref('int_sessions_reprocess_scope') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_reprocessed('started_at') }}",
) }}

with

events as (

    select sessionized.*
    from {{ ref('int_events_sessionized') }} as sessionized
    {{ join_reprocess_scope('sessionized') }}

),

sessions as (

    select
        session_id,
        max(person_key) as person_key,
        count(*) as event_count,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at
    from events
    group by session_id

)

select
    session_id,
    person_key,
    event_count,
    started_at,
    ended_at,
    'runaway_session' as quarantine_reason
from sessions
where {{ dbt.datediff('started_at', 'ended_at', 'minute') }} > {{ var('segflow__max_session_hours') }} * 60
