-- One row per canonical customer known before the as-of bound: every person the identity graph resolved from
-- events, identity statements or profiles (int_customer_consent has one row each). Profile attributes come
-- from the profile version valid at as_of (NULL for a source without profiles); signup is the earliest
-- profile's, else the first event. A customer who may not be analyzed keeps only the id and the consent flags:
-- the register the other marts filter on (and a suppression list), without profile or activity.
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
    case when joined.has_analytics_consent then joined.email_hash end as email_hash,
    case when joined.has_analytics_consent then joined.country end as country,
    case when joined.has_analytics_consent then joined.age_band end as age_band,
    joined.has_marketing_consent,
    joined.has_analytics_consent,
    joined.analytics_consent_source,
    case when joined.has_analytics_consent then cast(joined.signup_at as date) end as signup_date,
    case when joined.has_analytics_consent then joined.signup_at end as signup_at,
    case when joined.has_analytics_consent then joined.has_profile_signup end as has_profile_signup,
    case when joined.has_analytics_consent then joined.first_seen_at end as first_seen_at,
    case when joined.has_analytics_consent then joined.last_seen_at end as last_seen_at
from joined
cross join run_context
where joined.signup_at < run_context.as_of
