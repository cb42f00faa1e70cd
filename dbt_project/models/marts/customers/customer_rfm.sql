-- One row per analytics-consenting customer with at least one order before the as-of bound (the rows of
-- customer_value): recency, frequency and monetary value, their quintile scores (1-5, 5 = best) and the named
-- RFM segment of the (R, FM) cell from the editable rule table seed rfm_segments.
--   recency   = days from the last order to the as-of bound (day boundaries, as customer_features counts)
--   frequency = purchase days (orders of one day count once, as in the CLV purchase summary: several orders on
--               one day are one shopping occasion, not more loyalty)
--   monetary  = net revenue to date (customer_value.net_revenue: gross orders minus returns and cancellations)
-- Scores rank every customer against all the others: the percent_rank quintile (macros/rfm.sql), so equal
-- values get equal scores whatever the row order; recency is ranked from the longest ago (1) to the most
-- recent (5). fm_score is (f_score + m_score) / 2 rounded half up.
with

customer_value as (

    select * from {{ ref('customer_value') }}

),

segment_rules as (

    select * from {{ ref('rfm_segments') }}

),

measured as (

    select
        customer_id,
        cast({{ dbt.datediff('last_ordered_at', 'as_of', 'day') }} as integer) as recency_days,
        purchase_days as frequency,
        net_revenue as monetary,
        order_count,
        last_order_date,
        as_of
    from customer_value

),

ranked as (

    select
        *,
        rank() over (order by recency_days desc) as recency_rank,
        rank() over (order by frequency) as frequency_rank,
        rank() over (order by monetary) as monetary_rank,
        count(*) over () as customer_count
    from measured

),

scored as (

    select
        *,
        {{ percent_rank_score('recency_rank', 'customer_count') }} as r_score,
        {{ percent_rank_score('frequency_rank', 'customer_count') }} as f_score,
        {{ percent_rank_score('monetary_rank', 'customer_count') }} as m_score
    from ranked

),

with_fm as (

    select
        *,
        cast(floor((f_score + m_score + 1) / 2.0) as integer) as fm_score
    from scored

),

-- the rule that decides each (r, fm) cell: the matching rule with the lowest priority number
cell_segments as (

    select r_score, fm_score, segment
    from (
        select
            cells.r_score,
            cells.fm_score,
            segment_rules.segment,
            row_number() over (
                partition by cells.r_score, cells.fm_score order by segment_rules.priority, segment_rules.segment
            ) as rule_rank
        from (select distinct r_score, fm_score from with_fm) as cells
        inner join segment_rules
            on cells.r_score between segment_rules.r_min and segment_rules.r_max
            and cells.fm_score between segment_rules.fm_min and segment_rules.fm_max
    ) as matches
    where rule_rank = 1

),

final as (

    select
        with_fm.customer_id,
        {{ dbt.concat([
            'cast(with_fm.r_score as ' ~ dbt.type_string() ~ ')',
            'cast(with_fm.f_score as ' ~ dbt.type_string() ~ ')',
            'cast(with_fm.m_score as ' ~ dbt.type_string() ~ ')',
        ]) }} as rfm_cell,
        cell_segments.segment as rfm_segment,
        with_fm.recency_days,
        cast(with_fm.frequency as integer) as frequency,
        cast(with_fm.monetary as decimal(18, 2)) as monetary,
        cast(with_fm.order_count as integer) as order_count,
        cast(with_fm.r_score as integer) as r_score,
        cast(with_fm.f_score as integer) as f_score,
        cast(with_fm.m_score as integer) as m_score,
        with_fm.fm_score,
        with_fm.last_order_date,
        with_fm.as_of
    from with_fm
    left join cell_segments
        on with_fm.r_score = cell_segments.r_score
        and with_fm.fm_score = cell_segments.fm_score

)

select * from final
