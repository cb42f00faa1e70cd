"""``segflow anomalies``: score the week's customers for anomalies (bots), or list the flagged ones and why."""

from __future__ import annotations

import argparse
import json

from segflow.cli_types import as_of


def cmd_anomalies(args) -> None:
    from segflow.jobs.anomalies import detect_anomalies, list_anomalies

    week = args.as_of
    result = list_anomalies(as_of=week) if args.list else detect_anomalies(as_of=week).as_dict()
    print(json.dumps(result, indent=2, default=str))


def anomalies_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Fit the anomaly detector (isolation forest + local outlier factor) on the "
                       "week's traffic features, store scores and reasons in ml.customer_anomalies and print the "
                       "most anomalous; with --list, print the week's flagged customers and why. Flagged customers "
                       "stay out of that week's segments. See docs/anomalies.md.")
    p.add_argument("--as-of", type=as_of, help="the week (must match the built features when scoring); default: latest build "
                                   "(with --list: the latest scored week)")
    p.add_argument("--list", action="store_true", help="only list the week's flagged customers with their reasons")
    p.set_defaults(func=cmd_anomalies)
