-- int_journey_session_states: every path starts with '(start)' at step 0 and nothing else is '(start)'; steps
-- are numbered without gaps; consecutive states differ (repeats collapsed); the path ends in exactly one
-- absorbing state ('(conversion)' or '(null)'), on its last row.

with

session_states as (

    select * from {{ ref('int_journey_session_states') }}

),

per_session as (

    select
        session_id,
        min(step_index) as first_index,
        max(step_index) as last_index,
        count(*) as steps,
        sum(case when state = '(start)' then 1 else 0 end) as starts,
        sum(case when state in ('(conversion)', '(null)') then 1 else 0 end) as ends,
        max(case when state = '(start)' and step_index <> 0 then 1 else 0 end) as misplaced_start,
        max(case when next_state is null and state not in ('(conversion)', '(null)') then 1 else 0 end)
            as open_end
    from session_states
    group by session_id

)

select session_id, 'malformed path' as problem
from per_session
where first_index <> 0 or last_index + 1 <> steps or starts <> 1 or ends <> 1 or misplaced_start = 1
    or open_end = 1

union all

select session_id, 'repeated state' as problem
from session_states
where state = next_state
