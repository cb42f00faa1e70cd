-- One row per (user id, identifier) link observed before the as-of bound. An identifier is a device /
-- anonymous id, a pseudonymized e-mail, or another user id (an alias). Sources: events that carry both a
-- user id and a device or e-mail, identify / alias statements, and customer profiles (e-mail).
with

events as (

    select * from {{ ref('int_events_deduplicated') }}

),

run_context as (

    select * from {{ ref('int_run_context') }}

),

statements as (

    select statements.*
    from {{ ref('stg_raw__identities') }} as statements
    cross join run_context
    where statements.received_at < run_context.as_of
        and statements.occurred_at < run_context.as_of

),

profiles as (

    select * from {{ ref('int_customer_profiles') }}

),

user_ids as (

    select user_id from events where user_id is not null
    union
    select user_id from statements
    union
    select customer_id from profiles

),

links as (

    select user_id, 'anonymous_id' as identifier_kind, anonymous_id as identifier, occurred_at
    from events
    where user_id is not null and anonymous_id is not null
    union all
    select user_id, 'email', email_hash, occurred_at
    from events
    where user_id is not null and email_hash is not null
    union all
    select user_id, 'anonymous_id', anonymous_id, occurred_at
    from statements
    where anonymous_id is not null
    union all
    select user_id, 'email', email_hash, occurred_at
    from statements
    where email_hash is not null
    union all
    -- an alias's previous id is an earlier user id when it was ever used as one, else an anonymous id
    select
        statements.user_id,
        case when known.user_id is not null then 'user_id' else 'anonymous_id' end,
        statements.previous_id,
        statements.occurred_at
    from statements
    left join user_ids as known
        on statements.previous_id = known.user_id
    where statements.kind = 'alias' and statements.previous_id <> statements.user_id
    union all
    select customer_id, 'email', email_hash, valid_from
    from profiles
    where email_hash is not null

)

select
    user_id,
    identifier_kind,
    identifier,
    min(occurred_at) as first_linked_at
from links
group by user_id, identifier_kind, identifier
