-- One row: the as-of bound of this build. Every time-relative number downstream is measured from it,
-- never from the wall clock, so rebuilding the same interval gives the same tables.
-- With an as-of given (every scheduled run gives one), staging is not scanned at all.
-- depends_on: {{ ref('stg_raw__events') }}
{% if run_var('as_of') %}

select
    {{ as_of_literal() }} as as_of,
    cast({{ as_of_literal() }} as date) as as_of_date,
    {{ run_context_last_date(as_of_literal()) }} as last_date,
    {{ var('segflow__session_timeout_minutes') }} as session_timeout_minutes

{% else %}

with

bounds as (

    select {{ dbt.dateadd('second', 1, 'max(received_at)') }} as as_of
    from {{ ref('stg_raw__events') }}

)

select
    as_of,
    cast(as_of as date) as as_of_date,
    {{ run_context_last_date('as_of') }} as last_date,
    {{ var('segflow__session_timeout_minutes') }} as session_timeout_minutes
from bounds

{% endif %}
