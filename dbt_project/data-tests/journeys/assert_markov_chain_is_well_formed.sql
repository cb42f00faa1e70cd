-- journey_markov_transitions is a Markov chain: the probabilities out of each state sum to 1 (within
-- floating-point error), '(conversion)' and '(null)' are absorbing (nothing leaves them), nothing enters
-- '(start)', and every state with an incoming transition has outgoing ones (no dead end but exit).

with

transitions as (

    select * from {{ ref('journey_markov_transitions') }}

),

sums as (

    select from_state, sum(probability) as total
    from transitions
    group by from_state

),

dead_ends as (

    select distinct transitions.to_state as state
    from transitions
    left join sums
        on transitions.to_state = sums.from_state
    where sums.from_state is null
        and transitions.to_state not in ('(conversion)', '(null)')

)

select from_state as state, 'probabilities do not sum to 1' as problem
from sums
where abs(total - 1) > 0.000000001

union all

select from_state as state, 'leaves an absorbing state or enters (start)' as problem
from transitions
where from_state in ('(conversion)', '(null)') or to_state = '(start)'

union all

select state, 'dead end' as problem
from dead_ends
