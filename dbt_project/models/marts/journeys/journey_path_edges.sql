-- One row per step position and pair of states among the first segflow__journey_path_steps steps of the
-- session paths: the links of a Sankey diagram of journey_top_paths (node = state at a step position, link =
-- sessions going from source_state at step_index to target_state at step_index + 1). '(start)' is left out;
-- a path's last link may end in '(conversion)' or '(null)'.
{%- set steps = journey_path_steps() %}

with

session_states as (

    select * from {{ ref('int_journey_session_states') }}

),

final as (

    select
        state as source_state,
        next_state as target_state,
        cast(step_index as integer) as step_index,
        cast(count(*) as bigint) as sessions
    from session_states
    where step_index between 1 and {{ steps - 1 }}
        and next_state is not null
    group by step_index, state, next_state

)

select * from final
