-- journey_top_paths: converted sessions never exceed sessions; every session is counted in exactly one path
-- (recounted from int_journey_session_states); journey_path_edges leaving step 1 carry the sessions whose path
-- has a second step (a Sankey diagram's flows are conserved there).

with

paths as (

    select * from {{ ref('journey_top_paths') }}

),

session_states as (

    select * from {{ ref('int_journey_session_states') }}

),

sessions as (

    select
        count(distinct session_id) as sessions,
        count(distinct case when step_index = 2 then session_id end) as with_second_step
    from session_states

),

edges as (

    select coalesce(sum(sessions), 0) as leaving_step_1
    from {{ ref('journey_path_edges') }}
    where step_index = 1

)

select path as problem
from paths
where converted_sessions > sessions

union all

select 'sessions counted in paths differ from sessions' as problem
from sessions
cross join (select sum(sessions) as counted from paths) as counted
where counted.counted <> sessions.sessions

union all

select 'edges leaving step 1 differ from sessions with a second step' as problem
from sessions
cross join edges
where {{ journey_path_steps() }} > 1 and edges.leaving_step_1 <> sessions.with_second_step
