-- One row per session and funnel (funnel_steps seed): how far the session got through the funnel IN ORDER.
-- Step k is reached at the first event of one of its types at or after the time step k-1 was reached in the
-- session (ties count), so a checkout before the first add-to-cart does not count as the checkout step.
-- Every session has a row for every funnel (furthest_step_number 0 when it never entered); runaway sessions
-- (int_sessions_quarantine) are left out, as in fct_sessions.
-- Incremental like fct_sessions: the sessions of persons in int_sessions_reprocess_scope are recomputed.
-- depends_on: {{ ref('int_sessions_reprocess_scope') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_reprocessed('session_started_at') }}",
) }}

{%- set max_steps = funnel_max_steps() %}

with

funnel_steps as (

    select * from {{ ref('funnel_steps') }}

),

events as (

    select
        sessionized.session_id,
        sessionized.customer_id,
        sessionized.person_key,
        sessionized.session_started_at,
        sessionized.occurred_at,
        stitched.channel,
        stitched.event_type
    {{ from_session_events() }}

),

sessions as (

    select
        session_id,
        max(customer_id) as customer_id,
        max(person_key) as person_key,
        min(channel) as channel,
        min(session_started_at) as session_started_at
    from events
    group by session_id

),

funnels as (

    select funnel, max(step_number) as step_count
    from funnel_steps
    group by funnel

),

step_events as materialized (

    -- every event that can reach a funnel step (one event can serve several funnels)
    select
        events.session_id,
        funnel_steps.funnel,
        funnel_steps.step_number,
        events.occurred_at
    from events
    inner join funnel_steps
        on events.event_type = funnel_steps.event_type

),

step_1 as (

    select session_id, funnel, min(occurred_at) as reached_at
    from step_events
    where step_number = 1
    group by session_id, funnel

),
{%- for step in range(2, max_steps + 1) %}

step_{{ step }} as (

    -- step {{ step }}: the first of its events at or after the time step {{ step - 1 }} was reached
    select previous.session_id, previous.funnel, min(step_events.occurred_at) as reached_at
    from step_{{ step - 1 }} as previous
    inner join step_events
        on previous.session_id = step_events.session_id
        and previous.funnel = step_events.funnel
        and step_events.step_number = {{ step }}
        and step_events.occurred_at >= previous.reached_at
    group by previous.session_id, previous.funnel

),
{%- endfor %}

session_funnels as (

    select
        sessions.session_id,
        funnels.funnel,
        sessions.customer_id,
        sessions.person_key,
        sessions.channel,
        funnels.step_count,
        {%- for step in range(1, max_steps + 1) %}
        step_{{ step }}.reached_at as step_{{ step }}_at,
        {%- endfor %}
        sessions.session_started_at
    from sessions
    cross join funnels
    {%- for step in range(1, max_steps + 1) %}
    left join step_{{ step }}
        on sessions.session_id = step_{{ step }}.session_id
        and funnels.funnel = step_{{ step }}.funnel
    {%- endfor %}

),

furthest as (

    select
        *,
        case
            {%- for step in range(max_steps, 0, -1) %}
            when step_{{ step }}_at is not null then {{ step }}
            {%- endfor %}
            else 0
        end as furthest_step_number,
        case step_count
            {%- for step in range(1, max_steps + 1) %}
            when {{ step }} then step_{{ step }}_at
            {%- endfor %}
        end as converted_at
    from session_funnels

),

final as (

    select
        -- varchar as in the contract (PostgreSQL's text would be a schema change to the incremental model)
        cast(session_id as varchar) as session_id,
        cast(funnel as varchar) as funnel,
        cast(customer_id as varchar) as customer_id,
        cast(person_key as varchar) as person_key,
        cast(channel as varchar) as channel,
        cast(step_count as integer) as step_count,
        cast(furthest_step_number as integer) as furthest_step_number,
        {{ seconds_between('step_1_at', 'converted_at') }} as seconds_to_convert,
        customer_id is not null as is_known_customer,
        step_1_at is not null as is_entered,
        converted_at is not null as is_converted,
        cast(session_started_at as date) as session_started_date,
        session_started_at,
        {%- for step in range(1, max_steps + 1) %}
        step_{{ step }}_at{% if not loop.last %},{% endif %}
        {%- endfor %}
    from furthest

)

select * from final
