"""Validate pandas frames against suites with one GX context, summarize the results, build Data Docs.

GX logs at INFO while it imports (hundreds of "Skipping registering function ..." lines) and on every
datasource change; :func:`quiet_gx` keeps its loggers at WARNING *before* the import, so a task log shows the
gate's own summary, not GX's chatter.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from segflow import progress

if TYPE_CHECKING:
    import pandas as pd



def quiet_gx() -> None:
    """Keep GX's loggers at WARNING: before ``import great_expectations`` (the package's own logger) and after
    it (one GX module sets its logger to INFO when imported)."""
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)


quiet_gx()


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None = None
    observed_value: object = None
    examples: list | None = None  # a few unexpected values (ids are per-run tokens, e-mails shapes)


@dataclass
class ValidationSummary:
    suite: str
    success: bool
    evaluated: int
    failed: int
    rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    validated_rows: int = 0  # rows GX saw (a bounded frame of a large table; see segflow.jobs.dq_frames)

    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def describe_failures(self, limit: int = 5) -> str:
        parts = []
        for o in self.failures()[:limit]:
            where = f" on {o.column}" if o.column else ""
            if o.unexpected_count:
                detail = f" ({o.unexpected_count} unexpected rows)"
                detail += f" [e.g. {', '.join(map(str, o.examples[:3]))}]" if o.examples else ""
            elif o.observed_value is not None:
                detail = f" (observed {o.observed_value})"
            else:
                detail = ""
            parts.append(f"{o.expectation}{where}{detail}")
        more = len(self.failures()) - limit
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")

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


def _summarize(name: str, result, rows: int) -> ValidationSummary:
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        details = item.result or {}
        examples = details.get("partial_unexpected_list")
        outcomes.append(ExpectationOutcome(
            expectation=config.type,
            column=config.kwargs.get("column") or config.kwargs.get("column_A"),
            success=bool(item.success),
            unexpected_count=details.get("unexpected_count"),
            observed_value=_jsonable(details.get("observed_value")),
            examples=[_jsonable(v) for v in examples[:5]] if examples and not item.success else None,
        ))
    failed = sum(1 for o in outcomes if not o.success)
    return ValidationSummary(suite=name, success=bool(result.success), evaluated=len(outcomes), failed=failed,
                             rows=rows, outcomes=outcomes, validated_rows=rows)


def validate_suites(batches: dict[str, tuple[pd.DataFrame, Callable]], parameters: dict | None = None,
                    docs_dir: Path | None = None, run_name: str | None = None
                    ) -> tuple[dict[str, ValidationSummary], Path | None]:
    """Validate each ``name -> (frame, build_suite)`` in one ephemeral GX context (a suite can only be built
    once a context exists, hence the builders).

    With ``docs_dir``, GX Data Docs of these suites and results are built there (made to work offline, see
    :mod:`expectations.data_docs`); returns the summaries and the site's index page."""
    quiet_gx()
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    quiet_gx()
    # no default docs site: GX would create (and leave) a temporary directory for it on every run
    context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False)))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas(name="segflow")
    run_id = RunIdentifier(run_name=run_name) if run_name else None
    summaries = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas/GX deprecation chatter inside GX, not the gate's business
        for done, (name, (frame, build_suite)) in enumerate(batches.items()):
            progress.step("validate", done, len(batches), f"suite {name} ...")
            batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(name="frame")
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch, suite=context.suites.add(build_suite())))
            result = definition.run(batch_parameters={"dataframe": frame},
                                    expectation_parameters=parameters or {}, run_id=run_id)
            summaries[name] = _summarize(name, result, len(frame))
            progress.step("validate", done + 1, len(batches), f"suite {name} {'pass' if result.success else 'FAIL'}")
        index = None
        if docs_dir is not None:
            from expectations.data_docs import build_site

            index = build_site(context, docs_dir)
    return summaries, index


def validate_frame(frame: pd.DataFrame, suite_module, parameters: dict | None = None,
                   provided: set[str] | None = None) -> ValidationSummary:
    """Run ``suite_module.build_suite(provided)`` on ``frame`` (``provided`` defaults to its non-null columns)."""
    provided = provided_columns(frame) if provided is None else provided
    summaries, _ = validate_suites({suite_module.NAME: (frame, lambda: suite_module.build_suite(provided))},
                                   parameters)
    return summaries[suite_module.NAME]


def write_summary(summary: ValidationSummary, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary.as_dict(), indent=2, default=str) + "\n")
