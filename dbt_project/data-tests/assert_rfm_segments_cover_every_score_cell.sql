-- The RFM rule table (seed rfm_segments) gives every one of the 25 (r_score, fm_score) cells exactly one
-- segment: each cell is covered by at least one rule, and no two covering rules share the deciding (lowest)
-- priority. Rules outside the 1-5 grid or with min > max are reported too. Returns one row per problem.
with

rules as (

    select * from {{ ref('rfm_segments') }}

),

scores as (

    select 1 as score union all select 2 union all select 3 union all select 4 union all select 5

),

cells as (

    select r.score as r_score, fm.score as fm_score
    from scores as r
    cross join scores as fm

),

matches as (

    select
        cells.r_score,
        cells.fm_score,
        rules.priority,
        min(rules.priority) over (partition by cells.r_score, cells.fm_score) as deciding_priority
    from cells
    inner join rules
        on cells.r_score between rules.r_min and rules.r_max
        and cells.fm_score between rules.fm_min and rules.fm_max

),

problems as (

    select 'no segment' as problem, cells.r_score, cells.fm_score
    from cells
    left join matches
        on cells.r_score = matches.r_score and cells.fm_score = matches.fm_score
    where matches.r_score is null

    union all

    select 'two rules decide' as problem, r_score, fm_score
    from matches
    where priority = deciding_priority
    group by r_score, fm_score
    having count(*) > 1

    union all

    select 'rule outside the 1-5 grid' as problem, r_min, fm_min
    from rules
    where r_min < 1 or r_max > 5 or fm_min < 1 or fm_max > 5 or r_min > r_max or fm_min > fm_max

)

select * from problems
