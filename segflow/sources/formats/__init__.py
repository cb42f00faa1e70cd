"""Built-in source formats: adapters that turn one parsed record of a well-known export into canonical rows.

Each adapter is ``convert(record: dict) -> {stream: [row, ...]}`` where every row has exactly the columns of
``canonical.columns(stream)`` and text (or None) values; it raises ``FormatError`` for a record it cannot
convert. Adapters are pure: no I/O, no pandas/duckdb.
"""

from __future__ import annotations

from collections.abc import Callable

from segflow.sources.formats import ga4, segment
from segflow.sources.formats._common import FormatError

Adapter = Callable[[dict], dict[str, list[dict[str, str | None]]]]

ADAPTERS: dict[str, Adapter] = {"segment": segment.convert, "ga4": ga4.convert}

__all__ = ["ADAPTERS", "Adapter", "FormatError"]
