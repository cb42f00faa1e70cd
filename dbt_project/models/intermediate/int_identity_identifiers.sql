-- One row per identifier linked to a user id as of the build, with how many distinct user ids it links and
-- whether the identity graph may follow it - the one place the link rules live:
--   usable          a device seen with exactly one user; an e-mail or alias linking at most
--                   segflow__identity_max_links users
--   shared_device   a device seen with several users (not merged; its anonymous events stay with the device)
--   bad_identifier  an identifier linking more users than segflow__identity_max_links (cut)
with

degrees as (

    select identifier_kind, identifier, count(distinct user_id) as linked_users
    from {{ ref('int_identity_edges') }}
    group by identifier_kind, identifier

)

select
    identifier_kind,
    identifier,
    linked_users,
    case
        when linked_users > {{ var('segflow__identity_max_links') }} then 'bad_identifier'
        when identifier_kind = 'anonymous_id' and linked_users > 1 then 'shared_device'
        else 'usable'
    end as link_status
from degrees
