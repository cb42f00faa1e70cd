"""``segflow`` command line: every pipeline step without Airflow, plus the demo and Airflow helpers."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime

from segflow.cli_ab import add_parsers as add_business_parsers
from segflow.cli_activation import add_activation_parsers
from segflow.cli_anomalies import add_anomalies_parser
from segflow.cli_data import cmd_mapping, cmd_quarantine
from segflow.cli_demo import cmd_airflow, cmd_demo
from segflow.cli_help import BUILD_HELP, ERASE_HELP, LOAD_HELP, MAPPING_HELP
from segflow.cli_models import add_model_parsers
from segflow.cli_report import add_report_parser
from segflow.errors import InputError, SegflowError
from segflow.sources.canonical import STREAMS


def _as_of(value: str | None) -> datetime | None:
    if not value:
        return None
    from segflow.jobs.ml_common import to_naive_utc

    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SegflowError(
            f"--as-of {value!r} is not an ISO date/time (e.g. 2025-10-27 or 2025-10-27T00:00)") from None
    return to_naive_utc(parsed)


def _print(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_generate(args) -> None:
    from segflow.settings import get_settings
    from segflow.sources.generator import GeneratorConfig, generate

    settings = get_settings()
    try:
        cfg = GeneratorConfig(customers=args.customers, days=args.days, seed=args.seed,
                              start=date.fromisoformat(args.start), format=args.format,
                              drift_week=None if args.drift_week < 0 else args.drift_week,
                              malformed_share=args.malformed_share, duplicate_share=args.duplicate_share,
                              late_share=args.late_share)
    except ValueError as exc:
        raise InputError(f"invalid generator option: {exc}") from None
    _print(generate(cfg, settings.landing_dir, settings.truth_dir).as_dict())


def cmd_load(args) -> None:
    from pathlib import Path

    if args.paths:
        from segflow.jobs.load import load_paths

        if args.as_of:
            raise InputError("--as-of selects landing partitions; it does not apply to files named on the command line")
        from segflow.warehouse_lock import warehouse_step

        out = warehouse_step("load")(load_paths)(
            [Path(p) for p in args.paths], Path(args.mapping) if args.mapping else None, stream=args.stream,
            replace=args.replace).as_dict()
    else:
        from segflow.jobs.elt import load_interval

        if args.mapping or args.replace:
            raise InputError("--mapping and --replace go with file paths; for a landing folder put the mapping in "
                             "the folder as _mapping.yml")
        out = load_interval(as_of=_as_of(args.as_of))
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


def cmd_build(args) -> None:
    from segflow.jobs.build import build

    _print(build(as_of=_as_of(args.as_of), full_refresh=args.full_refresh).as_dict())


def cmd_validate(args) -> None:
    from segflow.jobs.validate import validate

    _print(validate(as_of=_as_of(args.as_of)).as_dict())


def cmd_run(args) -> None:
    from segflow.jobs.elt import run_elt

    _print(run_elt(as_of=_as_of(args.as_of), full_refresh=args.full_refresh))


def cmd_segment(args) -> None:
    from segflow.jobs.anomalies import detect_anomalies
    from segflow.jobs.drift import check_drift
    from segflow.jobs.publish_segments import publish
    from segflow.jobs.segment import recluster

    as_of = _as_of(args.as_of)
    out = {"anomalies": {k: v for k, v in detect_anomalies(as_of=as_of).as_dict().items() if k != "top_flagged"}}
    out["segments"] = recluster(as_of=as_of).as_dict()
    from segflow.jobs.registry import register_model

    out["model"] = register_model(as_of=as_of).as_dict()
    out["drift"] = {k: v for k, v in check_drift(as_of=as_of).as_dict().items() if k != "features"}
    from segflow.jobs.monitoring import monitor_segments

    out["monitoring"] = {k: v for k, v in monitor_segments(as_of=as_of).as_dict().items() if k != "breaks"}
    if not args.no_publish:
        out["published"] = publish(as_of=as_of).as_dict()
    _print(out)


def cmd_clv(args) -> None:
    from segflow.jobs.clv import fit_clv

    _print(fit_clv(as_of=_as_of(args.as_of)).as_dict())


def cmd_erase(args) -> None:
    from segflow.jobs.erase import erase

    result = erase(customers=args.customer, emails=args.email, anonymous_ids=args.anonymous_id,
                   reference=args.reference, dry_run=args.dry_run)
    _print(result.as_dict())
    if result.unchecked:
        print(f"segflow: warning: could not check {', '.join(sorted(result.unchecked))}", file=sys.stderr)


def cmd_purge_pii(args) -> None:
    from segflow.jobs.purge_pii import purge_pii

    _print(purge_pii(as_of=_as_of(args.as_of), retention_days=args.retention_days).as_dict())


def cmd_status(args) -> None:
    from segflow.jobs.status import current
    from segflow.jobs.status_format import format_summary

    data = current()  # never waits for a writer: the published snapshot while one holds the warehouse
    if args.json:
        _print(data)
    else:
        print(format_summary(data))


def cmd_docs(args) -> None:
    from segflow.jobs.build import docs

    path = docs()
    print(f"dbt docs (lineage + column docs): {path}\n  open it in a browser: file://{path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write seeded synthetic events + ground truth into SEGFLOW_HOME")
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--days", type=int, default=63)
    p.add_argument("--start", default="2025-09-01")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--format", choices=["csv", "jsonl", "parquet"], default="csv")
    p.add_argument("--drift-week", type=int, default=8, help="week index from which behavior drifts (-1: none)")
    p.add_argument("--malformed-share", type=float, default=0.002)
    p.add_argument("--duplicate-share", type=float, default=0.005)
    p.add_argument("--late-share", type=float, default=0.01)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "load", help="load new landing files (or the files given) into raw, once per file",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=LOAD_HELP)
    p.add_argument("paths", nargs="*", help="files to load (default: every new file under $SEGFLOW_HOME/landing)")
    p.add_argument("--mapping", help="mapping file (YAML) describing the files given; see `segflow mapping`")
    p.add_argument("--stream", default="events", choices=list(STREAMS),
                   help="canonical stream of files given without a mapping (default: events)")
    p.add_argument("--replace", action="store_true",
                   help="files given: load again even if loaded before (e.g. after fixing the mapping); their "
                        "earlier rows are removed in the same transaction")
    p.add_argument("--as-of", help="landing only: load partitions dated before this ISO date/time")
    p.add_argument("--verbose", action="store_true", help="list every file, not only the problems")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("mapping", help="check a mapping against a file, print the JSON Schema, list shipped ones",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=MAPPING_HELP)
    p.add_argument("action", choices=["check", "schema", "list"])
    p.add_argument("files", nargs="*", help="check: MAPPING.yml DATA_FILE")
    p.add_argument("--rows", type=int, default=5, help="check: rows to print (default 5)")
    p.add_argument("--output", help="schema: write to this file instead of stdout")
    p.set_defaults(func=cmd_mapping)

    p = sub.add_parser(
        "quarantine", help="records kept out (rejected at load, quarantined in staging): list | show | replay",
        description="list: rows kept out per reason. show REASON: the rows. replay [REASON]: reload the files "
        "holding them with their source's current mapping (after a mapping fix), replacing the earlier load of "
        "each file so nothing is loaded twice; then `segflow build` re-stages them. A rule fix (seed, setting) "
        "needs no replay: the next build re-stages every row.")
    p.add_argument("action", choices=["list", "show", "replay"])
    p.add_argument("reason", nargs="?", help="a reason code (see `segflow quarantine list`); replay: all if omitted")
    p.add_argument("--limit", type=int, default=20, help="show: rows to print (default 20)")
    p.add_argument("--source", help="replay: only files of this source (landing folder)")
    p.add_argument("--mapping", help="replay: the fixed mapping for files loaded from outside landing/")
    p.add_argument("--dry-run", action="store_true", help="replay: list the files, reload nothing")
    p.add_argument("--json", action="store_true", help="list: JSON output")
    p.set_defaults(func=cmd_quarantine)

    for name, func, text in (("build", cmd_build, "dbt build (staging, intermediate, marts, tests)"),
                             ("validate", cmd_validate, "run the Great Expectations gate"),
                             ("run", cmd_run, "load + build + validate for one interval")):
        p = sub.add_parser(name, help=text, description=BUILD_HELP if name in ("build", "run") else None,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--as-of", help="exclusive end of the interval (ISO date/time); default: everything")
        if name in ("build", "run"):
            p.add_argument("--full-refresh", action="store_true",
                           help="rebuild every table from all data received before --as-of")
        p.set_defaults(func=func)

    add_anomalies_parser(sub)
    add_model_parsers(sub)

    p = sub.add_parser("segment", help="flag anomalies, recluster, check drift and publish the week's segments")
    p.add_argument("--as-of", help="the week (must match the built features); default: latest build")
    p.add_argument("--no-publish", action="store_true")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser(
        "clv", help="fit BG/NBD + Gamma-Gamma and store each customer's predictive and historic CLV",
        description="Fit purchase frequency (BG/NBD) and spend (Gamma-Gamma) on marts.customer_purchase_summary and "
        "write ml.clv_models (one row per week) and ml.customer_clv (expected purchases over "
        "SEGFLOW_CLV_HORIZON_WEEKS, probability alive, expected spend, predictive and historic CLV). Re-running "
        "a week replaces its rows. See docs/clv.md.")
    p.add_argument("--as-of", help="the week (must match the built marts, ISO date/time); default: latest build")
    p.set_defaults(func=cmd_clv)
    add_business_parsers(sub)
    add_report_parser(sub)
    add_activation_parsers(sub)

    p = sub.add_parser("erase", help="right to erasure: remove a person from the warehouse and exports",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=ERASE_HELP)
    p.add_argument("--customer", action="append", default=[], metavar="ID", help="a user / customer id")
    p.add_argument("--email", action="append", default=[], metavar="ADDRESS", help="an e-mail address")
    p.add_argument("--anonymous-id", action="append", default=[], metavar="ID", help="a device / cookie id")
    p.add_argument("--reference", help="the request's reference for the audit log (a ticket number; no personal "
                                       "data)")
    p.add_argument("--dry-run", action="store_true", help="count what would be erased; change nothing")
    p.set_defaults(func=cmd_erase)


    p = sub.add_parser(
        "purge-pii", help="remove raw e-mail addresses older than SEGFLOW_PII_RETENTION_DAYS (pseudonyms are kept)",
        description="Empty the raw layer's PII columns (raw.*.email) of files loaded more than the retention period "
        "before --as-of (default: now). Each address's pseudonym is kept beside its row, so builds give the same "
        "customer ids afterwards; meta.pii_purges records what was purged. See docs/privacy.md.")
    p.add_argument("--as-of", help="reference time (ISO date/time, UTC); default: now")
    p.add_argument("--retention-days", type=int, help="override SEGFLOW_PII_RETENTION_DAYS for this run")
    p.set_defaults(func=cmd_purge_pii)

    p = sub.add_parser("status", help="summary of the warehouse")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("docs", help="generate dbt docs (lineage)")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("airflow", help="the embedded Airflow: init | env | ui")
    p.add_argument("action", choices=["init", "env", "ui"])
    p.set_defaults(func=cmd_airflow)

    p = sub.add_parser("demo", help="generate data and run the DAGs through Airflow, then print a summary")
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--weeks", type=int, default=9, help="weeks of history; the last two are segmented")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except BrokenPipeError:  # `segflow status | head`: the reader left, nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
    except SegflowError as exc:
        print(f"segflow: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("segflow: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
