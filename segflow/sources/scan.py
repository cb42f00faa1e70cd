"""Count a delivered file's records independently of the parser that loads it, and find damage.

The loader's balance (records in file = loaded + rejected) is only worth something if the left side is
measured without the code that produces the right side. So a file is counted here by a second, simpler
reader before it is parsed:

* CSV: records by Python's ``csv`` module (RFC 4180 quoting, so a quoted newline does not start a record),
  blank lines skipped, the header not counted. The loader parses with DuckDB's reader.
* JSON lines / whitespace text: non-blank lines (bytes, no decoding), minus the header for text.
* Parquet: the row count in the file's footer. The loader reads the row groups.

Compressed files (``.gz``) are counted on their decompressed stream (:class:`Gunzip`: member after member,
zero padding allowed, as ``gzip -d`` reads them). A stream that ends early or turns to garbage (a truncated
upload, a disk error) is **damage**: the readable part is kept in a temporary copy that ends at the last
complete line, the cut-off line is returned so the loader rejects it with a reason (it may look valid —
``u12`` cut to ``u1`` — so it is never loaded), and the damage is recorded for the file. A zero-padded file is
copied too (DuckDB's reader refuses the padding); a file of which nothing decompresses is not gzip at all and
is rejected as a whole.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from segflow.sources.gunzip import Gunzip
from segflow.sources.mapping import CsvOptions

_CHUNK = 1 << 20


@dataclass
class Scan:
    """What the independent count found. ``readable`` is the path the parser must read (the file itself, or a
    temporary copy, which the caller deletes: a damaged or zero-padded file's readable part, a CSV file with its
    record endings made alike)."""

    records: int | None          # None: the file could not be counted (e.g. an unreadable Parquet footer)
    readable: Path
    damage: str | None = None    # what is wrong with the file as a whole (records after it are unreadable)
    cut_line: tuple[int, str] | None = None  # (line number, text) of the line the damage cut off
    temporary: bool = False
    endings: set[str] = field(default_factory=set)  # line endings seen in a CSV file (LF, CRLF, CR)


def is_gzip(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


def _copy_readable(path: Path, tmp_dir: Path) -> tuple[Path, str | None]:
    """Decompress ``path`` into a temporary file as far as it can be read: (copy, damage or None)."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    target = tmp_dir / (path.name[: -len(path.suffix)] + ".readable")
    with open(path, "rb") as src, open(target, "wb") as out:
        stream = Gunzip(src)
        shutil.copyfileobj(stream, out, _CHUNK)
    damage = stream.damage
    if damage:
        damage += ": the records after that point cannot be read"
    return target, damage


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
    return io.BufferedReader(Gunzip(open(path, "rb")), _CHUNK) if is_gzip(path) else open(path, "rb")


def count_lines(path: Path, blank: bool = False) -> int:
    """Lines of a file (decompressed as it is read); without ``blank``, lines holding only whitespace are not
    counted."""
    with _open_binary(path) as fh:
        return _lines_in(fh, blank)


def _lines_in(fh, blank: bool = False) -> int:
    count = 0
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


class _Inspect(io.RawIOBase):
    """A binary stream passed through for the csv module, noting which line endings occur (LF, CRLF, CR).
    Python's csv module refuses NUL bytes; a NUL never ends a record, so for counting it reads as a blank."""

    def __init__(self, fh) -> None:
        super().__init__()
        self._fh = fh
        self._last = b""
        self.counts = {"\r\n": 0, "\n": 0, "\r": 0}

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._fh.read(len(buffer))
        crlf = data.count(b"\r\n") + (1 if self._last == b"\r" and data[:1] == b"\n" else 0)
        self.counts["\r\n"] += crlf
        self.counts["\n"] += data.count(b"\n") - crlf
        self.counts["\r"] += data.count(b"\r") - crlf  # (a CR counted alone at the end of the last piece)
        self._last = data[-1:]
        size = len(data)
        buffer[:size] = data.replace(b"\0", b" ")
        return size

    @property
    def endings(self) -> set[str]:
        return {ending for ending, count in self.counts.items() if count}


def count_csv_records(path: Path, options: CsvOptions) -> int:
    """Data records of a CSV file by Python's csv module: quoted newlines stay inside their record, blank
    lines are skipped, the header (when the file has one) is not a record."""
    with _open_binary(path) as fh:
        return _csv_records_in(fh, options)[0]


def _text(fh) -> io.TextIOWrapper:
    """Bytes as text, line endings untranslated, undecodable bytes kept (as surrogates) to be written back."""
    return io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")


def _csv_records_in(fh, options: CsvOptions) -> tuple[int, set[str]]:
    """(records, the line endings seen: a mix of LF, CRLF and CR makes DuckDB's reader fail the whole file)."""
    if options.delimiter == "whitespace":
        return max(_lines_in(fh) - (1 if options.header else 0), 0), set()
    count = 0
    inspected = _Inspect(fh)
    reader = csv.reader(_text(io.BufferedReader(inspected, _CHUNK)), delimiter=options.delimiter,
                        quotechar=options.quote or '"', doublequote=True, strict=False)
    try:
        for record in reader:
            if any(field.strip() for field in record):
                count += 1
    except csv.Error:
        count += 1  # e.g. an unterminated quote at the end: one more (bad) record
    return max(count - (1 if options.header else 0), 0), inspected.endings


def _with_lf_endings(path: Path, target: Path, quote: str) -> None:
    """Copy ``path`` with every line that ends a record ending in LF; a line break inside a quoted field is
    data and stays as delivered. Lines keep their numbers, so rejects still point at the delivered line."""
    quoted = False
    with _open_binary(path) as src, open(target, "wb") as out:
        for line in _text(src):
            body = line.rstrip("\r\n")
            quoted ^= bool(quote) and body.count(quote) % 2 == 1
            ending = line[len(body):]
            out.write((body + ("\n" if ending and not quoted else ending)).encode("utf-8", "surrogateescape"))


def parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _count(path: Path, reader: str, options: CsvOptions) -> tuple[int, set[str]]:
    if reader == "parquet":
        return parquet_rows(path), set()
    with _open_binary(path) as fh:
        return _count_in(fh, reader, options)


def _count_in(fh, reader: str, options: CsvOptions) -> tuple[int, set[str]]:
    if reader == "csv":
        return _csv_records_in(fh, options)
    return max(_lines_in(fh) - (1 if reader == "text" and options.header else 0), 0), set()


def scan(path: Path, reader: str, options: CsvOptions, tmp_dir: Path) -> Scan:
    """Count ``path``'s records (``reader`` = csv | jsonl | text | parquet) and find damage.

    A compressed file is counted while it is decompressed; only a damaged or zero-padded one is copied (its
    readable part), and a file of which nothing decompresses is not gzip at all (rejected). A CSV file whose
    lines end in different ways (LF and CRLF: files concatenated from two systems) is read from a copy whose
    record endings are all LF."""
    found = _scan(path, reader, options, tmp_dir)
    if len(found.endings) > 1:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        target = tmp_dir / (path.name.removesuffix(".gz") + ".lf")
        _with_lf_endings(found.readable, target, options.quote or '"')
        if found.temporary:
            found.readable.unlink()
        found.readable, found.temporary = target, True
    return found


def _scan(path: Path, reader: str, options: CsvOptions, tmp_dir: Path) -> Scan:
    if not is_gzip(path) or reader == "parquet":
        records, endings = _count(path, reader, options)
        return Scan(records, path, endings=endings)
    with open(path, "rb") as raw:
        stream = Gunzip(raw)
        records, endings = _count_in(io.BufferedReader(stream, _CHUNK), reader, options)
    if stream.damage is None and not stream.padding:
        return Scan(records, path, endings=endings)
    if stream.damage and stream.members == 1 and not stream.written:
        raise gzip.BadGzipFile(f"not a gzip file: nothing of it decompresses ({stream.damage})")
    readable, damage = _copy_readable(path, tmp_dir)
    cut = _cut_at_last_newline(readable) if damage else None
    records, endings = _count(readable, reader, options)
    # the cut-off line is a record of the delivery too (rejected by the loader, never parsed)
    return Scan(records + (1 if cut else 0), readable, damage, cut, temporary=True, endings=endings)
