-- One row per event received and occurred before the as-of bound. Duplicates and conflicts were already
-- resolved in staging by delivery order (see base_raw__events), so this is the event set as of the build.
-- A view: the incremental models below read only the part of it that is new to them.
{{ config(materialized='view') }}
with

events as (

    select * from {{ ref('stg_raw__events') }}

),

run_context as (

    select * from {{ ref('int_run_context') }}

)

select events.*
from events
cross join run_context
where events.received_at < run_context.as_of
    and events.occurred_at < run_context.as_of
