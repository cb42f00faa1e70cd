-- One row per profile customer_id: the profile version valid at the as-of bound (the latest version whose
-- update time - or signup time when the source gives no update time - is before as_of; ties go to the later
-- delivery).
with

versions as (

    select * from {{ ref('stg_raw__customers') }}

),

run_context as (

    select * from {{ ref('int_run_context') }}

),

valid as (

    select
        versions.*,
        coalesce(versions.updated_at, versions.signup_at) as valid_from
    from versions
    cross join run_context
    where coalesce(versions.updated_at, versions.signup_at, run_context.as_of) < run_context.as_of
        or (versions.updated_at is null and versions.signup_at is null)

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id order by valid_from desc nulls last, _load_seq desc, _source_row desc
        ) as version_rank
    from valid

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
    valid_from
from ranked
where version_rank = 1
