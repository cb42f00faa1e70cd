-- Nothing is lost: every raw row of every event stream is staged (first delivery), quarantined (invalid or
-- conflicting) or dropped as an exact duplicate - exactly one of them.
with

raw_rows as (

    {% for stream in event_streams() %}
    select count(*) as row_count from {{ source('raw', stream) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

accounted as (

    select count(*) as row_count from {{ ref('stg_raw__events') }}
    union all
    select count(*) from {{ ref('stg_raw__events_quarantine') }}
    union all
    select count(*) from {{ ref('stg_raw__events_duplicates') }}

)

select
    (select sum(row_count) from raw_rows) as raw_rows,
    (select sum(row_count) from accounted) as accounted_rows
where (select sum(row_count) from raw_rows) != (select sum(row_count) from accounted)
