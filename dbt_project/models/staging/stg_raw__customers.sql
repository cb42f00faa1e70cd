-- One row per valid delivered customer profile (every version; dim_customers keeps the latest).
-- E-mail is pseudonymized here: the address itself never leaves staging.
with

source as (

    select * from {{ source('raw', 'customers') }}

),

typed as (

    select
        {{ clean_text('customer_id') }} as customer_id,
        {{ dbt.hash(dbt.concat(["'" ~ var('segflow__pii_salt') ~ "'", "lower(" ~ clean_text('email') ~ ")"])) }}
            as email_hash,
        upper({{ clean_text('country') }}) as country,
        {{ clean_text('age_band') }} as age_band,
        coalesce({{ try_cast(clean_text('consent_marketing'), 'boolean') }}, false) as has_marketing_consent,
        coalesce({{ try_cast(clean_text('consent_analytics'), 'boolean') }}, false) as has_analytics_consent,
        {{ parse_utc_timestamp(clean_text('signup_at')) }} as signup_at,
        _load_id,
        _source_file,
        _source_row
    from source

),

valid as (

    select * from typed
    where customer_id is not null
        and signup_at is not null

)

select * from valid
