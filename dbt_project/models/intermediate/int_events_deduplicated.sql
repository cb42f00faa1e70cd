-- One row per event received and occurred before the as-of bound. Duplicates and conflicts were already
-- resolved in staging by delivery order (see base_raw__events), so this is the event set as of the build.
-- A view: the incremental models below read only the part of it that is new to them.
{{ config(materialized='view') }}
-- depends_on: {{ ref('int_run_context') }}
{%- if run_var('as_of') %}
-- the as-of as a literal (every scheduled build has one): with a join to the one-row int_run_context instead,
-- DuckDB's row estimate for this view collapsed, and the joins downstream hashed the 10M events instead of the
-- small identity tables (3x the memory; under a memory limit, spilling)

select *
from {{ ref('stg_raw__events') }}
where received_at < {{ as_of_literal() }}
    and occurred_at < {{ as_of_literal() }}

{%- else %}

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

{%- endif %}
