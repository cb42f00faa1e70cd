"""The pipeline's steps on the command line: generate, load, build, validate, run, segment, clv, docs.

Light at import (argparse types only); each command imports its job when it runs."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from segflow.cli_types import as_of, count, iso_date, share
from segflow.errors import InputError

STREAMS = ("events", "orders", "support_tickets", "email_events", "customers", "consent", "identities")
"""Canonical streams (segflow.sources.canonical.STREAMS, repeated here so `--help` needs no heavy import; a
unit test keeps them equal)."""

AS_OF_HELP = "exclusive end of the interval (ISO date/time, UTC unless it has an offset); default: everything"


def _print(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def generate_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Write seeded synthetic events (one file per received day) into $SEGFLOW_HOME/landing and the "
                     "true personas into $SEGFLOW_HOME/truth (for evaluation only).")
    p.add_argument("--customers", type=count(1), default=2000, help="customers to simulate (default 2000)")
    p.add_argument("--days", type=count(1), default=63, help="days of behavior (default 63 = 9 weeks)")
    p.add_argument("--start", type=iso_date, default=date(2025, 9, 1), help="first day, ISO date (default 2025-09-01)")
    p.add_argument("--seed", type=int, default=42, help="random seed; same seed and options, same files (default 42)")
    p.add_argument("--format", choices=["csv", "jsonl", "parquet"], default="csv",
                   help="file format of the landing files (default csv)")
    p.add_argument("--drift-week", type=int, default=8, help="week index from which behavior drifts (-1: none)")
    p.add_argument("--malformed-share", type=share, default=0.002, help="share of malformed rows (default 0.002)")
    p.add_argument("--duplicate-share", type=share, default=0.005,
                   help="share of events delivered twice (default 0.005)")
    p.add_argument("--late-share", type=share, default=0.01,
                   help="share of events received 1-4 days after they happened (default 0.01)")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args) -> None:
    from segflow import progress
    from segflow.settings import get_settings
    from segflow.sources.generator import GeneratorConfig, generate

    settings = get_settings()
    try:
        cfg = GeneratorConfig(customers=args.customers, days=args.days, seed=args.seed, start=args.start,
                              format=args.format, drift_week=None if args.drift_week < 0 else args.drift_week,
                              malformed_share=args.malformed_share, duplicate_share=args.duplicate_share,
                              late_share=args.late_share)
    except ValueError as exc:
        raise InputError(f"invalid generator option: {exc}") from None
    with progress.reporting():
        report = generate(cfg, settings.landing_dir, settings.truth_dir)
    _print(report.as_dict())


def load_args(p: argparse.ArgumentParser) -> None:
    from segflow.cli_help import LOAD_HELP

    p.description = LOAD_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("paths", nargs="*", help="files to load (default: every new file under $SEGFLOW_HOME/landing)")
    p.add_argument("--mapping", help="mapping file (YAML) describing the files given; see `segflow mapping`")
    p.add_argument("--stream", default="events", choices=list(STREAMS),
                   help="canonical stream of files given without a mapping (default: events)")
    p.add_argument("--replace", action="store_true",
                   help="files given: load again even if loaded before (e.g. after fixing the mapping); their "
                        "earlier rows are removed in the same transaction")
    p.add_argument("--as-of", type=as_of, help="landing only: load partitions dated before this ISO date/time")
    p.add_argument("--verbose", action="store_true", help="list every file, not only the problems")
    p.set_defaults(func=cmd_load)


def cmd_load(args) -> None:
    from pathlib import Path

    from segflow import progress

    if args.paths and args.as_of:
        raise InputError("--as-of selects landing partitions; it does not apply to files named on the command line")
    if not args.paths and (args.mapping or args.replace):
        raise InputError("--mapping and --replace go with file paths; for a landing folder put the mapping in "
                         "the folder as _mapping.yml")
    with progress.reporting():
        if args.paths:
            from segflow.jobs.load import load_paths
            from segflow.warehouse_lock import warehouse_step

            out = warehouse_step("load")(load_paths)(
                [Path(p) for p in args.paths], Path(args.mapping) if args.mapping else None, stream=args.stream,
                replace=args.replace).as_dict()
        else:
            from segflow.jobs.elt import load_interval

            out = load_interval(as_of=args.as_of)
    problems = [f for f in out["files"] if f["status"] in ("rejected", "ignored", "pending", "damaged", "unbalanced")]
    if not args.verbose:
        out["files"] = problems
    _print(out)
    for f in problems:
        print(f"segflow: {f['status']}: {f['source']}/{f['file']}: {f['reason']}", file=sys.stderr)
    balance = (f"segflow: load balance: {out['rows_in_files']:,} records counted in {out['files_loaded']} files = "
               f"{out['rows_loaded']:,} loaded + {out['rows_rejected']:,} rejected")
    print(balance if out["balanced"] else f"segflow: load does NOT balance: {'; '.join(out['unbalanced_files'])}",
          file=sys.stderr)
    if args.paths and [f for f in problems if f["status"] in ("rejected", "ignored")]:
        raise InputError(f"{len(problems)} of the files given were not loaded (see above)")


def _interval_args(p: argparse.ArgumentParser, full_refresh: bool) -> None:
    from segflow.cli_help import BUILD_HELP

    if full_refresh:
        p.description = BUILD_HELP
        p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--as-of", type=as_of, help=AS_OF_HELP)
    if full_refresh:
        p.add_argument("--full-refresh", action="store_true",
                       help="rebuild every table from all data received before --as-of")


def build_args(p: argparse.ArgumentParser) -> None:
    _interval_args(p, full_refresh=True)
    p.set_defaults(func=cmd_build)


def validate_args(p: argparse.ArgumentParser) -> None:
    _interval_args(p, full_refresh=False)
    p.set_defaults(func=cmd_validate)


def run_args(p: argparse.ArgumentParser) -> None:
    _interval_args(p, full_refresh=True)
    p.set_defaults(func=cmd_run)


def cmd_build(args) -> None:
    from segflow import progress
    from segflow.jobs.build import build

    with progress.reporting():
        result = build(as_of=args.as_of, full_refresh=args.full_refresh)
    _print(result.as_dict())


def cmd_validate(args) -> None:
    from segflow import progress
    from segflow.jobs.validate import validate

    with progress.reporting():
        result = validate(as_of=args.as_of)
    _print(result.as_dict())


def cmd_run(args) -> None:
    from segflow import progress
    from segflow.jobs.elt import run_elt

    with progress.reporting():
        result = run_elt(as_of=args.as_of, full_refresh=args.full_refresh)
    _print(result)


def segment_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Flag anomalies, recluster (stable segment ids), register the model version (promoted only above "
                     "the floors, docs/model-registry.md), check drift, monitor the segments' KPIs and publish the "
                     "week's segments (unless --no-publish). See docs/segmentation.md.")
    p.add_argument("--as-of", type=as_of, help="the week (must match the built features); default: latest build")
    p.add_argument("--no-publish", action="store_true", help="do everything but export the segments")
    p.set_defaults(func=cmd_segment)


def cmd_segment(args) -> None:
    from segflow import progress

    steps = ["anomalies", "recluster", "registry", "drift", "monitoring"] + ([] if args.no_publish else ["publish"])
    out: dict = {}
    with progress.reporting():
        def done(name: str) -> None:
            progress.step("segment", steps.index(name) + 1, len(steps), f"{name} done")

        progress.step("segment", 0, len(steps), "anomalies ...")
        from segflow.jobs.anomalies import detect_anomalies

        out["anomalies"] = {k: v for k, v in detect_anomalies(as_of=args.as_of).as_dict().items()
                            if k != "top_flagged"}
        done("anomalies")
        from segflow.jobs.segment import recluster

        out["segments"] = recluster(as_of=args.as_of).as_dict()
        done("recluster")
        from segflow.jobs.registry import register_model

        out["model"] = register_model(as_of=args.as_of).as_dict()  # promotion floors; drift scores with the champion
        done("registry")
        from segflow.jobs.drift import check_drift

        out["drift"] = {k: v for k, v in check_drift(as_of=args.as_of).as_dict().items() if k != "features"}
        done("drift")
        from segflow.jobs.monitoring import monitor_segments

        out["monitoring"] = {k: v for k, v in monitor_segments(as_of=args.as_of).as_dict().items() if k != "breaks"}
        done("monitoring")
        if not args.no_publish:
            from segflow.jobs.publish_segments import publish

            out["published"] = publish(as_of=args.as_of).as_dict()
            done("publish")
    _print(out)


def clv_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Fit purchase frequency (BG/NBD) and spend (Gamma-Gamma) on marts.customer_purchase_summary and write "
        "ml.clv_models (one row per week) and ml.customer_clv (expected purchases over SEGFLOW_CLV_HORIZON_WEEKS, "
        "probability alive, expected spend, predictive and historic CLV). Re-running a week replaces its rows. "
        "See docs/clv.md.")
    p.add_argument("--as-of", type=as_of, help="the week (must match the built marts, ISO date/time); "
                                               "default: latest build")
    p.set_defaults(func=cmd_clv)


def cmd_clv(args) -> None:
    from segflow.jobs.clv import fit_clv

    _print(fit_clv(as_of=args.as_of).as_dict())


def docs_args(p: argparse.ArgumentParser) -> None:
    p.description = "Generate dbt docs (lineage graph and column docs) as one static HTML file."
    p.set_defaults(func=cmd_docs)


def cmd_docs(args) -> None:
    from segflow.jobs.build import docs

    path = docs()
    print(f"dbt docs (lineage + column docs): {path}\n  open it in a browser: file://{path}")
