-- One row per raw consent decision, typed, with `quarantine_reason` (null when usable).
with

source as (

    select * from {{ source('raw', 'consent') }}

),

typed as (

    select
        {{ clean_text('customer_id') }} as customer_id,
        lower({{ clean_text('purpose') }}) as purpose,
        {{ to_boolean('granted') }} as is_granted,
        {{ parse_utc_timestamp(clean_text('recorded_at')) }} as recorded_at,
        {{ clean_text('granted') }} as granted_text,
        {{ clean_text('recorded_at') }} as recorded_at_text,
        _load_id,
        _source_file,
        _source_row
    from source

)

select
    typed.*,
    case
        when customer_id is null then 'missing_customer_id'
        when purpose is null or purpose not in ('analytics', 'marketing') then 'unknown_consent_purpose'
        when is_granted is null then 'invalid_boolean'
        when recorded_at is null then 'invalid_timestamp'
    end as quarantine_reason
from typed
