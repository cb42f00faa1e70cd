-- One row per loaded file: where every delivered line went. rows_in_file must equal
-- rows_rejected_at_load + rows_staged + rows_quarantined (asserted by a data test).
with

manifest as (

    select * from {{ source('meta', 'load_manifest') }}

),

staged as (

    select _load_id, count(*) as row_count from {{ ref('stg_raw__events') }} group by _load_id
    union all
    select _load_id, count(*) from {{ ref('stg_raw__customers') }} group by _load_id

),

quarantined as (

    select _load_id, count(*) as row_count from {{ ref('stg_raw__events_quarantine') }} group by _load_id
    union all
    select _load_id, count(*) from {{ ref('stg_raw__customers_quarantine') }} group by _load_id

),

per_load as (

    select
        manifest.load_id,
        manifest.source,
        manifest.file_name,
        manifest.partition_date,
        manifest.rows_in_file,
        manifest.rows_rejected as rows_rejected_at_load,
        coalesce(staged.row_count, 0) as rows_staged,
        coalesce(quarantined.row_count, 0) as rows_quarantined,
        manifest.loaded_at
    from manifest
    left join (select _load_id, sum(row_count) as row_count from staged group by _load_id) as staged
        on manifest.load_id = staged._load_id
    left join (select _load_id, sum(row_count) as row_count from quarantined group by _load_id) as quarantined
        on manifest.load_id = quarantined._load_id

)

select
    load_id,
    source,
    file_name,
    rows_in_file,
    rows_rejected_at_load,
    rows_staged,
    rows_quarantined,
    rows_in_file = rows_rejected_at_load + rows_staged + rows_quarantined as is_balanced,
    partition_date,
    loaded_at
from per_load
