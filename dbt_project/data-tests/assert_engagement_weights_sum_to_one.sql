-- The engagement score's weights (vars segflow__engagement_weight_*) are each >= 0 and sum to exactly 1, so
-- customer_engagement.engagement_score stays in [0, 100]. Returns a row when they do not. (customer_engagement
-- refuses to compile with such weights too; this test names the rule in the build's test results.)
with

weights as (

    select
        {{ var('segflow__engagement_weight_recency') }} as recency_weight,
        {{ var('segflow__engagement_weight_frequency') }} as frequency_weight,
        {{ var('segflow__engagement_weight_depth') }} as depth_weight

)

select *
from weights
where recency_weight < 0
    or frequency_weight < 0
    or depth_weight < 0
    or abs(recency_weight + frequency_weight + depth_weight - 1) > 0.000000001
