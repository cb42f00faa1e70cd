-- One row per journey state (not '(start)', '(conversion)' or '(null)'): its removal effect in the
-- first-order Markov chain of journey_markov_transitions. The conversion probability is the probability that a
-- session starting at '(start)' is absorbed in '(conversion)'; removing a state sends every transition into it
-- to exit ('(null)'). removal_effect = 1 - p_removed / p_base; attributed_share normalises the removal
-- effects to sum to 1, and attributed_conversions spreads the observed conversions by that share.
-- Portable absorbing-chain solve: the transition matrix of every scenario (the base chain and one per removed
-- state, all at once) is squared segflow__journey_markov_squarings times, giving the chain after 2^N steps
-- (N = 10: 1024 steps). What is still unabsorbed after that, and the change of the last squaring, are
-- reported so a chain that has not converged is visible (and warned about by a data test).
{%- set squarings = var('segflow__journey_markov_squarings') | int %}
{%- if squarings < 1 %}
    {{ exceptions.raise_compiler_error("segflow__journey_markov_squarings must be at least 1") }}
{%- endif %}
{%- set digits = 9 %}

with

transitions as (

    select * from {{ ref('journey_markov_transitions') }}

),

states as (

    select distinct from_state as state
    from transitions
    where from_state not in ('(start)', '(conversion)', '(null)')

),

scenarios as (

    select cast('(base)' as {{ dbt.type_string() }}) as removed_state
    union all
    select state as removed_state from states

),

chain as (

    -- the observed transitions, and the absorbing states staying where they are
    select from_state, to_state, probability from transitions
    union all
    select '(conversion)', '(conversion)', cast(1 as {{ type_double() }})
    union all
    select '(null)', '(null)', cast(1 as {{ type_double() }})

),

matrix_0 as materialized (

    -- one step of each scenario's chain; in a removal scenario the removed state leads to exit only
    select scenarios.removed_state, chain.from_state, chain.to_state, chain.probability
    from scenarios
    cross join chain
    where chain.from_state <> scenarios.removed_state

    union all

    select removed_state, removed_state, '(null)', cast(1 as {{ type_double() }})
    from scenarios
    where removed_state <> '(base)'

),
{%- for n in range(1, squarings + 1) %}

matrix_{{ n }} as materialized (

    -- {{ 2 ** n }} steps: the {{ 2 ** (n - 1) }}-step matrix squared
    select
        first_half.removed_state,
        first_half.from_state,
        second_half.to_state,
        sum(first_half.probability * second_half.probability) as probability
    from matrix_{{ n - 1 }} as first_half
    inner join matrix_{{ n - 1 }} as second_half
        on first_half.removed_state = second_half.removed_state
        and first_half.to_state = second_half.from_state
    group by first_half.removed_state, first_half.from_state, second_half.to_state

),
{%- endfor %}

absorbed as (

    -- from '(start)' after 2^N steps: absorbed in conversion, and not absorbed yet (in neither absorbing state)
    select
        removed_state,
        sum(case when to_state = '(conversion)' then probability else 0 end) as conversion_probability,
        sum(case when to_state in ('(conversion)', '(null)') then 0 else probability end) as unabsorbed_probability
    from matrix_{{ squarings }}
    where from_state = '(start)'
    group by removed_state

),

previously_absorbed as (

    -- the same after 2^(N-1) steps: the last squaring's change shows how far the chain still moves
    select removed_state, probability as conversion_probability
    from matrix_{{ squarings - 1 }}
    where from_state = '(start)' and to_state = '(conversion)'

),

scenario_results as (

    select
        scenarios.removed_state,
        coalesce(absorbed.conversion_probability, 0) as conversion_probability,
        coalesce(absorbed.unabsorbed_probability, 0) as unabsorbed_probability,
        abs(coalesce(absorbed.conversion_probability, 0) - coalesce(previously_absorbed.conversion_probability, 0))
            as last_squaring_change
    from scenarios
    left join absorbed
        on scenarios.removed_state = absorbed.removed_state
    left join previously_absorbed
        on scenarios.removed_state = previously_absorbed.removed_state

),

visits as (

    select to_state as state, sum(transitions) as visits
    from transitions
    group by to_state

),

conversions as (

    select coalesce(sum(transitions), 0) as conversions
    from transitions
    where to_state = '(conversion)'

),

effects as (

    select
        states.state,
        visits.visits,
        base.conversion_probability as base_conversion_probability,
        removed.conversion_probability as removal_conversion_probability,
        1 - removed.conversion_probability / nullif(base.conversion_probability, 0) as removal_effect,
        case when base.unabsorbed_probability > removed.unabsorbed_probability
            then base.unabsorbed_probability else removed.unabsorbed_probability end as unabsorbed_probability,
        case when base.last_squaring_change > removed.last_squaring_change
            then base.last_squaring_change else removed.last_squaring_change end as last_squaring_change
    from states
    inner join scenario_results as removed
        on states.state = removed.removed_state
    cross join scenario_results as base
    left join visits
        on states.state = visits.state
    where base.removed_state = '(base)'

),

shared as (

    select
        *,
        removal_effect / nullif(sum(removal_effect) over (), 0) as attributed_share
    from effects

),

final as (

    select
        shared.state,
        cast(shared.visits as bigint) as visits,
        {{ round_double('shared.base_conversion_probability', digits) }} as base_conversion_probability,
        {{ round_double('shared.removal_conversion_probability', digits) }} as removal_conversion_probability,
        {{ round_double('shared.removal_effect', digits) }} as removal_effect,
        {{ round_double('shared.attributed_share', digits) }} as attributed_share,
        {{ round_double('shared.attributed_share * conversions.conversions', digits) }} as attributed_conversions,
        {{ round_double('shared.unabsorbed_probability', digits) }} as unabsorbed_probability,
        {{ round_double('shared.last_squaring_change', digits) }} as last_squaring_change
    from shared
    cross join conversions

)

select * from final
