-- One row per canonical customer: whether the customer may be analyzed in this build (int_customer_consent) and
-- whether that differs from what the last successful build applied. The incremental facts reprocess a changed
-- customer's whole history: a revocation removes every row they hold, a grant (never applied backwards past
-- its as-of) writes every row a full build would. Reads this model's own stored rows - the state the last
-- build applied - before replacing them; a build that does not finish makes the next one a full refresh
-- (segflow/jobs/build_state.py), so the stored state is always the one the facts hold. Empty of changes in a
-- full build (everything is computed).
{%- set stored = segflow_reprocessing(this.identifier) %}

select
    consent.customer_id,
    consent.has_analytics_consent,
    {% if stored is none -%}
    false as is_changed
    {%- else -%}
    coalesce(applied.has_analytics_consent, false) <> consent.has_analytics_consent as is_changed
    {%- endif %}
from {{ ref('int_customer_consent') }} as consent
{% if stored is not none -%}
left join {{ stored }} as applied
    on consent.customer_id = applied.customer_id
{%- endif %}
