-- One row per customer with a segment: the segment of the latest accepted segmentation run made for an as-of
-- BEFORE this build's as-of. (A run is made after the build of its own as-of, so a later rebuild of that as-of
-- sees exactly what the first build saw.) The segment lens of the marts' breakdowns: a customer's current
-- segment, applied to their whole history. Customers with analytics consent only: a customer who revoked it
-- keeps no segment, even before the segmentation job redacts the run (segflow.jobs.consent).
with

runs as (

    select distinct run_id, segmented_as_of
    from {{ ref('stg_ml__segment_assignments') }}
    where segmented_as_of < (select as_of from {{ ref('int_run_context') }})

),

latest as (

    select run_id
    from runs
    where segmented_as_of = (select max(segmented_as_of) from runs)

),

consenting as (

    select customer_id
    from {{ ref('int_customer_consent') }}
    where has_analytics_consent

)

select
    assignments.customer_id,
    assignments.segment_id,
    assignments.segment_name,
    assignments.run_id,
    assignments.segmented_as_of
from {{ ref('stg_ml__segment_assignments') }} as assignments
inner join latest
    on assignments.run_id = latest.run_id
inner join consenting
    on assignments.customer_id = consenting.customer_id
