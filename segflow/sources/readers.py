"""File readers: put one delivered file into the temp table ``_incoming`` (every column text) and return
the lines that could not be parsed, each with its line number, reason and text.

``_incoming`` always has a ``_source_row`` column: the record's 1-based position among parsed records.
Built-in formats (Segment, GA4) are converted record by record instead (:func:`read_builtin`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb

from segflow.sources.mapping import CsvOptions
from segflow.sources.read_common import (
    _NOT_UTF8,
    DEFAULT_MAX_RECORD_BYTES,
    FileRejected,
    Reject,
    check_names,
    check_utf8_signature,
    file_format,
    is_empty,
    open_binary,
    records_table,
    shown,
    strict_lines,
)
from segflow.sources.read_json import json_records, read_builtin, read_jsonl


def _header_text(path: Path):
    """The file as text for reading its header: line breaks untranslated (so CR-only files split too), a byte
    that is not UTF-8 kept as a surrogate (so a bad byte deep in the file does not fail the header)."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", errors="surrogateescape", newline="")


def _csv_header(path: Path, options: CsvOptions) -> tuple[list[str], int]:
    """(column names, physical lines before the first data line)."""
    if options.column_names and not options.header:
        return check_names(list(options.column_names), "mapping's column_names"), 0
    with _header_text(path) as text:
        reader = csv.reader(text, delimiter=options.delimiter, quotechar=options.quote or '"')
        try:
            header = next((record for record in reader if any(f.strip() for f in record)), None)
        except csv.Error as exc:
            raise FileRejected("invalid_header", f"the header line cannot be read as CSV ({exc})") from None
        consumed = reader.line_num
    if header is None:
        return [], consumed
    if any(_NOT_UTF8.search(name) for name in header):
        raise FileRejected("invalid_header", "the header line is not valid UTF-8 (segflow reads UTF-8; re-export "
                           "the file as UTF-8)")
    if options.column_names:
        return check_names(list(options.column_names), "mapping's column_names"), consumed
    return check_names(header, "header"), consumed


_CSV_CODES = {"LINE SIZE OVER MAXIMUM": "record_too_large", "INVALID ENCODING": "invalid_utf8",
              "UNQUOTED VALUE": "csv_unterminated_quote", "TOO MANY COLUMNS": "csv_too_many_columns",
              "MISSING COLUMNS": "csv_missing_columns"}


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read_csv(con: duckdb.DuckDBPyConnection, path: Path, options: CsvOptions,
             max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> list[Reject]:
    """DuckDB's CSV reader with the columns given (no sniffing: a bad line is rejected on its own instead of
    failing the dialect detection of the whole file), every value text, every bad line a reject."""
    if is_empty(path):
        return []
    check_utf8_signature(path)
    if options.delimiter == "whitespace":
        return read_text(con, path, options, max_record_bytes)
    names, skip = _csv_header(path, options)
    if not names:
        return []
    con.execute("drop table if exists reject_errors; drop table if exists reject_scans")
    columns = "{" + ", ".join(f"{_sql_text(n)}: 'VARCHAR'" for n in names) + "}"
    buffer = max(16 * max_record_bytes, 16 << 20)
    con.execute(
        f"create or replace temp table _incoming as select *, row_number() over () as _source_row "
        f"from read_csv(?, auto_detect = false, columns = {columns}, header = false, skip = {int(skip)}, "
        f"delim = ?, quote = ?, escape = ?, store_rejects = true, null_padding = false, strict_mode = true, "
        f"max_line_size = {int(max_record_bytes)}, buffer_size = {int(buffer)})",
        [str(path), options.delimiter, options.quote, options.quote])
    rejects = con.execute(
        "select line, min(line_byte_position), any_value(error_type), any_value(error_message), "
        "any_value(csv_line) from reject_errors group by line order by line").fetchall()
    lines = _line_numbers(path, [position for _, position, *_ in rejects if position is not None])
    out: list[Reject] = []
    for record_line, position, kind, message, text in rejects:
        line = lines.get(position, record_line)
        code = _CSV_CODES.get(kind, "csv_unparseable")
        reason = f"unparseable CSV line ({kind}: {message})"
        if code == "record_too_large":
            reason = (f"record longer than the {max_record_bytes:,} bytes allowed (SEGFLOW_LOAD_MAX_RECORD_BYTES); "
                      f"{message}")
        out.append((line, code, reason, shown(text.strip("\r\n") if text else text)))
    return out


def _line_numbers(path: Path, positions: list[int]) -> dict[int, int]:
    """Physical line number (1-based) of each byte position: DuckDB numbers records, so after a quoted field
    with a line break its numbers are behind the line an operator opens in an editor."""
    found: dict[int, int] = {}
    with open_binary(path) as fh:
        head = fh.read(1 << 20)
        # line breaks are LF (CRLF included) or, in a file whose lines end in CR only, CR
        newline = b"\r" if b"\r" in head and b"\n" not in head else b"\n"
        data, offset, lines = head, 0, 1
        for position in sorted(set(positions)):
            while offset + len(data) < position:
                lines += data.count(newline)
                offset += len(data)
                data = fh.read(1 << 20)
                if not data:
                    break
            found[position] = lines + data.count(newline, 0, position - offset)
    return found


def read_text(con: duckdb.DuckDBPyConnection, path: Path, options: CsvOptions,
              max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> list[Reject]:
    """Whitespace-separated text (fields split on runs of blanks; first line the header unless names given)."""
    check_utf8_signature(path)
    records, rows, rejects = [], [], []
    names = check_names(list(options.column_names), "mapping's column_names") if options.column_names else []
    skip_header = options.header
    for number, text, code, reason in strict_lines(path, max_record_bytes):
        if reason:
            rejects.append((number, code, reason, shown(text)))
            continue
        fields = text.split()
        if skip_header:
            skip_header = False
            if not names:
                names = check_names(fields, "header")
            continue
        if not names:
            names = check_names(fields, "header")
            continue
        if len(fields) != len(names):
            rejects.append((number, "wrong_field_count", f"expected {len(names)} fields, found {len(fields)}",
                            shown(text)))
            continue
        records.append(dict(zip(names, fields, strict=True)))
        rows.append(len(records))
    if records:
        records_table(con, records, rows)
    return rejects


def read_parquet(con: duckdb.DuckDBPyConnection, path: Path, options: CsvOptions | None = None,
                 max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> list[Reject]:
    import pyarrow.parquet as pq

    # the names as the file gives them: DuckDB would rename a second 'EVENT_ID' to 'EVENT_ID_1' silently
    check_names(pq.read_schema(path).names, "Parquet schema")
    con.execute("create or replace temp table _incoming as select * from read_parquet(?)", [str(path)])
    names = [c for (c,) in con.execute("select column_name from (describe _incoming)").fetchall()]
    check_names(names, "Parquet schema")
    casts = ", ".join(f'cast("{c}" as varchar) as "{c}"' for c in names)
    con.execute(f"create or replace temp table _incoming as select {casts}, row_number() over () as _source_row "
                "from _incoming")
    return []



__all__ = ["READERS", "FileRejected", "check_names", "file_format", "json_records", "read_builtin", "shown"]

READERS = {"csv": read_csv, "jsonl": read_jsonl, "parquet": read_parquet, "text": read_text}
