-- One row per loaded file and stream it wrote: where every delivered row went. Rows counted in the raw
-- table (here, independently of the loader's own count) plus the rows erased since (right to erasure) must
-- equal the rows the loader says it wrote, and the raw rows equal staged + quarantined + duplicates dropped
-- (asserted by a data test on is_balanced).
with

manifest as (

    select * from {{ source('meta', 'load_manifest') }}

),

outputs as (

    select load_id, stream, rows_written from {{ source('meta', 'load_outputs') }}

),

erased as (

    -- raw rows removed under the right to erasure (segflow erase, or dropped at load as an erased person's)
    select load_id, stream, cast(sum(rows_erased) as {{ dbt.type_bigint() }}) as row_count
    from {{ source('meta', 'erased_rows') }}
    group by load_id, stream

),

raw_rows as (

    {% for stream in event_streams() + ['customers', 'consent', 'identities'] %}
    select _load_id, '{{ stream }}' as stream, count(*) as row_count
    from {{ source('raw', stream) }}
    group by _load_id
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

staged as (

    select _load_id, _stream as stream, count(*) as row_count from {{ ref('stg_raw__events') }}
    group by _load_id, _stream
    union all
    select _load_id, 'customers', count(*) from {{ ref('stg_raw__customers') }} group by _load_id
    union all
    select _load_id, 'consent', count(*) from {{ ref('stg_raw__consent') }} group by _load_id
    union all
    select _load_id, 'identities', count(*) from {{ ref('stg_raw__identities') }} group by _load_id

),

quarantined as (

    select _load_id, _stream as stream, count(*) as row_count from {{ ref('stg_raw__events_quarantine') }}
    group by _load_id, _stream
    union all
    select _load_id, 'customers', count(*) from {{ ref('stg_raw__customers_quarantine') }} group by _load_id
    union all
    select _load_id, 'consent', count(*) from {{ ref('stg_raw__consent_quarantine') }} group by _load_id
    union all
    select _load_id, 'identities', count(*) from {{ ref('stg_raw__identities_quarantine') }} group by _load_id

),

conflicts as (

    -- later deliveries of an event id with other content: quarantined (counted in rows_quarantined), never applied
    select _load_id, _stream as stream, count(*) as row_count from {{ ref('stg_raw__events_quarantine') }}
    where quarantine_reason = 'conflicting_duplicate'
    group by _load_id, _stream

),

duplicates as (

    select _load_id, _stream as stream, count(*) as row_count from {{ ref('stg_raw__events_duplicates') }}
    group by _load_id, _stream

),

load_streams as (

    -- every stream a load wrote, plus its declared stream (so a load that wrote nothing still shows)
    select load_id, stream from outputs
    union
    select load_id, stream from manifest
    union
    select _load_id, stream from raw_rows

),

per_stream as (

    select
        manifest.load_id,
        manifest.source,
        load_streams.stream,
        manifest.file_name,
        manifest.rows_in_file,
        manifest.rows_rejected as rows_rejected_at_load,
        coalesce(outputs.rows_written, 0) as rows_written,
        coalesce(raw_rows.row_count, 0) as rows_in_raw,
        coalesce(staged.row_count, 0) as rows_staged,
        coalesce(quarantined.row_count, 0) as rows_quarantined,
        coalesce(duplicates.row_count, 0) as rows_duplicate,
        coalesce(conflicts.row_count, 0) as rows_conflicting,
        coalesce(erased.row_count, 0) as rows_erased,
        manifest.partition_date,
        manifest.loaded_at
    from load_streams
    inner join manifest
        on load_streams.load_id = manifest.load_id
    left join outputs
        on load_streams.load_id = outputs.load_id and load_streams.stream = outputs.stream
    left join raw_rows
        on load_streams.load_id = raw_rows._load_id and load_streams.stream = raw_rows.stream
    left join staged
        on load_streams.load_id = staged._load_id and load_streams.stream = staged.stream
    left join quarantined
        on load_streams.load_id = quarantined._load_id and load_streams.stream = quarantined.stream
    left join duplicates
        on load_streams.load_id = duplicates._load_id and load_streams.stream = duplicates.stream
    left join conflicts
        on load_streams.load_id = conflicts._load_id and load_streams.stream = conflicts.stream
    left join erased
        on load_streams.load_id = erased.load_id and load_streams.stream = erased.stream

)

select
    load_id,
    source,
    stream,
    file_name,
    rows_in_file,
    rows_rejected_at_load,
    rows_written,
    rows_in_raw,
    rows_staged,
    rows_quarantined,
    rows_duplicate,
    rows_conflicting,
    rows_erased,
    rows_in_raw + rows_erased = rows_written and rows_in_raw = rows_staged + rows_quarantined + rows_duplicate
        as is_balanced,
    partition_date,
    loaded_at
from per_stream
