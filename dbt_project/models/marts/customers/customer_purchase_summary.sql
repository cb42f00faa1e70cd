-- One row per analytics-consenting customer with a purchase on or before the calibration end date: the
-- repeat-purchase summary of the buy-till-you-die literature (Fader & Hardie; BTYD's cbs, lifetimes'
-- calibration_and_holdout_data with freq='D'), the input of Pareto/NBD, BG/NBD and Gamma-Gamma models.
--   purchases  = the customer's orders (fct_orders) aggregated to one per customer-day, valued at the sum of
--                that day's gross order revenue. Returns and cancellations are not part of this convention
--                (the models count transactions and their value as bought); net value is customer_value's.
--   calibration = purchase days on or before calibration_end_date (var segflow__clv_calibration_end, null =
--                the observation end); holdout = purchase days after it, up to observation_end_date, the
--                last day before the build's as-of bound (as_of is exclusive).
--   frequency x = calibration purchase days after the first one; recency t_x = days from the first to the
--                last calibration purchase day; T = days from the first purchase day to the calibration end;
--                monetary_value = mean value of the repeat calibration purchase days (0 when x = 0, as
--                lifetimes does: the first purchase is left out).
-- The holdout mean value (monetary_value_holdout) is per purchase day, like every other value here;
-- lifetimes' calibration_and_holdout_data averages raw holdout transactions instead.
with

customers as (

    select * from {{ ref('dim_customers') }}
    where has_analytics_consent

),

orders as (

    select * from {{ ref('fct_orders') }}
    where customer_id is not null

),

run_context as (

    select * from {{ ref('int_run_context') }}

),

observation as (

    select last_date as observation_end_date
    from run_context

),

bounds as (

    select
        observation_end_date,
        {%- if var('segflow__clv_calibration_end') %}
        least(cast('{{ var("segflow__clv_calibration_end") }}' as date), observation_end_date)
        {%- else %}
        observation_end_date
        {%- endif %} as calibration_end_date
    from observation

),

purchase_days as (

    select
        orders.customer_id,
        orders.ordered_date as purchase_date,
        sum(orders.revenue) as purchase_value
    from orders
    inner join customers
        on orders.customer_id = customers.customer_id
    group by orders.customer_id, orders.ordered_date

),

flagged as (

    select
        purchase_days.customer_id,
        purchase_days.purchase_date,
        purchase_days.purchase_value,
        purchase_days.purchase_date <= bounds.calibration_end_date as is_calibration,
        min(purchase_days.purchase_date) over (partition by purchase_days.customer_id) as first_purchase_date
    from purchase_days
    cross join bounds
    where purchase_days.purchase_date <= bounds.observation_end_date

),

calibration as (

    select
        customer_id,
        min(first_purchase_date) as first_purchase_date,
        max(purchase_date) as last_purchase_date,
        count(*) - 1 as frequency,
        sum(case when purchase_date > first_purchase_date then purchase_value else 0 end) as repeat_revenue
    from flagged
    where is_calibration
    group by customer_id

),

holdout as (

    select
        customer_id,
        count(*) as frequency_holdout,
        sum(purchase_value) as holdout_revenue
    from flagged
    where not is_calibration
    group by customer_id

),

summary as (

    select
        calibration.customer_id,
        calibration.frequency,
        cast({{ dbt.datediff('calibration.first_purchase_date', 'calibration.last_purchase_date', 'day') }}
            as integer) as recency_days,
        cast({{ dbt.datediff('calibration.first_purchase_date', 'bounds.calibration_end_date', 'day') }}
            as integer) as t_days,
        calibration.repeat_revenue,
        coalesce(holdout.frequency_holdout, 0) as frequency_holdout,
        coalesce(holdout.holdout_revenue, 0) as holdout_revenue,
        cast({{ dbt.datediff('bounds.calibration_end_date', 'bounds.observation_end_date', 'day') }}
            as integer) as duration_holdout_days,
        calibration.first_purchase_date,
        calibration.last_purchase_date,
        bounds.calibration_end_date,
        bounds.observation_end_date
    from calibration
    cross join bounds
    left join holdout
        on calibration.customer_id = holdout.customer_id

),

final as (

    select
        customer_id,
        cast(frequency as integer) as frequency,
        recency_days,
        t_days,
        cast(recency_days as {{ type_double() }}) / 7 as recency_weeks,
        cast(t_days as {{ type_double() }}) / 7 as t_weeks,
        cast(repeat_revenue as decimal(18, 2)) as repeat_revenue,
        case when frequency > 0 then cast(repeat_revenue as {{ type_double() }}) / frequency else 0 end
            as monetary_value,
        cast(frequency_holdout as integer) as frequency_holdout,
        cast(holdout_revenue as decimal(18, 2)) as holdout_revenue,
        case when frequency_holdout > 0 then cast(holdout_revenue as {{ type_double() }}) / frequency_holdout
            else 0 end as monetary_value_holdout,
        duration_holdout_days,
        first_purchase_date,
        last_purchase_date,
        calibration_end_date,
        observation_end_date
    from summary

)

select * from final
