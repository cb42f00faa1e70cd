-- One row per known identifier (user id, device / anonymous id, pseudonymized e-mail) with the canonical
-- customer it belongs to. The identity graph's connected components over user ids give the customer:
--   * devices never join two people: a device seen with exactly one user belongs to that user; a device seen
--     with several users is a shared device, stays unattributed (its anonymous events keep the device as
--     their person) and is reported in int_identity_issues;
--   * e-mails and aliases join user ids into one person, unless the identifier links more users than
--     segflow__identity_max_links (a bad id such as a placeholder e-mail): then it is cut and reported;
--   * a component larger than segflow__identity_max_component_size is not merged (each user stays itself)
--     and is reported.
-- The canonical customer id is the smallest user id of the component (a source's own id before a pseudonymous
-- 'email:' id), so it is deterministic.
with

edges as (

    select * from {{ ref('int_identity_edges') }}

),

usable as (

    -- the links the graph may follow (rules in int_identity_identifiers)
    select edges.*
    from edges
    inner join {{ ref('int_identity_identifiers') }} as identifiers
        on edges.identifier_kind = identifiers.identifier_kind
        and edges.identifier = identifiers.identifier
    where identifiers.link_status = 'usable'

),

user_nodes as (

    select user_id from {{ ref('int_events_deduplicated') }} where user_id is not null
    union
    select customer_id from {{ ref('int_customer_profiles') }}
    union
    select user_id from edges
    union
    select identifier from edges where identifier_kind = 'user_id'

),

user_links as (

    -- two users sharing a usable e-mail, and alias pairs, in both directions
    select a.user_id as from_user, b.user_id as to_user
    from usable as a
    inner join usable as b
        on a.identifier_kind = b.identifier_kind
        and a.identifier = b.identifier
        and a.user_id <> b.user_id
    where a.identifier_kind = 'email'
    union
    select user_id, identifier from usable where identifier_kind = 'user_id'
    union
    select identifier, user_id from usable where identifier_kind = 'user_id'

),

components as (

    -- every user reachable from each user; the component id is the smallest user id reachable, a source's own
    -- id before a pseudonymous 'email:' id
    select
        user_id,
        ltrim(min(case when root_id like 'email:%' then {{ dbt.concat(["'~'", "root_id"]) }} else root_id end), '~')
            as component_id
    from (
        with recursive walk (user_id, root_id) as (
            select user_id, user_id from user_nodes
            union
            select user_links.to_user, walk.root_id
            from walk
            inner join user_links
                on user_links.from_user = walk.user_id
        )
        select user_id, root_id from walk
    ) as reachable
    group by user_id

),

component_sizes as (

    select component_id, count(*) as component_size
    from components
    group by component_id

),

customers as (

    select
        components.user_id,
        case
            when component_sizes.component_size > {{ var('segflow__identity_max_component_size') }}
                then components.user_id
            else components.component_id
        end as customer_id,
        component_sizes.component_size
    from components
    inner join component_sizes
        on components.component_id = component_sizes.component_id

),

identifiers as (

    select 'user_id' as identifier_kind, user_id as identifier, customer_id from customers
    union all
    select distinct usable.identifier_kind, usable.identifier, customers.customer_id
    from usable
    inner join customers
        on usable.user_id = customers.user_id
    where usable.identifier_kind in ('anonymous_id', 'email')

),

unambiguous as (

    -- an e-mail of an oversized (unmerged) component points at several customers: leave it out
    select identifier_kind, identifier, min(customer_id) as customer_id
    from identifiers
    group by identifier_kind, identifier
    having count(distinct customer_id) = 1

)

select
    unambiguous.identifier_kind,
    unambiguous.identifier,
    unambiguous.customer_id,
    customers.component_size
from unambiguous
left join customers
    on unambiguous.identifier_kind = 'user_id'
    and unambiguous.identifier = customers.user_id
