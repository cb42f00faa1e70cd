"""``segflow mapping`` and ``segflow quarantine``: describing a source, and what was kept out of the warehouse."""

from __future__ import annotations

import json

from segflow.errors import InputError


def _print(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_mapping(args) -> None:
    from pathlib import Path

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
