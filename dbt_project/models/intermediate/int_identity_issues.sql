-- One row per identity-graph problem found as of the build: shared devices (a device seen with several
-- users: not merged), bad identifiers (an e-mail or alias linking more users than
-- segflow__identity_max_links: cut), and oversized components (not merged). Counted in `segflow status`.
with

graph as (

    select * from {{ ref('int_identity_graph') }}
    where identifier_kind = 'user_id'

),

oversized as (

    select customer_id, component_size from graph
    where component_size > {{ var('segflow__identity_max_component_size') }}

)

select
    link_status as issue,
    identifier_kind,
    identifier,
    linked_users
from {{ ref('int_identity_identifiers') }}
where link_status <> 'usable'
union all
select
    'oversized_component' as issue,
    'user_id' as identifier_kind,
    customer_id as identifier,
    component_size as linked_users
from oversized
