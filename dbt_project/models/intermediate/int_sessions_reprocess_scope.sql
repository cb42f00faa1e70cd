-- One row per person whose sessions this build recomputes, with the time from which it recomputes them.
-- The session is the unit of reprocessing: a changed event (new, late, or re-attributed to another person)
-- at time t can only join, split or extend the person's sessions that end at or after t - timeout, so the
-- person is recomputed from the start of the earliest such session (or t when none). Sessions before that
-- keep their rows and their ids. A customer whose analytics consent changed since the last successful build
-- (int_customer_consent_changes) is recomputed whole. Empty in a full build (everything is computed).
-- Reads the sessionized events as the last successful build left them (not a ref: this model runs first).
-- depends_on: {{ ref('int_events_stitched') }}
-- depends_on: {{ ref('int_customer_consent_changes') }}
{{ config(materialized='table') }}

{%- set stored = segflow_reprocessing('int_events_sessionized') %}

{% if stored is none %}

select
    cast(null as {{ dbt.type_string() }}) as person_key,
    cast(null as {{ dbt.type_timestamp() }}) as reprocess_from
where 1 = 0

{% else %}
{%- set since = segflow_since() %}

with

changed as (

    -- where the events written by builds since the last successful one now sit
    select event_id, person_key, occurred_at
    from {{ ref('int_events_stitched') }}
    where _build_seq > {{ since.build_seq | int }}
        and is_interactive

),

moved_from as (

    -- where the same events sat before (a re-attributed event leaves a gap in its former person's sessions)
    select stored.person_key, stored.occurred_at
    from {{ stored }} as stored
    inner join changed
        on stored.event_id = changed.event_id
    where stored.person_key <> changed.person_key

),

touched as (

    select person_key, min(occurred_at) as changed_from
    from (
        select person_key, occurred_at from changed
        union all
        select person_key, occurred_at from moved_from
        union all
        -- a customer whose consent changed: the whole history (revoked: removed; granted: written)
        select customer_id as person_key, {{ timestamp_literal('1900-01-01 00:00:00') }} as occurred_at
        from ({{ consent_changed_customers() }}) as consent_changed
    ) as touches
    group by person_key

),

stored_sessions as (

    select stored.person_key, stored.session_id, min(stored.occurred_at) as started_at,
        max(stored.occurred_at) as ended_at
    from {{ stored }} as stored
    inner join touched
        on stored.person_key = touched.person_key
    group by stored.person_key, stored.session_id

)

select
    touched.person_key,
    coalesce(least(touched.changed_from, min(stored_sessions.started_at)), touched.changed_from) as reprocess_from
from touched
left join stored_sessions
    on stored_sessions.person_key = touched.person_key
    and stored_sessions.ended_at >= {{ dbt.dateadd('minute', -1 * var('segflow__session_timeout_minutes'),
                                                    'touched.changed_from') }}
group by touched.person_key, touched.changed_from

{% endif %}
