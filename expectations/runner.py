"""Validate a pandas frame against a suite and summarize the result."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None = None
    observed_value: object = None


@dataclass
class ValidationSummary:
    suite: str
    success: bool
    evaluated: int
    failed: int
    rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    validated_rows: int = 0  # rows GX saw (a bounded frame of a large table; see segflow.jobs.validate)

    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def describe_failures(self, limit: int = 5) -> str:
        parts = []
        for o in self.failures()[:limit]:
            where = f" on {o.column}" if o.column else ""
            detail = (f" ({o.unexpected_count} unexpected rows)" if o.unexpected_count
                      else f" (observed {o.observed_value})" if o.observed_value is not None else "")
            parts.append(f"{o.expectation}{where}{detail}")
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return asdict(self)


def _jsonable(value: object) -> object:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


def provided_columns(frame: pd.DataFrame) -> set[str]:
    """Columns with at least one non-null value: what the configured sources actually deliver."""
    return {c for c in frame.columns if frame[c].notna().any()}


def validate_frame(frame: pd.DataFrame, suite_module, parameters: dict | None = None,
                   provided: set[str] | None = None) -> ValidationSummary:
    """Run ``suite_module.build_suite(provided)`` on ``frame`` with an ephemeral GX context.

    ``provided`` defaults to the frame's non-null columns."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas(name="segflow")
    asset = source.add_dataframe_asset(name=suite_module.NAME)
    batch_definition = asset.add_batch_definition_whole_dataframe(name="whole_frame")
    suite = context.suites.add(suite_module.build_suite(
        provided_columns(frame) if provided is None else provided))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_module.NAME}_validation", data=batch_definition, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters or {})
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        details = item.result or {}
        outcomes.append(ExpectationOutcome(
            expectation=config.type,
            column=config.kwargs.get("column"),
            success=bool(item.success),
            unexpected_count=details.get("unexpected_count"),
            observed_value=_jsonable(details.get("observed_value")),
        ))
    failed = sum(1 for o in outcomes if not o.success)
    return ValidationSummary(suite=suite_module.NAME, success=bool(result.success), evaluated=len(outcomes),
                             failed=failed, rows=len(frame), outcomes=outcomes, validated_rows=len(frame))


def write_summary(summary: ValidationSummary, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary.as_dict(), indent=2, default=str) + "\n")
