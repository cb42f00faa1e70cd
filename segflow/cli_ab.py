"""``segflow ab-readout`` and ``segflow segment-kpis``: business validation of the segments."""

from __future__ import annotations

import argparse
import json

from segflow.cli_types import as_of, iso_date
from segflow.errors import InputError

AB_HELP = """\
Read out an A/B test per segment: control vs treatment conversion rate and revenue per customer, uplift with
confidence intervals (Newcombe for conversion, Welch t for revenue), n per arm, a small-sample flag. Written to
ml.ab_readouts (replacing an earlier readout of the same experiment and week).

--assignments CSV: customer_id, arm (control / treatment), optional experiment_id (one per file).
--outcomes CSV: customer_id, converted (true/false or 0/1), revenue; assigned customers without a row count as
  not converted with revenue 0. Without --outcomes, --from and --to read them from the marts (orders and net
  revenue per customer over those days).
Segments are the week's segment assignments (--as-of, default: the latest segmentation). See
docs/business-metrics.md.
"""


def cmd_ab_readout(args) -> None:
    from pathlib import Path

    from segflow.jobs.ab_readout import format_readout, read_assignments, read_outcomes, run_ab_readout

    assignments, experiment_id = read_assignments(Path(args.assignments), args.experiment_id)
    outcomes, period = None, None
    if args.outcomes:
        if args.date_from or args.date_to:
            raise InputError("--outcomes and --from/--to exclude each other: outcomes come from one place")
        outcomes = read_outcomes(Path(args.outcomes))
    elif args.date_from and args.date_to:
        period = (args.date_from, args.date_to)
    else:
        raise InputError("give --outcomes FILE.csv, or --from and --to to read outcomes from the marts")
    result = run_ab_readout(assignments, experiment_id, outcomes=outcomes, period=period, as_of=args.as_of)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        print(format_readout(result))


def cmd_segment_kpis(args) -> None:
    from segflow.jobs.segment_kpis import segment_kpis

    print(json.dumps(segment_kpis(as_of=args.as_of).as_dict(), indent=2, default=str))


def ab_readout_args(p: argparse.ArgumentParser) -> None:
    p.description = AB_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--assignments", required=True, metavar="FILE.csv",
                   help="experiment assignment table: customer_id, arm, optional experiment_id")
    p.add_argument("--outcomes", metavar="FILE.csv", help="outcomes per customer: customer_id, converted, revenue")
    p.add_argument("--from", dest="date_from", metavar="DATE", type=iso_date,
                   help="without --outcomes: first day (ISO date) of the outcome period read from the marts")
    p.add_argument("--to", dest="date_to", metavar="DATE", type=iso_date,
                   help="without --outcomes: last day (ISO date, included) of the outcome period")
    p.add_argument("--as-of", type=as_of, help="the week whose segments to use (ISO date/time); default: latest segmentation")
    p.add_argument("--experiment-id", help="experiment id when the file has no experiment_id column "
                                           "(default: the file name without extension)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_ab_readout)


def segment_kpis_args(p: argparse.ArgumentParser) -> None:
    p.description = ("Per-segment KPIs (conversion, AOV, retention, churn, revenue share) with confidence "
                     "intervals, and how strongly the segments separate them, for a week. See "
                     "docs/business-metrics.md.")
    p.add_argument("--as-of", type=as_of, help="the segmented week (ISO date/time); default: latest segmentation")
    p.set_defaults(func=cmd_segment_kpis)
