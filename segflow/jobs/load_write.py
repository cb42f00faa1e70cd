"""Writing one delivered file into raw: pick the reader, parse into ``_incoming``, select the canonical columns
(as they are, or through the mapping) and insert them into the stream's raw table."""

from __future__ import annotations

from pathlib import Path

import duckdb

from segflow.jobs.landing import Delivery
from segflow.sources import canonical
from segflow.sources.mapping import Mapping, MappingError
from segflow.sources.mapping_sql import compile_select, timestamp_failures
from segflow.sources.read_common import file_format
from segflow.sources.readers import READERS, read_builtin


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def reader_for(mapping: Mapping, path: Path) -> str | None:
    ext = file_format(path)
    if mapping.format == "canonical":
        return ext if ext in ("csv", "jsonl", "parquet") else None
    if mapping.format in ("segment", "ga4"):
        return ext if ext in ("jsonl", "parquet") else None
    if mapping.format in READERS and ext in (None, "text", mapping.format):
        return mapping.format
    return ext


def _canonical_select(stream: str, incoming: list[str], file_name: str) -> tuple[str, list[str]]:
    by_lower = {c.lower(): c for c in incoming if c != "_source_row"}
    wanted = canonical.columns(stream)
    missing = [c for c in canonical.REQUIRED[stream] if c not in by_lower]
    identity = canonical.IDENTITY_ANY.get(stream)
    if identity and not any(c in by_lower for c in identity):
        missing.append(" or ".join(identity))
    if missing:
        raise MappingError(
            f"{file_name} has no column {', '.join(missing)} of segflow's canonical {stream!r} schema (its "
            f"columns: {', '.join(c for c in incoming if c != '_source_row')}). Describe the file with a mapping: "
            "put a _mapping.yml in its folder or run `segflow load PATH --mapping FILE` (see `segflow load --help`).")
    cols = ", ".join(f"{_quote(by_lower[c])} as {_quote(c)}" if c in by_lower else f"null as {_quote(c)}"
                     for c in wanted)
    dropped = [c for low, c in by_lower.items() if low not in wanted]
    return f"select _source_row, {cols} from _incoming", dropped


def _write_stream(con: duckdb.DuckDBPyConnection, stream: str, load_id: str, file_name: str, select: str) -> int:
    cols = ", ".join(_quote(c) for c in canonical.columns(stream))
    # fetchall, not fetchone: DuckDB 2.0 keeps an unfinished result open and refuses the next unregister
    before = con.execute(f"select count(*) from raw.{stream} where _load_id = ?", [load_id]).fetchall()[0][0]
    con.execute(f"insert into raw.{stream} (_load_id, _source_file, _source_row, {cols}) "
                f"select ?, ?, _source_row, {cols} from ({select})", [load_id, file_name])
    return con.execute(f"select count(*) from raw.{stream} where _load_id = ?", [load_id]).fetchall()[0][0] - before


def stage_and_write(con: duckdb.DuckDBPyConnection, delivery: Delivery, readable: Path, load_id: str,
                     max_record_bytes: int) -> tuple[list, int, dict[str, int], list[str]]:
    """Read the file and write its rows: (rejects, records loaded, rows per stream, dropped columns)."""
    mapping, path = delivery.mapping, delivery.path
    reader = reader_for(mapping, path)
    if mapping.format in ("segment", "ga4"):
        import pyarrow as pa

        from segflow.sources.formats import ADAPTERS

        rows_by_stream, rejects, converted = read_builtin(readable, reader, ADAPTERS[mapping.format],
                                                          max_record_bytes)
        written = {}
        for stream, rows in rows_by_stream.items():
            columns = canonical.columns(stream)
            table = pa.table({"_source_row": pa.array([r["_source_row"] for r in rows], type=pa.int64()),
                              **{c: pa.array([r.get(c) for r in rows], type=pa.string()) for c in columns}})
            con.register("_converted", table)
            written[stream] = _write_stream(con, stream, load_id, path.name, "select * from _converted")
            con.unregister("_converted")
        return rejects, converted, written, []
    rejects = READERS[reader](con, readable, mapping.csv, max_record_bytes)
    if not con.execute("select 1 from duckdb_tables() where temporary and table_name = '_incoming'").fetchall():
        return rejects, 0, {}, []  # nothing parseable: every line is a reject
    incoming = [c for (c,) in con.execute("select column_name from (describe _incoming)").fetchall()]
    if mapping.format == "canonical":
        select, dropped = _canonical_select(mapping.stream, incoming, path.name)
    else:
        select = compile_select(mapping, incoming, file_name=path.name)
        used = mapping.referenced_columns()
        dropped = [c for c in incoming if c != "_source_row" and c.lower() not in used]
        bad = timestamp_failures(con, mapping)
        if bad:
            target, row, text = bad[0]
            raise MappingError(f"{path.name}: {target} matches no row (first offending row {row}: {text!r}); "
                               "check timestamp_format in the mapping")
    loaded = con.execute("select count(*) from _incoming").fetchall()[0][0]
    written = {mapping.stream: _write_stream(con, mapping.stream, load_id, path.name, select)}
    return rejects, loaded, written, dropped
