"""Pure machine-learning helpers for behavioural customer segmentation."""
