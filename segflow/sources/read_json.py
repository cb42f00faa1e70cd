"""JSON lines readers: canonical / mapped JSON lines into ``_incoming``, and the built-in formats (Segment, GA4)
converted record by record. Values stay text exactly as delivered; a line that is not one JSON object (or a
key given twice, NaN / Infinity) is a reject with its line number and reason code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb

from segflow.sources import read_common
from segflow.sources.mapping import CsvOptions
from segflow.sources.read_common import DEFAULT_MAX_RECORD_BYTES, Reject, shown


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
    read_common.check_utf8_signature(path)
    for number, text, code, reason in read_common.strict_lines(path, max_record_bytes):
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
        read_common.records_table(con, records, rows)
    return rejects


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
