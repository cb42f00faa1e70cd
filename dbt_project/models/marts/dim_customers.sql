with

customer_versions as (

    select * from {{ ref('stg_raw__customers') }}

),

customers as (

    -- the latest delivered version of each profile (files are named by day, rows in delivery order)
    select *
    from (
        select
            *,
            row_number() over (
                partition by customer_id order by _source_file desc, _source_row desc
            ) as version_rank
        from customer_versions
    ) as ranked
    where version_rank = 1

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
        customers.email_hash,
        customers.country,
        customers.age_band,
        customers.has_marketing_consent,
        customers.has_analytics_consent,
        customers.signup_at,
        activity.first_seen_at,
        activity.last_seen_at
    from customers
    cross join run_context
    left join activity
        on customers.customer_id = activity.customer_id
    where customers.signup_at < run_context.as_of

)

select
    customer_id,
    email_hash,
    country,
    age_band,
    has_marketing_consent,
    has_analytics_consent,
    cast(signup_at as date) as signup_date,
    signup_at,
    first_seen_at,
    last_seen_at
from joined
