-- One row per interactive event, with its session. A gap strictly greater than
-- segflow__session_timeout_minutes since the person's previous event starts a new session.
-- Incremental: the events of each person in int_sessions_reprocess_scope from its reprocess_from on are
-- removed and sessionized again; everything else keeps its rows (and so its session ids).
-- depends_on: {{ ref('int_sessions_reprocess_scope') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_reprocessed('occurred_at') }}",
) }}

with

events as (

    select
        stitched.event_id,
        stitched.customer_id,
        stitched.person_key,
        stitched.anonymous_id,
        stitched.event_type,
        stitched.event_group,
        stitched.channel,
        stitched.page_type,
        stitched.product_id,
        stitched.category,
        stitched.order_id,
        stitched.quantity,
        stitched.price,
        stitched.is_order_line,
        stitched.is_cart_event,
        stitched.occurred_at
    from {{ ref('int_events_stitched') }} as stitched
    {{ join_reprocess_scope('stitched') }}
    where stitched.is_interactive

),

flagged as (

    select
        *,
        coalesce(
            occurred_at > {{ dbt.dateadd(
                'minute', var('segflow__session_timeout_minutes'),
                'lag(occurred_at) over (partition by person_key order by occurred_at, event_id)') }},
            true
        ) as is_session_start
    from events

),

sessions as (

    -- a session is named after its person and its first event, never after its position in the person's
    -- history: a late event earlier in that history does not rename the sessions after it
    {{ session_first_values('flagged') }}

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
    is_order_line,
    is_cart_event,
    is_session_start,
    session_started_at,
    occurred_at,
    {{ build_seq_literal() }} as _build_seq
from sessions
