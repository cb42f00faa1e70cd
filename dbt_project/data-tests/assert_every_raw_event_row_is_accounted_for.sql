-- Nothing is lost: every raw event row is either staged or quarantined (never both, never neither).
with

raw_rows as (

    select count(*) as row_count from {{ source('raw', 'events') }}

),

staged as (

    select count(*) as row_count from {{ ref('stg_raw__events') }}

),

quarantined as (

    select count(*) as row_count from {{ ref('stg_raw__events_quarantine') }}

)

select
    raw_rows.row_count as raw_rows,
    staged.row_count as staged_rows,
    quarantined.row_count as quarantined_rows
from raw_rows
cross join staged
cross join quarantined
where raw_rows.row_count != staged.row_count + quarantined.row_count
