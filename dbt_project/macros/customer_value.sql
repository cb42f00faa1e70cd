{#- RFM scoring helpers of the customer-value marts (customer_value, customer_rfm,
    customer_purchase_summary). -#}

{#- A 1..buckets score from a rank() (ties share the lowest rank of their group) among `count` rows: the
    bucket of percent_rank = (rank - 1) / (count - 1), i.e. the share of rows strictly below. Equal values get
    equal scores; score k covers percent_rank in [(k - 1) / buckets, k / buckets), the top bucket includes 1.
    Integer arithmetic only (no float boundary errors, the same on every engine); a lone row scores 1, as
    percent_rank is 0 there. -#}
{% macro percent_rank_score(rank_expr, count_expr, buckets=5) -%}
    case
        {%- for k in range(buckets, 1, -1) %}
        when {{ buckets }} * ({{ rank_expr }} - 1) >= {{ k - 1 }} * ({{ count_expr }} - 1) and {{ count_expr }} > 1
            then {{ k }}
        {%- endfor %}
        else 1
    end
{%- endmacro %}
