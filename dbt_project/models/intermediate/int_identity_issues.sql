-- One row per identity-graph problem found as of the build: shared devices (a device seen with several
-- users: not merged), bad identifiers (an e-mail or alias linking more users than
-- segflow__identity_max_links: cut), and oversized components (not merged). Counted in `segflow status`.
with

edges as (

    select * from {{ ref('int_identity_edges') }}

),

degrees as (

    select identifier_kind, identifier, count(distinct user_id) as linked_users
    from edges
    group by identifier_kind, identifier

),

graph as (

    select * from {{ ref('int_identity_graph') }}
    where identifier_kind = 'user_id'

),

oversized as (

    select customer_id, component_size from graph
    where component_size > {{ var('segflow__identity_max_component_size') }}

)

select
    case
        when identifier_kind = 'anonymous_id' and linked_users <= {{ var('segflow__identity_max_links') }}
            then 'shared_device'
        else 'bad_identifier'
    end as issue,
    identifier_kind,
    identifier,
    linked_users
from degrees
where (identifier_kind = 'anonymous_id' and linked_users > 1)
    or linked_users > {{ var('segflow__identity_max_links') }}
union all
select
    'oversized_component' as issue,
    'user_id' as identifier_kind,
    customer_id as identifier,
    component_size as linked_users
from oversized
