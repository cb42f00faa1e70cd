"""``segflow`` command line: every pipeline step without Airflow, plus the demo and Airflow helpers."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from datetime import datetime
from pathlib import Path

# The commands, in `segflow --help` order: name -> ("module:function", one-line help).
# The function receives the command's ArgumentParser, adds its arguments (each with help text) and sets the
# command to run: `p.set_defaults(func=cmd_x)`. Only the chosen command's module is imported, so a bad argument
# is answered at once; keep command modules light at import time (argparse, segflow.cli_types) and import heavy
# libraries inside the command function. tests/unit/test_cli.py checks both for every command listed here.
# Adding a command is one line here plus its module.
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("segflow.cli_pipeline:generate_args", "write seeded synthetic events + ground truth into SEGFLOW_HOME"),
    "load": ("segflow.cli_pipeline:load_args", "load new landing files (or the files given) into raw, once per file"),
    "mapping": ("segflow.cli_data:mapping_args", "check a mapping against a file, print the JSON Schema, list shipped ones"),
    "quarantine": ("segflow.cli_data:quarantine_args", "records kept out (rejected at load, quarantined in staging): list | show | replay"),
    "build": ("segflow.cli_pipeline:build_args", "dbt build (staging, intermediate, marts, tests)"),
    "validate": ("segflow.cli_pipeline:validate_args", "run the Great Expectations gate"),
    "run": ("segflow.cli_pipeline:run_args", "load + build + validate for one interval"),
    "anomalies": ("segflow.cli_anomalies:anomalies_args", "score customers for anomalies (bots) and flag them, or list the flagged"),
    "segment": ("segflow.cli_pipeline:segment_args", "flag anomalies, recluster, register the model, check drift and publish the week's segments"),
    "models": ("segflow.cli_models:models_args", "the model registry: list versions, or register the week's model"),
    "assign": ("segflow.cli_models:assign_args", "assign new and changed customers with the champion model's classifier"),
    "clv": ("segflow.cli_pipeline:clv_args", "fit BG/NBD + Gamma-Gamma and store each customer's predictive and historic CLV"),
    "ab-readout": ("segflow.cli_ab:ab_readout_args", "A/B test uplift per segment with confidence intervals"),
    "segment-kpis": ("segflow.cli_ab:segment_kpis_args", "per-segment KPIs and separation tests for a week"),
    "report": ("segflow.cli_report:report_args", "write the week's HTML report (segments, drift, SPC, anomalies, CLV, funnel) and open it"),
    "activate": ("segflow.cli_activation:activate_args", "send the published segment delta to the CRM sink (SEGFLOW_SINK_URL)"),
    "triggers": ("segflow.cli_activation:triggers_args", "detect abandoned carts and session offers in new landing files; outbox + sink"),
    "dead-letter": ("segflow.cli_activation:dead_letter_args", "batches the sink refused or never answered: list, or --replay them"),
    "erase": ("segflow.cli_ops:erase_args", "right to erasure: remove a person from the warehouse and exports"),
    "purge-pii": ("segflow.cli_ops:purge_pii_args", "remove raw e-mail addresses older than SEGFLOW_PII_RETENTION_DAYS"),
    "status": ("segflow.cli_ops:status_args", "last runs, data quality, segments, drift and links, from the warehouse"),
    "docs": ("segflow.cli_pipeline:docs_args", "generate dbt docs (lineage)"),
    "airflow": ("segflow.cli_demo:airflow_args", "the embedded Airflow: init | env | ui"),
    "demo": ("segflow.cli_demo:demo_args", "generate data and run the DAGs through Airflow's scheduler, then print a summary"),
}  # fmt: skip

_DEFAULT_HOME = Path(__file__).resolve().parents[1] / ".segflow"


def _epilog() -> str:
    home = os.environ.get("SEGFLOW_HOME")
    where = f"{home} (from SEGFLOW_HOME)" if home else f"{_DEFAULT_HOME} (the default; set SEGFLOW_HOME to move it)"
    return f"""\
where state lives
  Everything segflow reads and writes is in one folder, SEGFLOW_HOME; now: {where}
    landing/            delivered files, one folder per stream or source (`segflow load` reads them)
    warehouse.duckdb    the DuckDB warehouse: raw, meta, staging, intermediate, marts, ml
    exports/            published segment files (segments/latest.csv)
    artifacts/          dbt target and logs, GX results and Data Docs, reports, Airflow service logs
    airflow/            the embedded Airflow's home (SQLite metadata, task logs, login)
    truth/              the generator's true personas (evaluation only)
  Point SEGFLOW_HOME at an empty folder for a clean, independent installation.

settings
  SEGFLOW_* environment variables (or a .env file in the working directory), e.g. SEGFLOW_MIN_CUSTOMERS=500;
  each is documented in segflow/settings.py. An invalid value stops every command with one line naming it.

`segflow COMMAND --help` describes a command."""


def _as_of(value: str | datetime | None) -> datetime | None:
    """An --as-of value (already parsed by segflow.cli_types.as_of, or a string) as naive UTC. Kept for modules
    that parse it themselves."""
    if value is None or value == "" or isinstance(value, datetime):
        return value or None
    from segflow.cli_types import as_of
    from segflow.errors import SegflowError

    try:
        return as_of(value)
    except argparse.ArgumentTypeError as exc:
        raise SegflowError(f"--as-of {exc}") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, like every other segflow error, and where to read more (instead of argparse's usage block)."""
        self.exit(2, f"segflow: error: {message} (see `{self.prog} --help`)\n")


def _chosen(argv: list[str]) -> str | None:
    """The command named on the command line (the first word that is not an option)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def _arguments(name: str):
    module, function = COMMANDS[name][0].split(":")
    return getattr(importlib.import_module(module), function)


def build_parser(only: str | None = None, full: bool = False) -> argparse.ArgumentParser:
    """The parser; the arguments of command ``only`` (every command's with ``full``), the others listed by name."""
    parser = _Parser(prog="segflow", description=__doc__, epilog=_epilog(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, text) in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text)
        if full or name == only:
            _arguments(name)(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(only=_chosen(argv)).parse_args(argv)
    except SystemExit as exc:  # argparse answered (--help, or a usage error it printed): its exit code
        return exc.code if isinstance(exc.code, int) else 2
    from segflow.errors import SegflowError

    try:
        from segflow.settings import get_settings

        get_settings()  # a bad SEGFLOW_* setting is reported before any work (and any heavy import)
        args.func(args)
    except BrokenPipeError:  # `segflow status | head`: the reader left, nothing to report
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
