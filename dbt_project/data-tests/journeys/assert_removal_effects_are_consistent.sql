-- journey_removal_effects: removing a state never raises conversion; one base probability for all rows; the
-- attributed shares sum to 1 and the attributed conversions to the conversions of the chain (when any state
-- has an effect). Tolerance 1e-6: the published values are rounded to 9 decimals.

with

effects as (

    select * from {{ ref('journey_removal_effects') }}

),

conversions as (

    select coalesce(sum(transitions), 0) as conversions
    from {{ ref('journey_markov_transitions') }}
    where to_state = '(conversion)'

),

totals as (

    select
        sum(attributed_share) as shares,
        sum(attributed_conversions) as attributed,
        max(base_conversion_probability) - min(base_conversion_probability) as base_spread,
        sum(removal_effect) as effects
    from effects

)

select state, 'removal raises conversion' as problem
from effects
where removal_conversion_probability > base_conversion_probability + 0.000001

union all

select 'all', 'base probability differs, or shares / conversions do not add up' as problem
from totals
cross join conversions
where totals.base_spread > 0.000001
    or (totals.effects > 0 and (abs(totals.shares - 1) > 0.000001
        or abs(totals.attributed - conversions.conversions) > 0.000001 * conversions.conversions))
