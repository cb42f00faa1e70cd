-- agg_funnel_daily: one row per day x funnel x step x channel x visitor x segment; within one such group the
-- sessions reaching a step never exceed those reaching the step before; the previous-step count is the
-- previous row's, and step 1 is reached by every entered session.

with

daily as (

    select * from {{ ref('agg_funnel_daily') }}

),

duplicated as (

    select session_started_date, funnel, step_number, channel, is_known_customer, customer_segment
    from daily
    group by session_started_date, funnel, step_number, channel, is_known_customer, customer_segment
    having count(*) > 1

),

growing as (

    select this_step.session_started_date, this_step.funnel, this_step.step_number, this_step.channel,
        this_step.is_known_customer, this_step.customer_segment
    from daily as this_step
    left join daily as previous_step
        on this_step.session_started_date = previous_step.session_started_date
        and this_step.funnel = previous_step.funnel
        and this_step.step_number = previous_step.step_number + 1
        and this_step.channel is not distinct from previous_step.channel
        and this_step.is_known_customer = previous_step.is_known_customer
        and this_step.customer_segment = previous_step.customer_segment
    where this_step.sessions_reached > this_step.sessions_reached_previous
        or this_step.sessions_reached_previous > this_step.sessions_entered
        or (this_step.step_number = 1 and this_step.sessions_reached <> this_step.sessions_entered)
        or (this_step.step_number > 1 and (previous_step.sessions_reached is null
            or previous_step.sessions_reached <> this_step.sessions_reached_previous))

)

select * from duplicated
union all
select * from growing
