"""``segflow mapping check``: try a mapping on a file without touching the warehouse.

The file is read with the same reader the loader uses into an in-memory DuckDB, the mapping is compiled
and applied, and the result is checked the way staging will check it. Hard errors (a column the file does
not have, a timestamp format that matches no row, an invalid expression) raise :class:`MappingError`
naming the column and the first offending row; softer findings (unknown event types, rows without an
identity) are listed with counts and the first row, because staging will quarantine those rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from segflow.errors import InputError
from segflow.sources import canonical
from segflow.sources.mapping import Mapping, MappingError, load_mapping
from segflow.sources.mapping_sql import compile_select, parses, timestamp_failures

SAMPLE_ROWS = 10_000


@dataclass
class CheckResult:
    mapping: str
    stream: str
    file: str
    rows_checked: int
    preview: list[dict] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return self.__dict__


def _event_types() -> set[str]:
    from expectations.suites.staged_events import event_types

    return set(event_types())


def _findings(con: duckdb.DuckDBPyConnection, stream: str) -> list[str]:
    """What staging would quarantine in the mapped sample, with counts and the first row."""
    out = []
    checks: list[tuple[str, str]] = [(f"{c} is empty", f"{c} is null") for c in canonical.REQUIRED[stream]]
    if stream in canonical.IDENTITY_ANY:
        checks.append(("no user_id, anonymous_id or email",
                       "user_id is null and anonymous_id is null and email is null"))
        known = ", ".join(f"'{t}'" for t in sorted(_event_types()))
        checks.append(("event_type is not a canonical type (see dbt_project/seeds/event_types.csv)",
                       f"event_type is not null and lower(trim(event_type)) not in ({known})"))
        checks.append(("quantity is not a whole number (staging quarantines it as invalid_number)",
                       "quantity is not null and not regexp_full_match(trim(quantity), '[+-]?[0-9]+')"))
        for column in ("price", "revenue", "scroll_depth", "time_on_page_s"):
            checks.append((f"{column} is not a number (e.g. a decimal comma: use replace({column}, ',', '.'))",
                           f"{column} is not null and try_cast(trim({column}) as double) is null"))
    for column in canonical.columns(stream):
        if column in canonical.TIMESTAMP_COLUMNS:
            checks.append((f"{column} does not parse as a timestamp",
                           f"{column} is not null and not {parses(column)}"))
    for label, condition in checks:
        count, first = con.execute(
            f"select count(*), min(_source_row) from _mapped where {condition}").fetchone()
        if count:
            example = con.execute("select * exclude (_source_row) from _mapped where _source_row = ?",
                                  [first]).fetchone()
            names = [c for (c,) in con.execute("select column_name from (describe _mapped)").fetchall()
                     if c != "_source_row"]
            shown = {k: v for k, v in zip(names, example, strict=True) if v is not None}
            fields = ", ".join(f"{k}={v}" for k, v in shown.items())
            out.append(f"{count} of the sampled rows: {label} (first: row {first}: {fields})")
    return out


def check(mapping_file: Path, data_file: Path, preview_rows: int = 5) -> CheckResult:
    mapping: Mapping = load_mapping(mapping_file)
    data_file = Path(data_file)
    if not data_file.is_file():
        raise InputError(f"no such file: {data_file}")
    con = duckdb.connect()
    try:
        return _check(con, mapping, data_file, preview_rows)
    finally:
        con.close()


def _check(con: duckdb.DuckDBPyConnection, mapping: Mapping, data_file: Path, preview_rows: int) -> CheckResult:
    from segflow.jobs.load_write import reader_for
    from segflow.sources.read_common import file_format
    from segflow.sources.readers import READERS, read_builtin

    result = CheckResult(mapping=mapping.name, stream=mapping.stream, file=data_file.name, rows_checked=0)
    if mapping.format in ("segment", "ga4"):
        from segflow.sources.formats import ADAPTERS

        rows_by_stream, rejects, converted = read_builtin(data_file, file_format(data_file) or "jsonl",
                                                         ADAPTERS[mapping.format])
        result.rows_checked = converted + len(rejects)
        result.findings = [f"line {line}: {reason}" for line, reason, _ in rejects[:20]]
        for stream, rows in rows_by_stream.items():
            result.findings.append(f"{len(rows)} rows for stream {stream}")
        result.preview = [{k: v for k, v in r.items() if v is not None}
                          for r in rows_by_stream.get("events", [])[:preview_rows]]
        return result
    reader = reader_for(mapping, data_file)
    if reader is None:
        raise MappingError(f"{data_file.name}: unknown file type; set format in the mapping")
    rejects = READERS[reader](con, data_file, mapping.csv)
    if not con.execute("select 1 from duckdb_tables() where table_name = '_incoming'").fetchall():
        raise MappingError(f"{data_file.name}: no readable row ({len(rejects)} unparseable lines)")
    con.execute(f"delete from _incoming where _source_row > {SAMPLE_ROWS}")
    incoming = [c for (c,) in con.execute("select column_name from (describe _incoming)").fetchall()]
    if mapping.format == "canonical":
        raise InputError("a canonical stream needs no mapping check; `segflow load` reports missing columns")
    select = compile_select(mapping, incoming, file_name=data_file.name)
    try:
        bad = timestamp_failures(con, mapping)
    except duckdb.Error as exc:
        raise MappingError(f"the mapping does not run on {data_file.name}: {str(exc).splitlines()[0]}") from None
    if bad:
        target, row, text = bad[0]
        raise MappingError(f"{target} matches no row (first offending row {row}: {text!r}); check its "
                           "timestamp_format")
    try:
        con.execute(f"create table _mapped as {select}")
    except duckdb.Error as exc:
        raise MappingError(f"the mapping does not run on {data_file.name}: {str(exc).splitlines()[0]}") from None
    result.rows_checked = con.execute("select count(*) from _mapped").fetchone()[0]
    names = [c for (c,) in con.execute("select column_name from (describe _mapped)").fetchall()]
    for row in con.execute(f"select * from _mapped order by _source_row limit {int(preview_rows)}").fetchall():
        result.preview.append({k: v for k, v in zip(names, row, strict=True) if v is not None})
    result.findings = _findings(con, mapping.stream)
    result.findings += [f"line {line}: {reason}" for line, reason, _ in rejects[:20]]
    used = mapping.referenced_columns()
    result.dropped_columns = [c for c in incoming if c != "_source_row" and c.lower() not in used]
    return result
