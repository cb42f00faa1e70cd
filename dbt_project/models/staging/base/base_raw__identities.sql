-- One row per raw identity statement (identify / alias), typed, with `quarantine_reason`. A table, not a view:
-- the PII key exists only inside a segflow build (segflow_pseudonymize), so the pseudonyms are stored.
{{ config(materialized='table') }}
with

source as (

    select * from {{ source('raw', 'identities') }}

),

typed as (

    select
        {{ clean_text('identity_id') }} as identity_id,
        lower({{ clean_text('kind') }}) as kind,
        {{ clean_text('user_id') }} as user_id,
        {{ clean_text('anonymous_id') }} as anonymous_id,
        {{ clean_text('previous_id') }} as previous_id,
        {{ pseudonymize(clean_text('email'), purged='_email_pseudonym') }} as email_hash,
        {{ parse_utc_timestamp(clean_text('occurred_at')) }} as occurred_at,
        {{ parse_utc_timestamp(clean_text('received_at')) }} as received_at_parsed,
        {{ clean_text('occurred_at') }} as occurred_at_text,
        {{ clean_text('received_at') }} as received_at_text,
        _load_id,
        _source_file,
        _source_row
    from source

)

select
    typed.*,
    coalesce(received_at_parsed, occurred_at) as received_at,
    case
        when user_id is null then 'missing_identity'
        when kind is null or kind not in ('identify', 'alias') then 'unknown_identity_kind'
        when kind = 'alias' and previous_id is null then 'missing_identity'
        when occurred_at is null or (received_at_text is not null and received_at_parsed is null)
            then 'invalid_timestamp'
    end as quarantine_reason
from typed
