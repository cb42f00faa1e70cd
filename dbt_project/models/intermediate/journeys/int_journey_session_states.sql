-- One row per session and step of its journey: the session's state path for the Markov chain and the path
-- reports. Step 0 is '(start)'; then one row per run of events in the same state (consecutive repeats
-- collapsed: product, product, product is one visit to 'product'); the path ends in '(conversion)' at the
-- session's first order line (conversion is absorbing: later events are ignored) or else in '(null)' (exit).
-- An event's state is the first non-null of the columns in segflow__journey_state_columns (else '(other)').
-- Runaway sessions (int_sessions_quarantine) are left out, as in fct_sessions.
-- Incremental like fct_sessions: the sessions of persons in int_sessions_reprocess_scope are recomputed.
-- depends_on: {{ ref('int_sessions_reprocess_scope') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_reprocessed('session_started_at') }}",
) }}

with

events as (

    select
        sessionized.session_id,
        sessionized.event_id,
        sessionized.person_key,
        case
            when stitched.is_order_line then '(conversion)'
            else {{ journey_state_expression('stitched') }}
        end as state,
        stitched.is_order_line,
        sessionized.session_started_at,
        sessionized.occurred_at
    {{ from_session_events() }}

),

compared as (

    select
        *,
        lag(state) over in_session as previous_state,
        coalesce(sum(case when is_order_line then 1 else 0 end) over (
            partition by session_id order by occurred_at, event_id
            rows between unbounded preceding and 1 preceding
        ), 0) as earlier_order_lines
    from events
    window in_session as (partition by session_id order by occurred_at, event_id)

),

visits as (

    -- the first event of each run of one state, up to and including the first order line
    select
        session_id,
        person_key,
        state,
        session_started_at,
        row_number() over (partition by session_id order by occurred_at, event_id) as step_index
    from compared
    where earlier_order_lines = 0
        and (previous_state is null or previous_state <> state)

),

sessions as (

    select
        session_id,
        max(person_key) as person_key,
        min(session_started_at) as session_started_at,
        max(step_index) as last_step_index,
        max(case when state = '(conversion)' then 1 else 0 end) = 1 as is_converted
    from visits
    group by session_id

),

paths as (

    select session_id, person_key, cast(0 as bigint) as step_index, '(start)' as state, session_started_at
    from sessions

    union all

    select session_id, person_key, cast(step_index as bigint) as step_index, state, session_started_at
    from visits

    union all

    select session_id, person_key, cast(last_step_index + 1 as bigint) as step_index, '(null)' as state,
        session_started_at
    from sessions
    where not is_converted

),

final as (

    select
        session_id,
        person_key,
        state,
        lead(state) over (partition by session_id order by step_index) as next_state,
        step_index,
        session_started_at
    from paths

)

select * from final
