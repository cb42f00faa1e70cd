-- One row per customer and ACCEPTED segmentation run: the customer's segment (stable id and name) in that run,
-- with the as-of the run was made for. Rejected runs (silhouette below the floor) never published segments.
select
    assignments.customer_id,
    assignments.run_id,
    runs.as_of as segmented_as_of,
    assignments.segment_id,
    segments.segment_name
from {{ source('ml', 'segment_assignments') }} as assignments
inner join {{ source('ml', 'model_runs') }} as runs
    on assignments.run_id = runs.run_id
left join {{ source('ml', 'segments') }} as segments
    on assignments.run_id = segments.run_id
    and assignments.segment_id = segments.segment_id
where runs.status = 'accepted'
