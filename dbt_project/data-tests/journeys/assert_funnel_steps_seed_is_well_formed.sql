-- The funnel_steps seed describes valid funnels: steps numbered 1..n without gaps and at most
-- funnel_max_steps(); one name per step; an event type listed once per step; no event type on two
-- consecutive steps (one event would reach both). Returns one row per problem.

with

steps as (

    select * from {{ ref('funnel_steps') }}

),

per_step as (

    select funnel, step_number, count(distinct step_name) as names, count(*) as type_rows,
        count(distinct event_type) as types
    from steps
    group by funnel, step_number

),

per_funnel as (

    select funnel, min(step_number) as first_step, max(step_number) as last_step, count(*) as step_count
    from per_step
    group by funnel

)

select funnel, 'steps not numbered 1..n, or more than {{ funnel_max_steps() }}' as problem
from per_funnel
where first_step <> 1 or last_step <> step_count or last_step > {{ funnel_max_steps() }}

union all

select funnel, 'a step with several names or a repeated event type' as problem
from per_step
where names <> 1 or types <> type_rows

union all

select this_step.funnel, 'an event type on two consecutive steps' as problem
from steps as this_step
inner join steps as next_step
    on this_step.funnel = next_step.funnel
    and this_step.step_number + 1 = next_step.step_number
    and this_step.event_type = next_step.event_type
