-- One row per canonical customer: whether analytics and marketing are allowed as of the build. The latest
-- recorded decision (consent stream) wins; else the profile's flags; else the deployment's consent policy
-- (var segflow__consent_default: false = process only customers with recorded consent, true = the
-- deployment's events were collected under consent).
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

    select
        graph.customer_id,
        consent.purpose,
        consent.is_granted,
        row_number() over (
            partition by graph.customer_id, consent.purpose
            order by consent.recorded_at desc, consent._load_id desc, consent._source_row desc
        ) as decision_rank
    from {{ ref('stg_raw__consent') }} as consent
    inner join graph
        on consent.customer_id = graph.user_id
    cross join run_context
    where consent.recorded_at < run_context.as_of

),

latest as (

    select
        customer_id,
        max(case when purpose = 'analytics' then case when is_granted then 1 else 0 end end) as analytics,
        max(case when purpose = 'marketing' then case when is_granted then 1 else 0 end end) as marketing
    from decisions
    where decision_rank = 1
    group by customer_id

),

profiles as (

    select * from {{ ref('int_customer_attributes') }}

),

customers as (

    select distinct customer_id from graph

)

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
