"""``segflow mapping`` and ``segflow quarantine``: describing a source, and what was kept out of the warehouse."""

from __future__ import annotations

import argparse
import json

from segflow.cli_types import count
from segflow.errors import InputError


def _print(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def mapping_args(p: argparse.ArgumentParser) -> None:
    from segflow.cli_help import MAPPING_HELP

    p.description = MAPPING_HELP
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("action", choices=["check", "schema", "list"],
                   help="check MAPPING.yml DATA_FILE | schema (the mapping JSON Schema) | list (shipped mappings)")
    p.add_argument("files", nargs="*", help="check: MAPPING.yml DATA_FILE")
    p.add_argument("--rows", type=count(1), default=5, help="check: rows to print (default 5)")
    p.add_argument("--output", help="schema: write to this file instead of stdout")
    p.set_defaults(func=cmd_mapping)


def quarantine_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "list: rows kept out per reason. show REASON: the rows. replay [REASON]: reload the files holding them "
        "with their source's current mapping (after a mapping fix), replacing the earlier load of each file so "
        "nothing is loaded twice; then `segflow build` re-stages them. A rule fix (seed, setting) needs no replay: "
        "the next build re-stages every row.")
    p.add_argument("action", choices=["list", "show", "replay"], help="list | show REASON | replay [REASON]")
    p.add_argument("reason", nargs="?", help="a reason code (see `segflow quarantine list`); replay: all if omitted")
    p.add_argument("--limit", type=count(1), default=20, help="show: rows to print (default 20)")
    p.add_argument("--source", help="replay: only files of this source (landing folder)")
    p.add_argument("--mapping", help="replay: the fixed mapping for files loaded from outside landing/")
    p.add_argument("--dry-run", action="store_true", help="replay: list the files, reload nothing")
    p.add_argument("--json", action="store_true", help="list: JSON output")
    p.set_defaults(func=cmd_quarantine)


def cmd_mapping(args) -> None:
    from pathlib import Path

    if args.action == "check" and len(args.files) != 2:
        raise InputError("usage: segflow mapping check MAPPING.yml DATA_FILE")
    from segflow.sources.mapping import json_schema

    if args.action == "schema":
        text = json.dumps(json_schema(), indent=2) + "\n"
        if args.output:
            Path(args.output).write_text(text)
            print(f"JSON Schema written to {args.output}")
        else:
            print(text, end="")
    elif args.action == "list":
        from segflow.sources.mapping import load_mapping

        root = Path(__file__).resolve().parent / "mappings"
        for path in sorted(root.rglob("*.yml")):
            mapping = load_mapping(path)
            print(f"{path}\n    {mapping.name} -> stream {mapping.stream} ({mapping.format}): {mapping.description or ''}")
    else:
        from segflow.jobs.mapping_check import check

        if len(args.files) != 2:
            raise InputError("usage: segflow mapping check MAPPING.yml DATA_FILE")
        result = check(Path(args.files[0]), Path(args.files[1]), preview_rows=args.rows)
        print(f"mapping {result.mapping} -> stream {result.stream}: {result.rows_checked} rows of "
              f"{result.file} checked")
        for i, row in enumerate(result.preview, start=1):
            print(f"  row {row.get('_source_row', i)}: " + ", ".join(
                f"{k}={v}" for k, v in row.items() if k != "_source_row"))
        if result.dropped_columns:
            print(f"not used (not stored): {', '.join(result.dropped_columns)}")
        if result.findings:
            print("staging will quarantine or note:")
            for finding in result.findings:
                print(f"  - {finding}")
        else:
            print("no problems found in the sample")


def cmd_quarantine(args) -> None:
    from pathlib import Path

    if args.action == "show" and not args.reason:
        raise InputError("usage: segflow quarantine show REASON [--limit N] (reasons: `segflow quarantine list`)")

    from segflow.jobs import quarantine

    if args.action == "list":
        rows = quarantine.summary()
        if args.json:
            _print(rows)
            return
        if not rows:
            print("nothing kept out: no load rejects, no quarantined rows")
        for r in rows:
            print(f"{r['where']:<28} {r['reason']:<26} {r['rows']:>9,} rows in {r['files']} files")
    elif args.action == "show":
        if not args.reason:
            raise InputError("usage: segflow quarantine show REASON [--limit N] (reasons: `segflow quarantine list`)")
        _print(quarantine.show(args.reason, limit=args.limit))
    else:
        result = quarantine.replay(args.reason, source=args.source,
                                   mapping_file=Path(args.mapping) if args.mapping else None, dry_run=args.dry_run)
        _print(result.as_dict())
