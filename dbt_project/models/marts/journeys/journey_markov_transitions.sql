-- One row per pair of journey states (from_state -> to_state) observed in sessions: the first-order Markov
-- chain of session journeys (int_journey_session_states). States: '(start)', the event states named by
-- segflow__journey_state_columns (consecutive repeats collapsed), and the absorbing '(conversion)' and
-- '(null)' (exit); absorbing states have no outgoing rows. probability = transitions / all transitions out
-- of from_state, so the probabilities of one from_state sum to 1.

with

session_states as (

    select * from {{ ref('int_journey_session_states') }}

),

counted as (

    select
        state as from_state,
        next_state as to_state,
        count(*) as transitions
    from session_states
    where next_state is not null
    group by state, next_state

),

final as (

    select
        from_state,
        to_state,
        cast(transitions as bigint) as transitions,
        cast(transitions as {{ type_double() }}) / sum(transitions) over (partition by from_state) as probability
    from counted

)

select * from final
