{#- Small generic tests, so the project needs no package from the hub (nothing downloads at run time). -#}
{% test non_negative(model, column_name) %}
select * from {{ model }} where {{ column_name }} < 0
{% endtest %}

{% test between_0_and_1(model, column_name) %}
select * from {{ model }} where {{ column_name }} < 0 or {{ column_name }} > 1
{% endtest %}

{#- The columns together identify a row (the grain of a model keyed by several columns). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as rows_with_this_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- A row-level business rule: rows where the expression is not true fail. -#}
{% test expression_is_true(model, expression) %}
select * from {{ model }} where not ({{ expression }})
{% endtest %}

{#- A column is at least min_value (non_negative is the case min_value = 0). -#}
{% test at_least(model, column_name, min_value) %}
select * from {{ model }} where {{ column_name }} < {{ min_value }}
{% endtest %}

{#- `unique`, scoped to what this build can have changed. In an incremental `segflow build` only the rows newer
    than the last successful build (`new_rows`: `_build_seq` above its build sequence, or `_load_seq` above its
    load sequence) can break uniqueness - the older rows were checked when they were written and have only been
    deleted since - so the test checks the new rows among themselves and against the older rows, instead of
    grouping the whole relation (at 100M events the three unique tests were 61 s of a 201 s daily build).
    In a full refresh, or dbt run by hand without segflow's bounds, it is plain `unique` over every row. -#}
{% test unique_since_last_build(model, column_name, sequence_column='_build_seq') %}
{%- set bound_var = 'since_build_seq' if sequence_column == '_build_seq' else 'since_load_seq' -%}
{%- set bound = run_var(bound_var) -%}
{%- if flags.FULL_REFRESH or bound is none or run_var('since_as_of') is none %}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{%- else %}
with new_rows as (
    select {{ column_name }} as unique_field
    from {{ model }}
    where {{ sequence_column }} > {{ bound | int }} and {{ column_name }} is not null
),
older_rows as (
    select {{ column_name }} as unique_field
    from {{ model }}
    where {{ sequence_column }} <= {{ bound | int }}
)
select unique_field, count(*) as n_records
from new_rows
group by unique_field
having count(*) > 1
union all
select new_rows.unique_field, 2 as n_records
from new_rows
inner join older_rows on new_rows.unique_field = older_rows.unique_field
{%- endif %}
{% endtest %}
