-- One row per device (anonymous id) that belongs to exactly one customer, from the identity graph.
-- Shared devices are not here (see int_identity_issues): their anonymous events stay with the device.
with

graph as (

    select * from {{ ref('int_identity_graph') }}
    where identifier_kind = 'anonymous_id'

),

first_seen as (

    select identifier, min(first_linked_at) as first_identified_at
    from {{ ref('int_identity_edges') }}
    where identifier_kind = 'anonymous_id'
    group by identifier

)

select
    graph.identifier as anonymous_id,
    graph.customer_id,
    first_seen.first_identified_at
from graph
left join first_seen
    on graph.identifier = first_seen.identifier
