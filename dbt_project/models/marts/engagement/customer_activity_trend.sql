-- One row per customer of customer_features: how regular and how rising or fading their activity is over the
-- segflow__trend_window_weeks weeks before the as-of (weeks counted back from the as-of date: week 0 is the 7
-- days before it). Features of behavior over time that the cumulative and 28-day columns of customer_features
-- cannot tell apart (a customer active in the first weeks only vs one active every week).
--   observable_weeks  = the window's weeks since signup: ceil(tenure_days / 7), between 1 and the window
--   active_week_share = weeks with an active day (fct_customer_daily_activity.is_active_day) / observable_weeks
--   activity_trend    = (active days in the recent half of the window - in the older half) / their sum, in
--                       [-1, 1]; null without an active day in the window
with

features as (

    select * from {{ ref('customer_features') }}

),

daily as (

    select * from {{ ref('fct_customer_daily_activity') }}
    where is_active_day

),

run_context as (

    select * from {{ ref('int_run_context') }}

),

dated as (

    select
        daily.customer_id,
        -- floor, not a cast: a cast rounds a fractional quotient (DuckDB's / on integers is not integer division)
        cast(floor(({{ dbt.datediff('daily.activity_date', 'run_context.as_of_date', 'day') }} - 1) / 7.0) as integer)
            as weeks_back
    from daily
    cross join run_context
    where daily.activity_date < run_context.as_of_date
        and daily.activity_date >= {{ dbt.dateadd('day', -7 * var('segflow__trend_window_weeks'), 'run_context.as_of_date') }}

),

per_customer as (

    select
        customer_id,
        count(distinct weeks_back) as active_weeks,
        sum(case when weeks_back < {{ var('segflow__trend_window_weeks') }} / 2.0 then 1 else 0 end) as recent_active_days,
        sum(case when weeks_back >= {{ var('segflow__trend_window_weeks') }} / 2.0 then 1 else 0 end) as older_active_days
    from dated
    group by customer_id

),

final as (

    select
        features.customer_id,
        cast(least(greatest(ceil(features.tenure_days / 7.0), 1), {{ var('segflow__trend_window_weeks') }}) as integer)
            as observable_weeks,
        cast(coalesce(per_customer.active_weeks, 0) as integer) as active_weeks,
        cast(coalesce(per_customer.recent_active_days, 0) as integer) as recent_active_days,
        cast(coalesce(per_customer.older_active_days, 0) as integer) as older_active_days,
        cast(least(1.0, coalesce(per_customer.active_weeks, 0)
            / least(greatest(ceil(features.tenure_days / 7.0), 1), {{ var('segflow__trend_window_weeks') }}))
            as {{ type_double() }}) as active_week_share,
        cast(1.0 * (per_customer.recent_active_days - per_customer.older_active_days)
            / nullif(per_customer.recent_active_days + per_customer.older_active_days, 0) as {{ type_double() }})
            as activity_trend,
        features.as_of
    from features
    left join per_customer
        on features.customer_id = per_customer.customer_id

)

select * from final
