"""``segflow status``, ``segflow erase`` and ``segflow purge-pii``: looking at the warehouse, and privacy requests.

Light at import; each command imports its job when it runs."""

from __future__ import annotations

import argparse
import json
import sys

from segflow.cli_types import as_of, count


def _print(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def status_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Summary of the warehouse: the last pipeline runs, the load balance, data quality, the "
                     "segments, drift, the export, and links to the report, GX Data Docs, dbt docs and the Airflow "
                     "UI. Never waits for a running step: it shows the state the last step published.")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_status)


def cmd_status(args) -> None:
    from segflow.jobs.status import current
    from segflow.jobs.status_format import format_summary

    data = current()  # never waits for a writer: the published snapshot while one holds the warehouse
    if args.json:
        _print(data)
    else:
        print(format_summary(data))


def erase_args(p: argparse.ArgumentParser) -> None:
    from segflow.cli_help import ERASE_HELP

    p.description = ERASE_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--customer", action="append", default=[], metavar="ID", help="a user / customer id")
    p.add_argument("--email", action="append", default=[], metavar="ADDRESS", help="an e-mail address")
    p.add_argument("--anonymous-id", action="append", default=[], metavar="ID", help="a device / cookie id")
    p.add_argument("--reference", help="the request's reference for the audit log (a ticket number; no personal "
                                       "data)")
    p.add_argument("--dry-run", action="store_true", help="count what would be erased; change nothing")
    p.set_defaults(func=cmd_erase)


def cmd_erase(args) -> None:
    if not (args.customer or args.email or args.anonymous_id):
        from segflow.errors import InputError

        raise InputError("name at least one person: --customer ID, --email ADDRESS or --anonymous-id ID")
    from segflow.jobs.erase import erase

    result = erase(customers=args.customer, emails=args.email, anonymous_ids=args.anonymous_id,
                   reference=args.reference, dry_run=args.dry_run)
    _print(result.as_dict())
    if result.unchecked:
        print(f"segflow: warning: could not check {', '.join(sorted(result.unchecked))}", file=sys.stderr)


def purge_pii_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Empty the raw layer's PII columns (raw.*.email) of files loaded more than the retention period before "
        "--as-of (default: now). Each address's pseudonym is kept beside its row, so builds give the same customer "
        "ids afterwards; meta.pii_purges records what was purged. See docs/privacy.md.")
    p.add_argument("--as-of", type=as_of, help="reference time (ISO date/time, UTC); default: now")
    p.add_argument("--retention-days", type=count(0), help="override SEGFLOW_PII_RETENTION_DAYS for this run")
    p.set_defaults(func=cmd_purge_pii)


def cmd_purge_pii(args) -> None:
    from segflow.jobs.purge_pii import purge_pii

    _print(purge_pii(as_of=args.as_of, retention_days=args.retention_days).as_dict())
