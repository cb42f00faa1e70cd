"""What every file reader shares: the reject tuple, whole-file rejects, strict UTF-8 lines, the record-size limit,
column-name checks and the ``_incoming`` temp table built from records."""


from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb

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


def open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


_OTHER_ENCODINGS = ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"), (b"\xfe\xff", "UTF-16"),
                    (b"\xff\xfe", "UTF-16"))


def check_utf8_signature(path: Path) -> None:
    """A file that starts with a UTF-16 or UTF-32 byte-order mark is in another encoding as a whole: read as
    UTF-8 every line would be a reject (and its 0x0A bytes would invent lines), so the file is rejected."""
    with open_binary(path) as fh:
        start = fh.read(4)
    for mark, encoding in _OTHER_ENCODINGS:
        if start.startswith(mark):
            raise FileRejected("not_utf8", f"the file is {encoding} (it starts with a {encoding} byte-order mark); "
                               "segflow reads UTF-8: re-export the file as UTF-8")


def is_empty(path: Path) -> bool:
    with open_binary(path) as fh:
        return not fh.read(4096).strip()


def strict_lines(path: Path, max_record_bytes: int) -> Iterator[tuple[int, str | None, str, str | None]]:
    """(line number, decoded text or None, reason code, reason) for every non-blank line, decoded strictly as
    UTF-8: an undecodable byte or an over-long line is a reject, never replaced by U+FFFD or cut."""
    with open_binary(path) as fh:
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


def records_table(con: duckdb.DuckDBPyConnection, records: list[dict[str, str | None]], rows: list[int]) -> None:
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
