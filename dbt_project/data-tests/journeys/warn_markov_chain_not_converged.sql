-- journey_removal_effects: after 2^segflow__journey_markov_squarings steps no more than
-- segflow__journey_markov_tolerance of the probability is still unabsorbed. A warning, not an error: the
-- numbers are then lower bounds; raise segflow__journey_markov_squarings.
{{ config(severity='warn') }}

select state, unabsorbed_probability, last_squaring_change
from {{ ref('journey_removal_effects') }}
where unabsorbed_probability > {{ var('segflow__journey_markov_tolerance') }}
