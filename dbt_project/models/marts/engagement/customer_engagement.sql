-- One row per customer with analytics consent and an interactive event before the as-of bound: how often, how recently and how
-- deeply they engage, and an engagement score in [0, 100]. Windowed measures cover the
-- segflow__engagement_window_days days before the as-of; `_total` measures all history.
--   sessions per week / month = sessions in the window / the customer's active tenure in the window, in weeks
--     (months of 30 days), never less than one week (month): tenure runs from the later of the first active
--     day and the window start to the as-of date.
--   recency_score   = 0.5 ^ (days since the last active day / segflow__engagement_recency_half_life_days)
--   frequency_score = sessions per week / (sessions per week + segflow__engagement_frequency_midpoint)
--   depth_score     = items / (items + segflow__engagement_depth_midpoint), items = distinct categories
--                     + distinct page types viewed + distinct app features used in the window
--   engagement_score = 100 x (weights segflow__engagement_weight_* . components); the weights sum to 1.
-- Every component is a fixed function of the customer's own behavior (in [0, 1], no ranking against other
-- customers), so a score means the same from one build to the next.
-- depends_on: {{ ref('int_run_context') }}
{%- set weights = engagement_weights() %}
{%- set window_days = var('segflow__engagement_window_days') | int %}
{%- set as_of = as_of_value() %}
{%- set window_start = "cast(" ~ dbt.dateadd('day', -window_days, as_of) ~ " as date)" %}

with

daily as (

    -- customers with analytics consent only: an engagement score is profiling (like customer_features)
    select daily.*
    from {{ ref('fct_customer_daily_activity') }} as daily
    inner join {{ ref('dim_customers') }} as customers
        on daily.customer_id = customers.customer_id
    where daily.is_active_day
        and customers.has_analytics_consent

),

page_views as (

    select * from {{ ref('fct_page_views') }}
    where customer_id is not null
        and occurred_date >= {{ window_start }}

),

feature_uses as (

    select customer_id, feature_name
    from {{ ref('int_events_stitched') }}
    where customer_id is not null
        and event_type = 'feature_use'
        and occurred_at >= cast({{ window_start }} as {{ dbt.type_timestamp() }})

),

activity as (

    select
        customer_id,
        sum(case when activity_date >= {{ window_start }} then session_count else 0 end) as session_count,
        sum(session_count) as session_count_total,
        sum(case when activity_date >= {{ window_start }} then 1 else 0 end) as active_days,
        count(*) as active_days_total,
        min(activity_date) as first_active_date,
        max(activity_date) as last_active_date
    from daily
    group by customer_id

),

depth as (

    select
        customer_id,
        count(distinct category) as distinct_categories_viewed,
        count(distinct page_type) as distinct_page_types_viewed
    from page_views
    group by customer_id

),

features as (

    select
        customer_id,
        count(*) as feature_use_count,
        count(distinct feature_name) as distinct_features_used
    from feature_uses
    group by customer_id

),

measured as (

    select
        activity.customer_id,
        activity.session_count,
        activity.session_count_total,
        activity.active_days,
        activity.active_days_total,
        coalesce(features.feature_use_count, 0) as feature_use_count,
        coalesce(features.distinct_features_used, 0) as distinct_features_used,
        coalesce(depth.distinct_categories_viewed, 0) as distinct_categories_viewed,
        coalesce(depth.distinct_page_types_viewed, 0) as distinct_page_types_viewed,
        {{ dbt.datediff('activity.last_active_date', 'cast(' ~ as_of ~ ' as date)', 'day') }} as days_since_last_active,
        -- from the later of the first active day and the window start to the as-of date
        {{ dbt.datediff('greatest(activity.first_active_date, ' ~ window_start ~ ')', 'cast(' ~ as_of ~ ' as date)', 'day') }}
            as active_tenure_days,
        activity.first_active_date,
        activity.last_active_date
    from activity
    left join depth
        on activity.customer_id = depth.customer_id
    left join features
        on activity.customer_id = features.customer_id

),

rated as (

    select
        *,
        cast(session_count as {{ type_double() }}) * 7 / greatest(active_tenure_days, 7) as sessions_per_week,
        cast(session_count as {{ type_double() }}) * 30 / greatest(active_tenure_days, 30) as sessions_per_month
    from measured

),

scored as (

    select
        *,
        power(cast(0.5 as {{ type_double() }}),
            cast(days_since_last_active as {{ type_double() }}) / {{ var('segflow__engagement_recency_half_life_days') }})
            as recency_score,
        sessions_per_week / (sessions_per_week + {{ var('segflow__engagement_frequency_midpoint') }}) as frequency_score,
        cast(distinct_categories_viewed + distinct_page_types_viewed + distinct_features_used as {{ type_double() }})
            / (distinct_categories_viewed + distinct_page_types_viewed + distinct_features_used
                + {{ var('segflow__engagement_depth_midpoint') }}) as depth_score
    from rated

),

final as (

    select
        customer_id,
        cast({{ window_days }} as integer) as engagement_window_days,
        cast(active_tenure_days as integer) as active_tenure_days,
        cast(days_since_last_active as integer) as days_since_last_active,
        cast(session_count as bigint) as session_count,
        cast(session_count_total as bigint) as session_count_total,
        cast(active_days as bigint) as active_days,
        cast(active_days_total as bigint) as active_days_total,
        cast(feature_use_count as bigint) as feature_use_count,
        cast(distinct_features_used as bigint) as distinct_features_used,
        cast(distinct_categories_viewed as bigint) as distinct_categories_viewed,
        cast(distinct_page_types_viewed as bigint) as distinct_page_types_viewed,
        cast(sessions_per_week as {{ type_double() }}) as sessions_per_week,
        cast(sessions_per_month as {{ type_double() }}) as sessions_per_month,
        cast(recency_score as {{ type_double() }}) as recency_score,
        cast(frequency_score as {{ type_double() }}) as frequency_score,
        cast(depth_score as {{ type_double() }}) as depth_score,
        cast(100 * ({{ weights.recency }} * recency_score + {{ weights.frequency }} * frequency_score
            + {{ weights.depth }} * depth_score) as {{ type_double() }}) as engagement_score,
        first_active_date,
        last_active_date,
        cast({{ as_of }} as {{ dbt.type_timestamp() }}) as as_of
    from scored

)

select * from final
