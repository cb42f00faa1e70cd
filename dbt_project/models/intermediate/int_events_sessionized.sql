-- One row per interactive event, with its session. A gap strictly greater than
-- segflow__session_timeout_minutes since the person's previous event starts a new session.
with

events as (

    select * from {{ ref('int_events_stitched') }}
    where is_interactive

),

with_previous as (

    select
        *,
        lag(occurred_at) over (
            partition by person_key order by occurred_at, event_id
        ) as previous_occurred_at
    from events

),

flagged as (

    select
        *,
        coalesce(
            occurred_at > {{ dbt.dateadd('minute', var('segflow__session_timeout_minutes'), 'previous_occurred_at') }},
            true
        ) as is_session_start
    from with_previous

),

numbered as (

    select
        *,
        sum(case when is_session_start then 1 else 0 end) over (
            partition by person_key order by occurred_at, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from flagged

),

sessions as (

    -- a session is named after its person and its first event, never after its position in the person's
    -- history: a late event earlier in that history does not rename the sessions after it
    select
        *,
        first_value(event_id) over (
            partition by person_key, session_number order by occurred_at, event_id
            rows between unbounded preceding and unbounded following
        ) as first_event_id
    from numbered

)

select
    {{ surrogate_key(['person_key', 'first_event_id']) }} as session_id,
    event_id,
    customer_id,
    person_key,
    anonymous_id,
    event_type,
    event_group,
    channel,
    page_type,
    product_id,
    category,
    order_id,
    quantity,
    price,
    session_number,
    is_order_line,
    is_cart_event,
    is_session_start,
    occurred_at
from sessions
