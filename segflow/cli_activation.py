"""``segflow activate | triggers | dead-letter``: send segment deltas and near-real-time triggers to the CRM sink
(docs/activation.md). Registered in segflow.cli.COMMANDS; heavy imports happen inside the commands."""

from __future__ import annotations

import json
import time

ACTIVATE_HELP = """\
Send a publication's delta (who entered, left or moved segment since the previous publication, with the
campaign action of campaigns.yml) to the sink at SEGFLOW_SINK_URL: batches of SEGFLOW_SINK_BATCH_SIZE records,
each with an Idempotency-Key header, retried with backoff, at most SEGFLOW_SINK_RATE_LIMIT requests/s.
Batches delivered before are skipped (ledger: activation.deliveries in $SEGFLOW_HOME/activation.duckdb);
batches that still fail are dead-lettered (`segflow dead-letter`) and the command exits non-zero.
Without SEGFLOW_SINK_URL nothing is sent (the exports under $SEGFLOW_HOME/exports/segments stay the product)."""

TRIGGERS_HELP = """\
Detect abandoned carts and session offers in the landing files that arrived since the last run, write them to
the outbox (activation.trigger_outbox, one row per trigger, ever) and send the pending ones to the sink.
Consent and identities come from the warehouse (a copy, refreshed when the warehouse changed); customers
without marketing and analytics consent, or flagged as anomalies, are never triggered."""


def _print(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_activate(args) -> None:
    from segflow.activation.deliver import activate
    from segflow.cli import _as_of

    _print(activate(as_of=_as_of(args.as_of)))


def cmd_triggers(args) -> None:
    from segflow.activation.triggers import outbox, run_triggers

    if args.list:
        _print(outbox(limit=args.limit))
        return
    if args.watch is None:
        _print(run_triggers(send=not args.no_send).as_dict())
        return
    while True:  # until Ctrl-C
        started = time.monotonic()
        print(json.dumps(run_triggers(send=not args.no_send).as_dict(), default=str), flush=True)
        time.sleep(max(0.0, args.watch - (time.monotonic() - started)))


def cmd_dead_letter(args) -> None:
    from segflow.activation.deliver import dead_letters

    _print(dead_letters(replay=args.replay))


def activate_args(p) -> None:
    import argparse

    from segflow.cli_types import as_of

    p.description, p.formatter_class = ACTIVATE_HELP, argparse.RawDescriptionHelpFormatter
    p.add_argument("--as-of", type=as_of, help="the published week to send (ISO date); default: the latest publication")
    p.set_defaults(func=cmd_activate)


def triggers_args(p) -> None:
    import argparse

    p.description, p.formatter_class = TRIGGERS_HELP, argparse.RawDescriptionHelpFormatter
    p.add_argument("--watch", type=float, metavar="SECONDS",
                   help="run again every SECONDS until interrupted (one JSON line per run)")
    p.add_argument("--no-send", action="store_true", help="fill the outbox only; send nothing")
    p.add_argument("--list", action="store_true", help="only show the outbox: counts and the newest triggers")
    p.add_argument("--limit", type=int, default=20, help="--list: rows to show (default 20)")
    p.set_defaults(func=cmd_triggers)


def dead_letter_args(p) -> None:
    p.description = ("List the dead-lettered batches (activation.dead_letter) not yet replayed; with --replay, send "
                     "each again with its original Idempotency-Key to its original destination (a receiver that "
                     "deduplicates applies it once). Exits non-zero if any still fails.")
    p.add_argument("--replay", action="store_true", help="send the dead-lettered batches again")
    p.set_defaults(func=cmd_dead_letter)
