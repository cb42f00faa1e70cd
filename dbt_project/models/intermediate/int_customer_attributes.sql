-- One row per canonical customer that has at least one profile: the profile attributes valid at as_of.
-- A person with several merged accounts takes the latest profile's attributes and consent flags, and the
-- earliest signup of them all.
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
        profiles.has_analytics_consent,
        profiles.has_marketing_consent,
        min(profiles.signup_at) over (partition by graph.customer_id) as signup_at,
        row_number() over (
            partition by graph.customer_id order by profiles.valid_from desc nulls last, profiles.customer_id
        ) as profile_rank
    from {{ ref('int_customer_profiles') }} as profiles
    inner join graph
        on profiles.customer_id = graph.user_id

)

select
    customer_id,
    email_hash,
    country,
    age_band,
    has_analytics_consent,
    has_marketing_consent,
    signup_at
from profiles
where profile_rank = 1
