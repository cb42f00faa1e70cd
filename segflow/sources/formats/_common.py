"""Helpers shared by the built-in format adapters: the error type, text conversion and row building."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from segflow.sources import canonical

Row = dict[str, str | None]
Rows = dict[str, list[Row]]


class FormatError(ValueError):
    """A record that cannot be converted; the message is a short human reason."""


def text(value: Any) -> str | None:
    """Canonical text of a delivered value: str as is (blank -> None), numbers via str(), bools lowercase."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


def get(record: Any, *path: str) -> Any:
    """``record[path[0]][path[1]]...`` or None when any step is missing or not a mapping."""
    for key in path:
        if not isinstance(record, Mapping):
            return None
        record = record.get(key)
    return record


def first(*values: Any) -> str | None:
    """Text of the first value that is not None/blank."""
    for value in values:
        converted = text(value)
        if converted is not None:
            return converted
    return None


def row(stream: str, **values: Any) -> Row:
    """One row of ``stream`` with exactly its canonical columns (unset columns None, values as text)."""
    columns = canonical.columns(stream)
    unknown = set(values) - set(columns)
    if unknown:
        raise KeyError(f"not columns of {stream}: {sorted(unknown)}")
    return {column: text(values.get(column)) for column in columns}


def collect(**streams: list[Row]) -> Rows:
    """The result dict: only the streams that got rows."""
    return {stream: rows for stream, rows in streams.items() if rows}
