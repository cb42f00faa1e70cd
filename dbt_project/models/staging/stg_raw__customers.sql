-- One row per valid delivered customer profile version (int_customer_profiles picks the one valid as of
-- the build). E-mail is pseudonymized here: the address itself never leaves staging. A table, not a view: the
-- PII key exists only inside a segflow build (segflow_pseudonymize), so the pseudonyms are stored.
{{ config(materialized='table') }}
with

source as (

    select * from {{ source('raw', 'customers') }}

),

manifest as (

    select load_id, load_seq from {{ source('meta', 'load_manifest') }}

),

typed as (

    select
        {{ clean_text('source.customer_id') }} as customer_id,
        {{ pseudonymize(clean_text('source.email'), purged='source._email_pseudonym') }} as email_hash,
        upper({{ clean_text('source.country') }}) as country,
        {{ clean_text('source.age_band') }} as age_band,
        {{ to_boolean('source.consent_marketing') }} as has_marketing_consent,
        {{ to_boolean('source.consent_analytics') }} as has_analytics_consent,
        {{ parse_utc_timestamp(clean_text('source.signup_at')) }} as signup_at,
        {{ parse_utc_timestamp(clean_text('source.updated_at')) }} as updated_at,
        {{ clean_text('source.signup_at') }} as signup_at_text,
        {{ clean_text('source.updated_at') }} as updated_at_text,
        source._load_id,
        manifest.load_seq as _load_seq,
        source._source_file,
        source._source_row
    from source
    left join manifest
        on source._load_id = manifest.load_id

)

select
    customer_id,
    email_hash,
    country,
    age_band,
    has_marketing_consent,
    has_analytics_consent,
    signup_at,
    updated_at,
    _load_id,
    _load_seq,
    _source_file,
    _source_row
from typed
where customer_id is not null
    and (signup_at_text is null or signup_at is not null)
    and (updated_at_text is null or updated_at is not null)
