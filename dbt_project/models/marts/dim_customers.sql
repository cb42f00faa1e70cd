-- One row per canonical customer known before the as-of bound: every person the identity graph resolved from
-- events, identity statements or profiles (int_customer_consent has one row each). Profile attributes come
-- from the profile version valid at as_of (NULL for a source without profiles); signup is the earliest
-- profile's, else the first event.
with

profiles as (

    select * from {{ ref('int_customer_attributes') }}

),

customers as (

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

joined as (

    select
        customers.customer_id,
        profiles.email_hash,
        profiles.country,
        profiles.age_band,
        customers.has_marketing_consent,
        customers.has_analytics_consent,
        customers.analytics_consent_source,
        coalesce(profiles.signup_at, activity.first_seen_at) as signup_at,
        profiles.signup_at is not null as has_profile_signup,
        activity.first_seen_at,
        activity.last_seen_at
    from customers
    left join profiles
        on customers.customer_id = profiles.customer_id
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
