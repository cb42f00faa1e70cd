-- One row per canonical customer: whether analytics and marketing are allowed as of the build. The latest
-- recorded decision (consent stream) wins; else the profile's flags; else the deployment's consent policy
-- (var segflow__consent_default: false = process only customers with recorded consent, true = the
-- deployment's events were collected under consent).
-- A revocation applies backwards: when the latest decision the warehouse knows of - recorded after the as-of
-- too (consent records; else the latest profile version) - withdraws consent, the customer is not processed
-- in this build either, so re-running an earlier interval never brings a revoked customer back
-- (source 'later_revocation'). A grant is never applied backwards.
with

graph as (

    select identifier as user_id, customer_id
    from {{ ref('int_identity_graph') }}
    where identifier_kind = 'user_id'

),

run_context as (

    select * from {{ ref('int_run_context') }}

),

decisions as (

    -- the decisions recorded before the as-of, newest first per customer and purpose
    {{ ranked_consent_decisions('graph', 'run_context') }}

),

latest as (

    {{ latest_consent_decision('decisions') }}

),

known_decisions as (

    -- every recorded decision, whenever it was recorded
    {{ ranked_consent_decisions('graph') }}

),

latest_known as (

    {{ latest_consent_decision('known_decisions') }}

),

known_profiles as (

    -- every delivered profile version, whenever valid: the latest one per customer
    select
        graph.customer_id,
        profiles.has_analytics_consent,
        profiles.has_marketing_consent,
        row_number() over (
            partition by graph.customer_id
            order by coalesce(profiles.updated_at, profiles.signup_at) desc nulls last, profiles._load_seq desc,
                profiles._source_row desc
        ) as version_rank
    from {{ ref('stg_raw__customers') }} as profiles
    inner join graph
        on profiles.customer_id = graph.user_id

),

revoked as (

    -- the latest known decision withdraws consent (a consent record decides; without one, the latest profile)
    select
        customers.customer_id,
        coalesce(latest_known.analytics = 0, known_profiles.has_analytics_consent = false, false)
            as is_analytics_revoked,
        coalesce(latest_known.marketing = 0, known_profiles.has_marketing_consent = false, false)
            as is_marketing_revoked
    from (select distinct customer_id from graph) as customers
    left join latest_known
        on customers.customer_id = latest_known.customer_id
    left join known_profiles
        on customers.customer_id = known_profiles.customer_id
        and known_profiles.version_rank = 1

),

profiles as (

    select * from {{ ref('int_customer_attributes') }}

),

customers as (

    select distinct customer_id from graph

),

as_of_consent as (

    select
        customers.customer_id,
        coalesce(latest.analytics = 1, profiles.has_analytics_consent, {{ var('segflow__consent_default') }})
            as has_analytics_consent,
        coalesce(latest.marketing = 1, profiles.has_marketing_consent, {{ var('segflow__consent_default') }})
            as has_marketing_consent,
        case
            when latest.analytics is not null then 'consent_record'
            when profiles.has_analytics_consent is not null then 'profile'
            else 'policy_default'
        end as analytics_consent_source
    from customers
    left join latest
        on customers.customer_id = latest.customer_id
    left join profiles
        on customers.customer_id = profiles.customer_id

)

select
    as_of_consent.customer_id,
    as_of_consent.has_analytics_consent and not revoked.is_analytics_revoked as has_analytics_consent,
    as_of_consent.has_marketing_consent and not revoked.is_marketing_revoked as has_marketing_consent,
    case
        when as_of_consent.has_analytics_consent and revoked.is_analytics_revoked then 'later_revocation'
        else as_of_consent.analytics_consent_source
    end as analytics_consent_source
from as_of_consent
inner join revoked
    on as_of_consent.customer_id = revoked.customer_id
