-- One row per canonical customer known before the as-of bound: every person the identity graph resolved
-- from events, identity statements or profiles. Profile attributes come from the profile version valid at
-- as_of (NULL for a source without profiles); signup is the profile's, else the first event.
with

graph as (

    select identifier as user_id, customer_id
    from {{ ref('int_identity_graph') }}
    where identifier_kind = 'user_id'

),

profiles as (

    select
        graph.customer_id,
        profiles.email_hash,
        profiles.country,
        profiles.age_band,
        -- merged profiles (one person, several accounts): the earliest signup is the person's
        min(profiles.signup_at) over (partition by graph.customer_id) as signup_at,
        row_number() over (
            partition by graph.customer_id order by profiles.valid_from desc nulls last, profiles.customer_id
        ) as profile_rank
    from {{ ref('int_customer_profiles') }} as profiles
    inner join graph
        on profiles.customer_id = graph.user_id

),

consent as (

    select * from {{ ref('int_customer_consent') }}

),

run_context as (

    select * from {{ ref('int_run_context') }}

),

activity as (

    select
        customer_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at
    from {{ ref('int_events_stitched') }}
    where customer_id is not null
    group by customer_id

),

customers as (

    select distinct customer_id from graph

),

joined as (

    select
        customers.customer_id,
        profiles.email_hash,
        profiles.country,
        profiles.age_band,
        consent.has_marketing_consent,
        consent.has_analytics_consent,
        consent.analytics_consent_source,
        coalesce(profiles.signup_at, activity.first_seen_at) as signup_at,
        profiles.signup_at is not null as has_profile_signup,
        activity.first_seen_at,
        activity.last_seen_at
    from customers
    left join profiles
        on customers.customer_id = profiles.customer_id
        and profiles.profile_rank = 1
    left join consent
        on customers.customer_id = consent.customer_id
    left join activity
        on customers.customer_id = activity.customer_id

)

select
    joined.customer_id,
    joined.email_hash,
    joined.country,
    joined.age_band,
    joined.has_marketing_consent,
    joined.has_analytics_consent,
    joined.analytics_consent_source,
    cast(joined.signup_at as date) as signup_date,
    joined.signup_at,
    joined.has_profile_signup,
    joined.first_seen_at,
    joined.last_seen_at
from joined
cross join run_context
where joined.signup_at < run_context.as_of
