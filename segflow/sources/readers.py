"""File readers: put one delivered file into the temp table ``_incoming`` (every column text) and return
the lines that could not be parsed, each with its line number, reason and text.

``_incoming`` always has a ``_source_row`` column: the record's 1-based position among parsed records.
Built-in formats (Segment, GA4) are converted record by record instead (:func:`read_builtin`).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb

from segflow.sources.mapping import CsvOptions

Reject = tuple[int | None, str, str | None]
EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
              ".parquet": "parquet", ".txt": "text"}


def file_format(path: Path) -> str | None:
    """Reader by file name: csv | jsonl | parquet | text (None if unknown)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return EXTENSIONS.get(suffixes[-1]) if suffixes else None


def _open_text(path: Path):
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    return opener(path, "rt", encoding="utf-8", errors="replace", newline="")


def _is_empty(path: Path) -> bool:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        return not fh.read(4096).strip()


def _from_records(con: duckdb.DuckDBPyConnection, records: list[dict[str, str | None]], rows: list[int]) -> None:
    import pyarrow as pa

    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    data = {c: pa.array([r.get(c) for r in records], type=pa.string()) for c in columns}
    data["_source_row"] = pa.array(rows, type=pa.int64())
    con.register("_incoming_arrow", pa.table(data))
    con.execute("create or replace temp table _incoming as select * from _incoming_arrow")
    con.unregister("_incoming_arrow")


def read_csv(con: duckdb.DuckDBPyConnection, path: Path, options: CsvOptions) -> list[Reject]:
    if _is_empty(path):
        return []
    if options.delimiter == "whitespace":
        return read_text(con, path, options)
    con.execute("drop table if exists reject_errors; drop table if exists reject_scans")
    params: dict = {"all_varchar": True, "header": options.header, "store_rejects": True, "null_padding": False,
                    "delim": options.delimiter, "quote": options.quote}
    if options.column_names:
        params["names"] = options.column_names
    args = ", ".join(f"{k} = ${k}" for k in params)
    con.execute(f"create or replace temp table _incoming as select *, row_number() over () as _source_row "
                f"from read_csv($path, {args})", {"path": str(path), **params})
    rejects = con.execute(
        "select line, any_value(error_type || ': ' || error_message), any_value(csv_line) "
        "from reject_errors group by line order by line").fetchall()
    return [(line, f"unparseable CSV line ({reason})", text.strip("\r\n") if text else text)
            for line, reason, text in rejects]


def read_text(con: duckdb.DuckDBPyConnection, path: Path, options: CsvOptions) -> list[Reject]:
    """Whitespace-separated text (fields split on runs of blanks; first line the header unless names given)."""
    records, rows, rejects = [], [], []
    names = list(options.column_names or [])
    with _open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            fields = text.split()
            if not names:
                names = fields
                continue
            if len(fields) != len(names):
                rejects.append((number, f"expected {len(names)} fields, found {len(fields)}", text))
                continue
            records.append(dict(zip(names, fields, strict=True)))
            rows.append(len(records))
    if records:
        _from_records(con, records, rows)
    return rejects


def _json_lines(path: Path) -> Iterator[tuple[int, str, dict | None, str | None]]:
    """(line number, text, object or None, reason) for every non-blank line. Numbers stay text."""
    with _open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            try:
                obj = json.loads(text, parse_float=str, parse_int=str)
            except json.JSONDecodeError as exc:
                yield number, text, None, f"invalid JSON ({exc.msg} at column {exc.colno})"
                continue
            if not isinstance(obj, dict):
                yield number, text, None, "JSON line is not an object"
                continue
            yield number, text, obj, None


def read_jsonl(con: duckdb.DuckDBPyConnection, path: Path, options: CsvOptions | None = None) -> list[Reject]:
    """Top-level keys become columns; nested objects/arrays are kept as JSON text (dotted paths read them)."""
    records, rows, rejects = [], [], []
    for number, text, obj, reason in _json_lines(path):
        if obj is None:
            rejects.append((number, reason, text))
            continue
        records.append({str(k): (None if v is None else v if isinstance(v, str) else json.dumps(v))
                        for k, v in obj.items()})
        rows.append(len(records))
    if records:
        _from_records(con, records, rows)
    return rejects


def read_parquet(con: duckdb.DuckDBPyConnection, path: Path, options: CsvOptions | None = None) -> list[Reject]:
    con.execute("create or replace temp table _incoming as select * from read_parquet(?)", [str(path)])
    cols = con.execute("select column_name from (describe _incoming)").fetchall()
    casts = ", ".join(f'cast("{c}" as varchar) as "{c}"' for (c,) in cols)
    con.execute(f"create or replace temp table _incoming as select {casts}, row_number() over () as _source_row "
                "from _incoming")
    return []


READERS = {"csv": read_csv, "jsonl": read_jsonl, "parquet": read_parquet, "text": read_text}


def read_builtin(path: Path, fmt: str, adapter) -> tuple[dict[str, list[dict]], list[Reject], int]:
    """Convert every record with a built-in adapter: (rows per stream, rejects, records converted).

    Each output row carries ``_source_row`` = the line number (JSON) or row number (Parquet)."""
    from segflow.sources.formats import FormatError

    out: dict[str, list[dict]] = {}
    rejects: list[Reject] = []
    converted = 0

    def take(number: int, record: dict, text: str | None) -> None:
        nonlocal converted
        try:
            produced = adapter(record)
        except FormatError as exc:
            rejects.append((number, str(exc), text))
            return
        converted += 1
        for stream, rows in produced.items():
            out.setdefault(stream, []).extend({**row, "_source_row": number} for row in rows)

    if fmt == "parquet":
        import pyarrow.parquet as pq

        number = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            for record in batch.to_pylist():
                number += 1
                take(number, record, None)
    else:
        for number, text, obj, reason in _json_lines(path):
            if obj is None:
                rejects.append((number, reason, text))
            else:
                take(number, obj, text)
    return out, rejects, converted
