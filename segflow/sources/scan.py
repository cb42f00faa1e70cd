"""Count a delivered file's records independently of the parser that loads it, and find damage.

The loader's balance (records in file = loaded + rejected) is only worth something if the left side is
measured without the code that produces the right side. So a file is counted here by a second, simpler
reader before it is parsed:

* CSV: records by Python's ``csv`` module (RFC 4180 quoting, so a quoted newline does not start a record),
  blank lines skipped, the header not counted. The loader parses with DuckDB's reader.
* JSON lines / whitespace text: non-blank lines (bytes, no decoding), minus the header for text.
* Parquet: the row count in the file's footer. The loader reads the row groups.

Compressed files (``.gz``) are counted on their decompressed stream. A stream that ends early or turns to
garbage (a truncated upload, a disk error) is **damage**: the readable part is kept in a temporary copy that
ends at the last complete line, the cut-off line is returned so the loader rejects it with a reason
(it may look valid — ``u12`` cut to ``u1`` — so it is never loaded), and the damage is recorded for the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

from segflow.sources.mapping import CsvOptions

_CHUNK = 1 << 20


@dataclass
class Scan:
    """What the independent count found. ``readable`` is the path the parser must read (the file itself,
    or a temporary copy of a damaged file's readable part, which the caller deletes)."""

    records: int | None          # None: the file could not be counted (e.g. an unreadable Parquet footer)
    readable: Path
    damage: str | None = None    # what is wrong with the file as a whole (records after it are unreadable)
    cut_line: tuple[int, str] | None = None  # (line number, text) of the line the damage cut off
    temporary: bool = False


def is_gzip(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


def _copy_readable(path: Path, tmp_dir: Path) -> tuple[Path, str | None, int]:
    """Decompress ``path`` into a temporary file as far as it can be read: (copy, damage or None, bytes).

    zlib is fed the compressed bytes directly (``gzip.open`` would drop the last partial block it decoded
    when the stream ends early); concatenated members are followed as gzip does."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    target = tmp_dir / (path.name[: -len(path.suffix)] + ".readable")
    written, damage = 0, None
    decoder = zlib.decompressobj(wbits=31)
    in_member = False
    with open(path, "rb") as src, open(target, "wb") as out:
        try:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                while chunk:
                    in_member = True
                    data = decoder.decompress(chunk)
                    out.write(data)
                    written += len(data)
                    if not decoder.eof:
                        break
                    in_member = False
                    chunk = decoder.unused_data  # the next gzip member
                    decoder = zlib.decompressobj(wbits=31)
                    if chunk and not chunk.strip(b"\0"):
                        chunk = b""  # zero padding after the last member (tape/block devices): not damage
            if in_member:
                damage = f"compressed stream ends early, after {written:,} bytes of data (a truncated file)"
        except zlib.error as exc:
            damage = f"compressed data is corrupt after {written:,} bytes of data ({exc})"
    if damage:
        damage += ": the records after that point cannot be read"
    return target, damage, written


def _cut_at_last_newline(path: Path) -> tuple[int, str] | None:
    """Truncate ``path`` after its last newline; return (line number, text) of what followed, if anything."""
    with open(path, "rb+") as fh:
        fh.seek(0, io.SEEK_END)
        size = fh.tell()
        position, tail = size, b""
        while position > 0:
            step = min(_CHUNK, position)
            fh.seek(position - step)
            block = fh.read(step)
            newline = block.rfind(b"\n")
            if newline >= 0:
                tail = block[newline + 1:] + tail
                position = position - step + newline + 1
                break
            tail = block + tail
            position -= step
        if not tail.strip():
            return None
        fh.truncate(position)
    lines = count_lines(path, blank=True)
    return lines + 1, tail.decode("utf-8", errors="replace")


def _open_binary(path: Path):
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def count_lines(path: Path, blank: bool = False) -> int:
    """Lines of a file (decompressed as it is read); without ``blank``, lines holding only whitespace are not
    counted."""
    count = 0
    with _open_binary(path) as fh:
        if blank:
            last = b""
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                count += chunk.count(b"\n")
                last = chunk
            return count + (1 if last and not last.endswith(b"\n") else 0)
        for line in fh:
            if line.strip():
                count += 1
    return count


def count_csv_records(path: Path, options: CsvOptions) -> int:
    """Data records of a CSV file by Python's csv module: quoted newlines stay inside their record, blank
    lines are skipped, the header (when the file has one) is not a record."""
    if options.delimiter == "whitespace":
        lines = count_lines(path)
        return max(lines - (1 if options.header else 0), 0)
    count = 0
    with io.TextIOWrapper(_open_binary(path), encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh, delimiter=options.delimiter, quotechar=options.quote or '"', doublequote=True,
                            strict=False)
        try:
            for record in reader:
                if any(field.strip() for field in record):
                    count += 1
        except csv.Error:
            count += 1  # e.g. a NUL byte or an unterminated quote at the end: one more (bad) record
    return max(count - (1 if options.header else 0), 0)


def parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _count(path: Path, reader: str, options: CsvOptions) -> int:
    if reader == "parquet":
        return parquet_rows(path)
    if reader == "csv":
        return count_csv_records(path, options)
    return max(count_lines(path) - (1 if reader == "text" and options.header else 0), 0)


def scan(path: Path, reader: str, options: CsvOptions, tmp_dir: Path) -> Scan:
    """Count ``path``'s records (``reader`` = csv | jsonl | text | parquet) and find damage.

    A compressed file is counted while it is decompressed; only a damaged one is copied (its readable part)."""
    try:
        return Scan(_count(path, reader, options), path)
    except (EOFError, gzip.BadGzipFile, zlib.error):
        if not is_gzip(path):
            raise
    readable, damage, _ = _copy_readable(path, tmp_dir)
    cut = _cut_at_last_newline(readable)
    # the cut-off line is a record of the delivery too (rejected by the loader, never parsed)
    return Scan(_count(readable, reader, options) + (1 if cut else 0), readable, damage, cut, temporary=True)
