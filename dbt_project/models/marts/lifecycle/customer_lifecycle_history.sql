-- One row per customer and lifecycle stage spell: the stage a customer entered on valid_from and held until
-- valid_to (exclusive; null while current), so transitions can be counted (previous_stage -> stage).
-- Customers with analytics consent only. Stages and their rules (thresholds are vars, see dbt_project.yml):
--   prospect     no order yet (recency does not apply: a prospect who never bought cannot churn)
--   churned      a buyer inactive (no interactive event, no order) for more than lifecycle_churned_days
--   at_risk      a buyer inactive for more than lifecycle_at_risk_days
--   reactivated  a buyer active again after a churned gap, for lifecycle_reactivated_days from the return
--   loyal        net revenue to date (orders minus returns) at least lifecycle_loyal_net_revenue
--   new          fewer than lifecycle_new_max_orders orders and less than lifecycle_new_days since the first
--   active       any other buyer
-- The first rule that holds wins, in this order. Stages are evaluated at the end of each day, and can only
-- change on a day with activity or on the day a recency threshold or a new/reactivated window runs out, so only
-- those candidate days are evaluated.
{%- set at_risk_days = var('segflow__lifecycle_at_risk_days') | int %}
{%- set churned_days = var('segflow__lifecycle_churned_days') | int %}
{%- set reactivated_days = var('segflow__lifecycle_reactivated_days') | int %}
{%- set new_days = var('segflow__lifecycle_new_days') | int %}
{%- set new_max_orders = var('segflow__lifecycle_new_max_orders') | int %}
{%- set loyal_net_revenue = var('segflow__lifecycle_loyal_net_revenue') | float %}

with

run_context as (

    -- the last day the build sees in full or in part: as_of is an exclusive bound
    select last_date as end_date
    from {{ ref('int_run_context') }}

),

customers as (

    select customer_id, signup_date
    from {{ ref('dim_customers') }}
    where has_analytics_consent

),

days as (

    -- the customer's days with activity, orders or returns (returns charged as int_returns_charged says)
    select
        daily.customer_id,
        daily.activity_date,
        daily.order_count,
        daily.gross_revenue,
        daily.reversed_revenue as returned_revenue,
        daily.is_active_day or daily.order_count > 0 as is_active
    from {{ ref('fct_customer_daily_activity') }} as daily
    inner join customers
        on daily.customer_id = customers.customer_id

),

active_days as (

    select
        customer_id,
        activity_date,
        lag(activity_date) over (partition by customer_id order by activity_date) as previous_active_date,
        lead(activity_date) over (partition by customer_id order by activity_date) as next_active_date,
        coalesce(sum(order_count) over (
            partition by customer_id order by activity_date rows between unbounded preceding and 1 preceding
        ), 0) as orders_before
    from days
    where is_active

),

returns_from_churn as (

    -- a buyer's first active day after a gap longer than the churn threshold
    select customer_id, activity_date as returned_date
    from active_days
    where orders_before > 0
        and {{ dbt.datediff('previous_active_date', 'activity_date', 'day') }} > {{ churned_days }}

),

first_orders as (

    select customer_id, min(activity_date) as first_order_date
    from days
    where order_count > 0
    group by customer_id

),

candidates as (

    select customer_id, signup_date as stage_date from customers
    union
    select customer_id, activity_date from days
    union
    -- thresholds running out after an active day, unless the next active day comes first
    {%- for offset in [at_risk_days + 1, churned_days + 1] %}
    select customer_id, cast({{ dbt.dateadd('day', offset, 'activity_date') }} as date)
    from active_days
    where next_active_date is null
        or next_active_date > cast({{ dbt.dateadd('day', offset, 'activity_date') }} as date)
    union
    {%- endfor %}
    select customer_id, cast({{ dbt.dateadd('day', new_days, 'first_order_date') }} as date) from first_orders
    union
    select customer_id, cast({{ dbt.dateadd('day', reactivated_days, 'returned_date') }} as date)
    from returns_from_churn

),

evaluated as (

    select
        candidates.customer_id,
        candidates.stage_date,
        sum(coalesce(days.order_count, 0)) over running as orders_to_date,
        sum(coalesce(days.gross_revenue, 0) - coalesce(days.returned_revenue, 0)) over running
            as net_revenue_to_date,
        max(case when days.is_active then days.activity_date end) over running as last_active_date,
        min(case when days.order_count > 0 then days.activity_date end) over running as first_order_date,
        max(returns_from_churn.returned_date) over running as last_returned_date
    from candidates
    cross join run_context
    left join days
        on candidates.customer_id = days.customer_id
        and candidates.stage_date = days.activity_date
    left join returns_from_churn
        on candidates.customer_id = returns_from_churn.customer_id
        and candidates.stage_date = returns_from_churn.returned_date
    where candidates.stage_date <= run_context.end_date
    window running as (
        partition by candidates.customer_id order by candidates.stage_date
        rows between unbounded preceding and current row
    )

),

staged as (

    select
        customer_id,
        stage_date,
        orders_to_date,
        net_revenue_to_date,
        case
            when orders_to_date = 0 then 'prospect'
            when {{ dbt.datediff('last_active_date', 'stage_date', 'day') }} > {{ churned_days }} then 'churned'
            when {{ dbt.datediff('last_active_date', 'stage_date', 'day') }} > {{ at_risk_days }} then 'at_risk'
            when last_returned_date is not null
                and {{ dbt.datediff('last_returned_date', 'stage_date', 'day') }} < {{ reactivated_days }}
                then 'reactivated'
            when net_revenue_to_date >= {{ loyal_net_revenue }} then 'loyal'
            when orders_to_date < {{ new_max_orders }}
                and {{ dbt.datediff('first_order_date', 'stage_date', 'day') }} < {{ new_days }} then 'new'
            else 'active'
        end as stage
    from evaluated

),

changes as (

    select
        staged.*,
        lag(stage) over (partition by customer_id order by stage_date) as previous_stage
    from staged

)

select
    changes.customer_id,
    changes.stage,
    changes.previous_stage,
    changes.stage_date as valid_from,
    lead(changes.stage_date) over (partition by changes.customer_id order by changes.stage_date) as valid_to,
    lead(changes.stage_date) over (partition by changes.customer_id order by changes.stage_date) is null
        as is_current,
    cast(changes.orders_to_date as integer) as orders_at_change,
    cast(changes.net_revenue_to_date as decimal(18, 2)) as net_revenue_at_change
from changes
where changes.previous_stage is null
    or changes.previous_stage <> changes.stage
