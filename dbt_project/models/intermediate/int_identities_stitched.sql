-- One row per anonymous_id that was ever seen logged in: the customer it belongs to.
-- Rule (v1): the first user_id seen on the device. Shared devices are resolved to their first user;
-- graph stitching across identifiers comes later.
with

events as (

    select * from {{ ref('int_events_deduplicated') }}

),

logged_in as (

    select
        anonymous_id,
        user_id,
        occurred_at,
        event_id
    from events
    where anonymous_id is not null
        and user_id is not null

),

ranked as (

    select
        *,
        row_number() over (partition by anonymous_id order by occurred_at, event_id) as seen_rank,
        count(distinct user_id) over (partition by anonymous_id) as user_count
    from logged_in

)

select
    anonymous_id,
    user_id as customer_id,
    user_count > 1 as is_shared_device,
    occurred_at as first_identified_at
from ranked
where seen_rank = 1
