-- Customer rows that cannot be used: no id, or a signup/update time that does not parse.
with

source as (

    select
        _load_id,
        _source_file,
        _source_row,
        {{ clean_text('customer_id') }} as customer_id,
        {{ clean_text('signup_at') }} as signup_at_text,
        {{ clean_text('updated_at') }} as updated_at_text
    from {{ source('raw', 'customers') }}

)

select
    _load_id,
    _source_file,
    _source_row,
    case
        when customer_id is null then 'missing_customer_id'
        else 'invalid_timestamp'
    end as quarantine_reason,
    customer_id,
    signup_at_text,
    updated_at_text
from source
where customer_id is null
    or (signup_at_text is not null and {{ parse_utc_timestamp('signup_at_text') }} is null)
    or (updated_at_text is not null and {{ parse_utc_timestamp('updated_at_text') }} is null)
