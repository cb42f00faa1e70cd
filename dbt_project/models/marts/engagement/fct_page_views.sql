-- One row per page_view, screen_view or product_view event in a session (runaway sessions left out): where it
-- sits in its session and how long the person stayed on it. Time on page is the tracker's time_on_page_seconds
-- when it gives one, else the seconds to the next interactive event of the same session (whatever its type);
-- the session's last view without a tracker value has none. A tracker value below 0 or a scroll depth outside
-- 0..100 cannot be true and counts as absent.
-- Incremental like fct_sessions: the views of each person in int_sessions_reprocess_scope from its
-- reprocess_from on are removed and computed again (a session is recomputed whole, so the next event is known).
-- depends_on: {{ ref('int_sessions_reprocess_scope') }}
-- (a contract needs on_schema_change append_new_columns or fail; fail trips on PostgreSQL's text vs varchar)
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    pre_hook="{{ delete_reprocessed('occurred_at') }}",
) }}

with

session_events as (

    select
        sessionized.event_id,
        sessionized.session_id,
        sessionized.customer_id,
        sessionized.person_key,
        sessionized.occurred_at,
        stitched.event_type,
        stitched.page_type,
        stitched.page_url,
        stitched.product_id,
        stitched.category,
        stitched.channel,
        stitched.device_type,
        stitched.scroll_depth,
        stitched.time_on_page_seconds,
        stitched.event_type in ('page_view', 'screen_view', 'product_view') as is_view
    {{ from_session_events() }}

),

sequenced as (

    -- one ordered pass over each session: the next event of any type, and the views' positions
    select
        *,
        lead(occurred_at) over in_order as next_event_at,
        sum(case when is_view then 1 else 0 end) over (
            partition by session_id order by occurred_at, event_id rows between unbounded preceding and current row
        ) as view_index,
        sum(case when is_view then 1 else 0 end) over (partition by session_id) as session_view_count
    from session_events
    window in_order as (partition by session_id order by occurred_at, event_id)

),

views as (

    select
        *,
        case when time_on_page_seconds >= 0 then time_on_page_seconds end as tracked_seconds
    from sequenced
    where is_view

),

page_views as (

    select
        event_id,
        session_id,
        customer_id,
        person_key,
        event_type,
        page_type,
        page_url,
        product_id,
        category,
        channel,
        device_type,
        cast(case
            when tracked_seconds is not null then 'tracker'
            when next_event_at is not null then 'next_event'
        end as {{ dbt.type_string() }}) as time_on_page_source,
        cast(view_index as integer) as view_index,
        cast(case when scroll_depth between 0 and 100 then scroll_depth end as integer) as scroll_depth,
        cast(coalesce(tracked_seconds, {{ seconds_between('occurred_at', 'next_event_at') }}) as {{ type_double() }})
            as time_on_page_seconds,
        view_index = 1 as is_entry,
        view_index = session_view_count as is_exit,
        cast(occurred_at as date) as occurred_date,
        occurred_at
    from views

)

select * from page_views
