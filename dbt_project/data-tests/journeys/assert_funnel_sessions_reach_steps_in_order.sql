-- fct_funnel_sessions: a step is only reached after the step before it (never earlier, never without it),
-- the furthest step matches the step times, and a converted session reached the funnel's last step.

with

funnel_sessions as (

    select * from {{ ref('fct_funnel_sessions') }}

)

select session_id, funnel
from funnel_sessions
where furthest_step_number < 0
    or furthest_step_number > step_count
    or is_entered <> (step_1_at is not null)
    or is_converted <> (furthest_step_number = step_count)
    or (seconds_to_convert is not null) <> is_converted
    or step_1_at < session_started_at
    {%- for step in range(2, funnel_max_steps() + 1) %}
    or (step_{{ step }}_at is not null and (step_{{ step - 1 }}_at is null or step_{{ step }}_at < step_{{ step - 1 }}_at))
    or (furthest_step_number = {{ step - 1 }} and step_{{ step }}_at is not null)
    {%- endfor %}
    or (furthest_step_number > 0 and case furthest_step_number
        {%- for step in range(1, funnel_max_steps() + 1) %}
        when {{ step }} then step_{{ step }}_at
        {%- endfor %}
        end is null)
