{#- Analytics consent in the incremental facts (int_events_sessionized and the session facts through it,
    fct_orders, fct_returns, fct_customer_daily_activity): rows of customers who may not be analyzed are left
    out, and a customer whose consent changed since the last successful build has all their rows recomputed. -#}
{#- Consent in the facts: true for a row of an anonymous person (no customer) or of a customer who may be
    analyzed in this build (int_customer_consent_changes). The facts leave every other row out. -#}
{% macro analyzable(customer_expr) -%}
    ({{ customer_expr }} is null or {{ customer_expr }} in (
        select customer_id from {{ ref('int_customer_consent_changes') }} where has_analytics_consent))
{%- endmacro %}

{#- The customers whose consent changed since the last successful build (an incremental fact reprocesses
    all their rows). -#}
{% macro consent_changed_customers() -%}
    select customer_id from {{ ref('int_customer_consent_changes') }} where is_changed
{%- endmacro %}

{#- The order ids (coalesce(order_id, event_id)) that fct_orders / fct_returns recompute in an incremental run:
    the documents with a line (is_order_line or is_reversal: `line_flag`) written by this build, and every
    document of a customer whose consent changed. -#}
{% macro changed_documents(line_flag) -%}
    select coalesce(order_id, event_id) as document_id
    from {{ ref('int_events_stitched') }}
    where {{ line_flag }}
        and (_build_seq > {{ segflow_since().build_seq | int }}
             or customer_id in ({{ consent_changed_customers() }}))
{%- endmacro %}

{#- pre_hook of fct_orders (`kind` 'orders') / fct_returns ('returns'): remove the documents this run recomputes
    and every stored row of a customer whose consent changed. delete+insert alone would keep a row whose
    recomputed version the consent filter leaves out. -#}
{% macro delete_changed_documents(kind) -%}
    {%- if is_incremental() -%}
        {%- set key, documents = ('order_id', changed_orders()) if kind == 'orders'
            else ('return_id', changed_documents('is_reversal')) -%}
        delete from {{ this }}
        where {{ key }} in ({{ documents }})
            or customer_id in ({{ consent_changed_customers() }})
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- The orders fct_orders recomputes: a line changed, a return naming it changed, or its customer's consent. -#}
{% macro changed_orders() -%}
    {{ changed_documents('is_order_line') }}
    union
    select original_order_id as document_id
    from {{ ref('int_events_stitched') }}
    where _build_seq > {{ segflow_since().build_seq | int }} and is_reversal and original_order_id is not null
{%- endmacro %}

{#- int_customer_consent: the consent records resolved to canonical customers (`graph`: user_id -> customer_id),
    ranked newest first per customer and purpose; only those recorded before the as-of when `run_context` (the
    CTE with as_of) is given. -#}
{% macro ranked_consent_decisions(graph, run_context=none) -%}
    select
        {{ graph }}.customer_id,
        consent.purpose,
        consent.is_granted,
        row_number() over (
            partition by {{ graph }}.customer_id, consent.purpose
            order by consent.recorded_at desc, consent._load_id desc, consent._source_row desc
        ) as decision_rank
    from {{ ref('stg_raw__consent') }} as consent
    inner join {{ graph }}
        on consent.customer_id = {{ graph }}.user_id
    {%- if run_context is not none %}
    cross join {{ run_context }}
    where consent.recorded_at < {{ run_context }}.as_of
    {%- endif %}
{%- endmacro %}

{#- int_customer_consent: per customer, the newest decision of each purpose (1 granted, 0 withdrawn, NULL none)
    from ranked decisions. -#}
{% macro latest_consent_decision(ranked) -%}
    select
        customer_id,
        max(case when purpose = 'analytics' then case when is_granted then 1 else 0 end end) as analytics,
        max(case when purpose = 'marketing' then case when is_granted then 1 else 0 end end) as marketing
    from {{ ranked }}
    where decision_rank = 1
    group by customer_id
{%- endmacro %}
