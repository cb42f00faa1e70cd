-- Customer rows that cannot be used: no id, or a signup time that does not parse.
with

source as (

    select * from {{ source('raw', 'customers') }}

),

quarantined as (

    select
        _load_id,
        _source_file,
        _source_row,
        case
            when {{ clean_text('customer_id') }} is null then 'missing_customer_id'
            else 'invalid_timestamp'
        end as quarantine_reason,
        customer_id,
        signup_at as signup_at_text
    from source
    where {{ clean_text('customer_id') }} is null
        or {{ parse_utc_timestamp(clean_text('signup_at')) }} is null

)

select * from quarantined
