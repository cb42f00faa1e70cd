-- One row per distinct session path: the first segflow__journey_path_steps steps (default 5) of the sessions'
-- state paths (int_journey_session_states: consecutive repeats collapsed, '(start)' left out, ending in
-- '(conversion)' or '(null)' when that is within the first steps), with how many sessions took it and how many
-- of them converted (a session converts at its first order line, whether or not within the first steps).
-- step_1 .. step_8 hold the steps; those after segflow__journey_path_steps, and after the path's end, are null.
-- path is the steps joined by ' > ', ending in ' > ...' when the session's path goes on past the last step.
{%- set steps = journey_path_steps() %}
{%- set max_steps = journey_path_max_steps() %}

with

session_states as (

    select * from {{ ref('int_journey_session_states') }}

),

session_paths as (

    -- pivot the first steps of each session (a jinja loop, not an ordered string_agg: portable)
    select
        session_id,
        {%- for step in range(1, steps + 1) %}
        max(case when step_index = {{ step }} then state end) as step_{{ step }},
        {%- endfor %}
        max(step_index) > {{ steps }} as is_truncated,
        max(case when state = '(conversion)' then 1 else 0 end) = 1 as is_converted
    from session_states
    group by session_id

),

labelled as (

    select
        *,
        step_1
        {%- for step in range(2, steps + 1) %}
            || coalesce(' > ' || step_{{ step }}, '')
        {%- endfor %}
            || case when is_truncated then ' > ...' else '' end as path
    from session_paths

),

counted as (

    select
        path,
        {%- for step in range(1, steps + 1) %}
        step_{{ step }},
        {%- endfor %}
        is_truncated,
        count(*) as sessions,
        sum(case when is_converted then 1 else 0 end) as converted_sessions
    from labelled
    group by path, {% for step in range(1, steps + 1) %}step_{{ step }}, {% endfor %}is_truncated

),

final as (

    select
        path,
        {%- for step in range(1, max_steps + 1) %}
        {%- if step <= steps %}
        step_{{ step }},
        {%- else %}
        cast(null as {{ dbt.type_string() }}) as step_{{ step }},
        {%- endif %}
        {%- endfor %}
        cast(
            {%- for step in range(1, steps + 1) %}
            case when step_{{ step }} is null then 0 else 1 end{% if not loop.last %} +{% endif %}
            {%- endfor %}
        as integer) as path_length,
        cast(row_number() over (order by sessions desc, path) as integer) as path_rank,
        cast(sessions as bigint) as sessions,
        cast(converted_sessions as bigint) as converted_sessions,
        cast(converted_sessions as {{ type_double() }}) / sessions as conversion_rate,
        is_truncated
    from counted

)

select * from final
