-- One row per day (session start, UTC) x funnel x step x channel x known/anonymous visitor x customer segment,
-- for every group where at least one session entered the funnel: how many sessions reached the step in order,
-- conversion from the previous step and from step 1, drop-off, and the time taken to reach the step.
-- A table: it re-aggregates fct_funnel_sessions (already incremental) and is small.
-- customer_segment: the customer's current segment from the weekly segmentation (int_customer_segments).
{%- set max_steps = funnel_max_steps() %}

with

funnel_sessions as (

    select * from {{ ref('fct_funnel_sessions') }}
    where is_entered

),

funnel_steps as (

    select funnel, step_number, min(step_name) as step_name
    from {{ ref('funnel_steps') }}
    group by funnel, step_number

),

session_segments as (

    -- the customer's current segment (int_customer_segments: the latest accepted segmentation run before this
    -- build's as-of); '(anonymous)' for sessions of unidentified visitors, '(unsegmented)' for customers the
    -- segmentation has not assigned (no run yet, or no analytics consent)
    select
        funnel_sessions.*,
        case
            when funnel_sessions.customer_id is null then '(anonymous)'
            else coalesce(segments.segment_name, '(unsegmented)')
        end as customer_segment
    from funnel_sessions
    left join {{ ref('int_customer_segments') }} as segments
        on funnel_sessions.customer_id = segments.customer_id

),

session_steps as (

    -- one row per entered session and step of its funnel, with when the step was reached in order (if it was)
    select
        sessions.session_id,
        sessions.funnel,
        funnel_steps.step_number,
        funnel_steps.step_name,
        sessions.channel,
        sessions.customer_segment,
        sessions.is_known_customer,
        sessions.session_started_date,
        sessions.step_1_at as entered_at,
        case funnel_steps.step_number
            {%- for step in range(2, max_steps + 1) %}
            when {{ step }} then sessions.step_{{ step - 1 }}_at
            {%- endfor %}
            else sessions.step_1_at
        end as previous_reached_at,
        case funnel_steps.step_number
            {%- for step in range(1, max_steps + 1) %}
            when {{ step }} then sessions.step_{{ step }}_at
            {%- endfor %}
        end as reached_at
    from session_segments as sessions
    inner join funnel_steps
        on sessions.funnel = funnel_steps.funnel

),

timed as (

    select
        *,
        {{ seconds_between('entered_at', 'reached_at') }} as seconds_from_first_step,
        {{ seconds_between('previous_reached_at', 'reached_at') }} as seconds_from_previous_step
    from session_steps

),

aggregated as (

    select
        session_started_date,
        funnel,
        step_number,
        step_name,
        channel,
        is_known_customer,
        customer_segment,
        count(*) as sessions_entered,
        sum(case when previous_reached_at is not null then 1 else 0 end) as sessions_reached_previous,
        sum(case when reached_at is not null then 1 else 0 end) as sessions_reached,
        avg(seconds_from_first_step) as avg_seconds_from_first_step,
        percentile_cont(0.5) within group (order by seconds_from_first_step)
            as median_seconds_from_first_step,
        percentile_cont(0.5) within group (order by seconds_from_previous_step)
            as median_seconds_from_previous_step
    from timed
    group by session_started_date, funnel, step_number, step_name, channel, is_known_customer, customer_segment

),

final as (

    select
        funnel,
        step_name,
        channel,
        customer_segment,
        step_number,
        cast(sessions_entered as bigint) as sessions_entered,
        cast(sessions_reached_previous as bigint) as sessions_reached_previous,
        cast(sessions_reached as bigint) as sessions_reached,
        cast(sessions_reached_previous - sessions_reached as bigint) as drop_off_sessions,
        cast(sessions_reached as {{ type_double() }}) / nullif(sessions_reached_previous, 0)
            as conversion_from_previous_step,
        cast(sessions_reached as {{ type_double() }}) / sessions_entered as conversion_from_first_step,
        avg_seconds_from_first_step,
        cast(median_seconds_from_first_step as {{ type_double() }}) as median_seconds_from_first_step,
        cast(median_seconds_from_previous_step as {{ type_double() }}) as median_seconds_from_previous_step,
        is_known_customer,
        session_started_date
    from aggregated

)

select * from final
