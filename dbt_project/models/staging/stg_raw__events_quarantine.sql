-- Rows that could not be staged, kept with the reason and the text exactly as delivered.
with

classified as (

    select * from {{ ref('base_raw__events') }}

),

quarantined as (

    select
        _load_id,
        _source_file,
        _source_row,
        quarantine_reason,
        event_id,
        event_type,
        anonymous_id,
        user_id,
        occurred_at_text,
        received_at_text,
        quantity_text,
        price_text
    from classified
    where quarantine_reason is not null

)

select * from quarantined
