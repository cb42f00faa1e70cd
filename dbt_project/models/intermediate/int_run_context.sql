-- One row: the as-of bound of this build. Every time-relative number downstream is measured from it,
-- never from the wall clock, so rebuilding the same interval gives the same tables.
with

events as (

    select * from {{ ref('stg_raw__events') }}

),

bounds as (

    select
        coalesce(
            {{ as_of_literal() }},
            {{ dbt.dateadd('second', 1, 'max(received_at)') }}
        ) as as_of
    from events

)

select
    as_of,
    cast(as_of as date) as as_of_date,
    {{ var('segflow__session_timeout_minutes') }} as session_timeout_minutes
from bounds
