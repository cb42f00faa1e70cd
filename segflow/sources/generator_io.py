"""Delivery and streaming output for the synthetic generator: one file per received day, bounded memory.

``Delivery`` turns each simulated event into what a drop zone receives: a received time (a share of it
late), at-least-once duplicates, malformed rows and deliberately broken lines; ``DayFiles`` writes them.

Rows arrive one at a time (customer after customer) and go straight into the file of their day. CSV and
JSONL files are opened lazily and appended to. Parquet rows are buffered per day and written as row groups
through one ``ParquetWriter`` per day; the rows buffered across all days stay under a fixed bound, so
memory does not grow with the size of the run. Flushing never changes which rows a file holds or their
order, and it depends only on the sequence of rows, so the same input gives byte-identical files.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segflow.sources.generator import GeneratorConfig

# parquet: rows buffered across all days before the largest buffers are flushed, and the row-group size
# at which one day's buffer is flushed on its own (a buffered event row costs about 1.5 KB)
MAX_BUFFERED_ROWS = 100_000
ROW_GROUP_ROWS = 50_000
TEXT_BUFFER_BYTES = 1 << 16

MALFORMED_KINDS = (
    "missing_event_id",
    "unknown_event_type",
    "invalid_timestamp",
    "missing_identity",
    "invalid_number",
    "non_positive_quantity",
)
"""Row-level faults; each maps to the quarantine reason of the same name in dbt staging."""


def ts(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds") + "Z"


def stringify(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return ts(value)
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else repr(value)
    return str(value)


class DayFiles:
    """``<folder>/<prefix>_YYYY-MM-DD.<fmt>`` for every day that receives a row, in arrival order.

    ``write(day, row, broken=True)`` truncates that CSV / JSONL line to half its length (a deliberately
    broken line); the caller decides which lines break, so the decision never depends on buffering here.
    Parquet has no lines to break. Use as a context manager (or call ``close``) to finish every file.
    """

    def __init__(self, folder: Path, prefix: str, columns: tuple[str, ...], fmt: str,
                 max_buffered_rows: int | None = None, row_group_rows: int | None = None) -> None:
        if fmt not in ("csv", "jsonl", "parquet"):
            raise ValueError(f"unknown format {fmt!r}")
        self.folder = Path(folder)
        self.prefix = prefix
        self.columns = columns
        self.fmt = fmt
        self.max_buffered_rows = max(1, max_buffered_rows or MAX_BUFFERED_ROWS)
        self.row_group_rows = max(1, row_group_rows or ROW_GROUP_ROWS)
        self.days: set[date] = set()
        self._text: dict[date, tuple[IO[str], Any]] = {}
        self._buffers: dict[date, list[tuple[str | None, ...]]] = {}
        self._parquet: dict[date, object] = {}
        self._buffered = 0

    @property
    def files(self) -> int:
        return len(self.days)

    def path(self, day: date) -> Path:
        return self.folder / f"{self.prefix}_{day.isoformat()}.{self.fmt}"

    def _partial(self, day: date) -> Path:
        """Where a file is written until it is complete: a hidden name the loader never reads."""
        return self.folder / f".{self.path(day).name}.partial"

    def write(self, day: date, row: dict[str, str | None], broken: bool = False) -> None:
        if self.fmt == "parquet":
            self._write_parquet(day, row)
            return
        entry = self._text.get(day)
        if entry is None:
            entry = self._open_text(day)
        fh, writer = entry
        if writer is not None:
            values = [row.get(c) or "" for c in self.columns]
            if broken:
                values = values[: len(values) // 2]  # a truncated line: too few columns
            writer.writerow(values)
        else:
            line = json.dumps({c: v for c in self.columns if (v := row.get(c)) is not None},
                              separators=(",", ":"))
            if broken:
                line = line[: len(line) // 2]  # a truncated line: invalid JSON
            fh.write(line + "\n")

    def _open_text(self, day: date) -> tuple[IO[str], Any]:
        self.days.add(day)
        fh = open(self._partial(day), "w", newline="" if self.fmt == "csv" else None,
                  buffering=TEXT_BUFFER_BYTES)
        writer = None
        if self.fmt == "csv":
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(self.columns)
        self._text[day] = (fh, writer)
        return fh, writer

    # -- parquet ---------------------------------------------------------------------------------
    def _write_parquet(self, day: date, row: dict[str, str | None]) -> None:
        self.days.add(day)
        buffer = self._buffers.setdefault(day, [])
        buffer.append(tuple(row.get(c) for c in self.columns))
        self._buffered += 1
        if len(buffer) >= self.row_group_rows:
            self._flush(day)
        elif self._buffered > self.max_buffered_rows:
            # flush the fullest days (earliest day first on ties) until half the bound is free
            for fullest in sorted(self._buffers, key=lambda d: (-len(self._buffers[d]), d)):
                if self._buffered <= self.max_buffered_rows // 2:
                    break
                self._flush(fullest)

    def _flush(self, day: date) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = self._buffers.pop(day, [])
        if not rows:
            return
        self._buffered -= len(rows)
        schema = pa.schema([(c, pa.string()) for c in self.columns])
        columns = list(zip(*rows, strict=True))
        del rows
        table = pa.table([pa.array(col, type=pa.string()) for col in columns], schema=schema)
        writer = self._parquet.get(day)
        if writer is None:
            writer = self._parquet[day] = pq.ParquetWriter(self._partial(day), schema)
        writer.write_table(table, row_group_size=len(table))

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Flush and close every file (buffers in day order, so the result does not depend on dict order)."""
        try:
            for day in sorted(self._buffers):
                self._flush(day)
        finally:
            for fh, _ in self._text.values():
                fh.close()
            for writer in self._parquet.values():
                writer.close()
            self._text.clear()
            self._parquet.clear()
        # the producer contract (docs/data-contract.md): complete files appear under their name at once, and a
        # <name>.ready marker says they are complete, so the loader takes them without waiting for them to age
        for day in sorted(self.days):
            if self._partial(day).exists():
                self._partial(day).replace(self.path(day))
                self.path(day).with_name(self.path(day).name + ".ready").touch()

    def __enter__(self) -> DayFiles:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _corrupt(row: dict[str, str | None], kind: str, rng: random.Random) -> None:
    if kind == "missing_event_id":
        row["event_id"] = None
    elif kind == "unknown_event_type":
        row["event_type"] = rng.choice(["pageview_v2", "PAGE VIEW", "clickk"])
    elif kind == "invalid_timestamp":
        row["occurred_at"] = rng.choice(["yesterday", "2025-13-45T25:61:00Z", "1700000000000"])
    elif kind == "missing_identity":
        row["anonymous_id"] = None
        row["user_id"] = None
    elif kind == "invalid_number":
        row["price"] = rng.choice(["12,50€", "n/a", "1.2.3"])
        row["event_type"] = "product_view"
    elif kind == "non_positive_quantity":
        row["event_type"] = "add_to_cart"
        row["quantity"] = rng.choice(["0", "-1"])
        row["price"] = row.get("price") or "9.99"


class Delivery:
    """Delivers one customer's events at a time into ``events`` and counts what it did.

    One random stream per purpose (delivery faults, broken lines), each drawn in customer / event order
    only, so file buffering never changes a decision. Events received after the period end are undelivered.
    A delivered event may be late and has at most one of: a duplicate, a malformed row, a broken line.
    """

    def __init__(self, cfg: GeneratorConfig, events: DayFiles) -> None:
        self.cfg = cfg
        self.events = events
        self.rng = random.Random(f"{cfg.seed}:delivery")
        self.broken_rng = random.Random(f"{cfg.seed}:broken")
        self.break_lines = cfg.format != "parquet" and cfg.broken_line_share > 0  # parquet has no lines
        self.period_end = datetime.combine(cfg.end, datetime.min.time())
        self.generated = self.late = self.duplicates = self.undelivered = self.broken_lines = 0
        self.malformed: Counter[str] = Counter()

    def deliver(self, events: list[dict]) -> None:
        cfg, rng = self.cfg, self.rng
        for event in events:
            self.generated += 1
            occurred = event["occurred_at"]
            if rng.random() < cfg.late_share:
                received = occurred + timedelta(hours=rng.uniform(26, 96))
                self.late += 1
            else:
                received = occurred + timedelta(seconds=rng.uniform(0.2, 30))
            if received >= self.period_end:
                self.undelivered += 1
                continue
            row = {k: v if type(v) is str else stringify(v) for k, v in event.items() if v is not None}
            row["received_at"] = ts(received)
            copies = 1
            if rng.random() < cfg.duplicate_share:
                # at-least-once delivery: the identical row arrives again
                copies = 2
                self.duplicates += 1
            elif rng.random() < cfg.malformed_share:
                kind = rng.choice(MALFORMED_KINDS)
                _corrupt(row, kind, rng)
                self.malformed[kind] += 1
            elif self.break_lines and self.broken_rng.random() < cfg.broken_line_share:
                # a truncated line is rejected at load; only otherwise clean rows break, so the
                # duplicates and malformed rows the report counts are exactly those that arrive intact
                self.events.write(received.date(), row, broken=True)
                self.broken_lines += 1
                continue
            for _ in range(copies):
                self.events.write(received.date(), row)
