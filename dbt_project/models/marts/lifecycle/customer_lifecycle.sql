-- One row per customer with analytics consent, signed up before the as-of bound: the lifecycle stage they are
-- in at the end of the build's last day, since when, and the stage before it (customer_lifecycle_history
-- holds every change and the rules).
with

run_context as (

    select last_date as end_date
    from {{ ref('int_run_context') }}

),

current_stage as (

    select * from {{ ref('customer_lifecycle_history') }}
    where is_current

)

select
    current_stage.customer_id,
    current_stage.stage,
    current_stage.previous_stage,
    current_stage.valid_from as stage_since,
    cast({{ dbt.datediff('current_stage.valid_from', 'run_context.end_date', 'day') }} as integer) as days_in_stage,
    current_stage.orders_at_change,
    current_stage.net_revenue_at_change
from current_stage
cross join run_context
