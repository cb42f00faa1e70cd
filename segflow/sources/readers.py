"""File readers: put one delivered file into the temp table ``_incoming`` (every column text) and return
the lines that could not be parsed, each with its line number, reason and text.

``_incoming`` always has a ``_source_row`` column: the record's 1-based position among parsed records.
Built-in formats (Segment, GA4) are converted record by record instead (:func:`read_builtin`).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb

from segflow.sources.mapping import CsvOptions

Reject = tuple[int | None, str, str, str | None]  # (line number, reason code, reason, text as delivered)
EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
              ".parquet": "parquet", ".txt": "text"}
DEFAULT_MAX_RECORD_BYTES = 1 << 20
REJECT_TEXT_CHARS = 10_000  # a rejected line is kept up to this many characters (a 10 MB line is not copied)

csv.field_size_limit(2**31 - 1)
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes that did not decode (surrogateescape)


class FileRejected(Exception):
    """The file as a whole cannot be read as its format says (e.g. two columns with one name): nothing of it
    is loaded, the whole file is rejected with this reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def file_format(path: Path) -> str | None:
    """Reader by file name: csv | jsonl | parquet | text (None if unknown)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return EXTENSIONS.get(suffixes[-1]) if suffixes else None


def shown(text: str | None) -> str | None:
    """A rejected line as stored in meta.load_rejects: the first REJECT_TEXT_CHARS characters."""
    if text is None or len(text) <= REJECT_TEXT_CHARS:
        return text
    return f"{text[:REJECT_TEXT_CHARS]}... [{len(text) - REJECT_TEXT_CHARS:,} more characters not kept]"


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


_OTHER_ENCODINGS = ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"), (b"\xfe\xff", "UTF-16"),
                    (b"\xff\xfe", "UTF-16"))


def check_utf8_signature(path: Path) -> None:
    """A file that starts with a UTF-16 or UTF-32 byte-order mark is in another encoding as a whole: read as
    UTF-8 every line would be a reject (and its 0x0A bytes would invent lines), so the file is rejected."""
    with _open_binary(path) as fh:
        start = fh.read(4)
    for mark, encoding in _OTHER_ENCODINGS:
        if start.startswith(mark):
            raise FileRejected("not_utf8", f"the file is {encoding} (it starts with a {encoding} byte-order mark); "
                               "segflow reads UTF-8: re-export the file as UTF-8")


def _is_empty(path: Path) -> bool:
    with _open_binary(path) as fh:
        return not fh.read(4096).strip()


def _lines(path: Path, max_record_bytes: int) -> Iterator[tuple[int, str | None, str, str | None]]:
    """(line number, decoded text or None, reason code, reason) for every non-blank line, decoded strictly as
    UTF-8: an undecodable byte or an over-long line is a reject, never replaced by U+FFFD or cut."""
    with _open_binary(path) as fh:
        for number, raw in enumerate(fh, start=1):
            data = raw.rstrip(b"\r\n")
            if not data.strip():
                continue
            if number == 1 and data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]  # a UTF-8 byte-order mark is not part of the first record
            display = data.decode("utf-8", errors="replace")
            if len(data) > max_record_bytes:
                yield number, display, "record_too_large", (
                    f"record is {len(data):,} bytes, more than the {max_record_bytes:,} allowed "
                    "(SEGFLOW_LOAD_MAX_RECORD_BYTES)")
                continue
            try:
                yield number, data.decode("utf-8"), "", None
            except UnicodeDecodeError as exc:
                yield number, display, "invalid_utf8", (
                    f"not valid UTF-8: byte 0x{data[exc.start]:02X} at byte {exc.start + 1} of the line "
                    "(segflow reads UTF-8; re-export the file as UTF-8)")


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


def check_names(names: list[str], where: str) -> list[str]:
    """Column names as a file gives them: blank ones become ``column<N>``; two columns whose names differ only
    in case or surrounding blanks make the file unreadable (which one is the event id?)."""
    out, seen = [], {}
    for position, name in enumerate(names, start=1):
        name = name.strip() or f"column{position}"
        key = name.lower()
        if key in seen:
            raise FileRejected("duplicate_column", f"the {where} names column {name!r} twice (columns {seen[key]} "
                               f"and {position}); rename one so each column has one meaning")
        seen[key] = position
        out.append(name)
    return out


def _header_text(path: Path):
    """The file as text for reading its header: line breaks untranslated (so CR-only files split too), a byte
    that is not UTF-8 kept as a surrogate (so a bad byte deep in the file does not fail the header)."""
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", errors="surrogateescape", newline="")


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
    if _is_empty(path):
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
    with _open_binary(path) as fh:
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
    for number, text, code, reason in _lines(path, max_record_bytes):
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
        _from_records(con, records, rows)
    return rejects


def _object(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"key {twice[0]!r} appears twice in one object")
    return dict(pairs)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def json_records(path: Path, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
                 ) -> Iterator[tuple[int, str, dict | None, str, str | None]]:
    """(line number, text, object or None, reason code, reason) for every non-blank line. Numbers stay text
    (exact as delivered); a key given twice, NaN/Infinity, a line that is not an object are rejects."""
    check_utf8_signature(path)
    for number, text, code, reason in _lines(path, max_record_bytes):
        if reason:
            yield number, text, None, code, reason
            continue
        try:
            obj = json.loads(text, parse_float=str, parse_int=str, parse_constant=_no_constant,
                             object_pairs_hook=_object)
        except json.JSONDecodeError as exc:
            yield number, text, None, "invalid_json", f"invalid JSON ({exc.msg} at column {exc.colno})"
            continue
        except ValueError as exc:
            yield number, text, None, "invalid_json", f"invalid JSON ({exc})"
            continue
        if not isinstance(obj, dict):
            yield number, text, None, "not_an_object", "JSON line is not an object"
            continue
        yield number, text, obj, "", None


def read_jsonl(con: duckdb.DuckDBPyConnection, path: Path, options: CsvOptions | None = None,
               max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> list[Reject]:
    """Top-level keys become columns; nested objects/arrays are kept as JSON text (dotted paths read them)."""
    records, rows, rejects = [], [], []
    for number, text, obj, code, reason in json_records(path, max_record_bytes):
        if obj is None:
            rejects.append((number, code, reason, shown(text)))
            continue
        if len({str(k).lower() for k in obj}) != len(obj):
            rejects.append((number, "duplicate_key", "two keys of the object differ only in case", shown(text)))
            continue
        records.append({str(k): (None if v is None else v if isinstance(v, str) else json.dumps(v))
                        for k, v in obj.items()})
        rows.append(len(records))
    if records:
        _from_records(con, records, rows)
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


READERS = {"csv": read_csv, "jsonl": read_jsonl, "parquet": read_parquet, "text": read_text}


def read_builtin(path: Path, fmt: str, adapter, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
                 ) -> tuple[dict[str, list[dict]], list[Reject], int]:
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
            rejects.append((number, "not_convertible", str(exc), shown(text)))
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
        for number, text, obj, code, reason in json_records(path, max_record_bytes):
            if obj is None:
                rejects.append((number, code, reason, shown(text)))
            else:
                take(number, obj, text)
    return out, rejects, converted
