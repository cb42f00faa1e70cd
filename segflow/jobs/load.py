"""Load delivered files into the warehouse's ``raw`` schema, one canonical stream per raw table.

* **Where files come from.** Every folder under ``landing/`` is a source. A folder named after a canonical
  stream (``events``, ``orders``, ``support_tickets``, ``email_events``, ``customers``, ``consent``,
  ``identities``) takes segflow's canonical columns as they are; any folder can instead hold a
  ``_mapping.yml`` that says how its files map onto a stream (see :mod:`segflow.sources.mapping`), or name a
  built-in format (``segment``, ``ga4``). ``segflow load PATH --mapping FILE`` loads files from anywhere.
* **Text as delivered.** Values are stored as text, renamed/combined by the mapping but never typed:
  typing, validation and quarantine happen in dbt staging. Columns outside the canonical schema are not
  stored; the manifest lists them (``columns_dropped``).
* **Once per file.** ``meta.load_manifest`` keys each file by SHA-256; ``load_seq`` orders deliveries (dbt
  de-duplicates by delivery order, never by a timestamp inside the data).
* **Nothing lost.** A line that cannot be parsed or converted goes to ``meta.load_rejects`` with its line
  number, text and reason. Per file the manifest records records in, loaded and rejected, and
  ``meta.load_outputs`` the rows written per stream. A file is loaded in one transaction.
* **A mapping that does not fit fails before writing**, naming the column and the first offending row.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from segflow.ddl import META_COLUMNS, ensure_schema
from segflow.erasure import erasure_key, filter_erased
from segflow.errors import InputError
from segflow.settings import Settings, get_settings
from segflow.sources import canonical
from segflow.sources.mapping import Mapping, MappingError, load_mapping
from segflow.sources.mapping_sql import compile_select, timestamp_failures
from segflow.sources.readers import READERS, file_format, read_builtin
from segflow.warehouse import connect

__all__ = ["META_COLUMNS", "Delivery", "FileResult", "LoadReport", "discover", "ensure_schema", "load_file",
           "load_landing", "load_paths", "partition_date"]

MAPPING_FILES = ("_mapping.yml", "_mapping.yaml")
_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


@dataclass
class Delivery:
    source: str
    path: Path
    mapping: Mapping


@dataclass
class FileResult:
    file: str
    source: str
    status: str  # loaded | skipped (already loaded) | rejected (whole file not loaded) | ignored
    rows_in_file: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    streams: dict[str, int] = field(default_factory=dict)
    columns_dropped: list[str] = field(default_factory=list)
    reason: str | None = None
    rows_erased: int = 0  # rows (and rejected lines) of an erased person, dropped at load (segflow.erasure)


@dataclass
class LoadReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files if f.status == "loaded")

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files if f.status == "loaded")

    @property
    def rows_erased(self) -> int:
        return sum(f.rows_erased for f in self.files if f.status == "loaded")

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    def as_dict(self) -> dict:
        return {"files_loaded": self.count("loaded"), "files_skipped": self.count("skipped"),
                "files_rejected": self.count("rejected"), "files_ignored": self.count("ignored"),
                "rows_loaded": self.rows_loaded, "rows_rejected": self.rows_rejected, "rows_erased": self.rows_erased,
                "files": [asdict(f) for f in self.files]}


def _utc_now() -> datetime:
    """The load's own time (UTC, naive like every warehouse timestamp): when the file was delivered to us."""
    return datetime.now(UTC).replace(tzinfo=None)


def canonical_mapping(stream: str) -> Mapping:
    return Mapping(name=stream, stream=stream, format="canonical")


def partition_date(path: Path) -> date | None:
    """The date a drop-zone file belongs to, from a ``YYYY-MM-DD`` in its name (None if absent)."""
    match = _DATE_IN_NAME.search(path.name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _folder_mapping(folder: Path) -> Mapping | None:
    for name in MAPPING_FILES:
        if (folder / name).is_file():
            return load_mapping(folder / name)
    return canonical_mapping(folder.name) if folder.name in canonical.STREAMS else None


def discover(landing_dir: Path, until: date | None = None) -> tuple[list[Delivery], list[FileResult]]:
    """Deliveries per landing folder, oldest partition first (with ``until``: partitions before it), and the
    entries that cannot be loaded as they are (folders with no stream and no mapping, invalid mappings)."""
    if not landing_dir.is_dir():
        raise InputError(
            f"Landing folder {landing_dir} does not exist. Put files under landing/<stream>/ (events, orders, "
            "customers, ...) or landing/<source>/ with a _mapping.yml, or run `segflow generate` for demo data.")
    found: list[Delivery] = []
    unusable: list[FileResult] = []
    for folder in sorted(p for p in landing_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_")))
        try:
            mapping = _folder_mapping(folder)
        except MappingError as exc:
            unusable += [FileResult(p.name, folder.name, "rejected", reason=str(exc)) for p in files]
            continue
        if mapping is None:
            unusable += [FileResult(p.name, folder.name, "ignored", reason=(
                f"folder {folder.name!r} is neither a canonical stream ({', '.join(canonical.STREAMS)}) nor has "
                "a _mapping.yml")) for p in files]
            continue
        for path in files:
            if not path.match(mapping.file_pattern):
                continue
            day = partition_date(path)
            if until is not None and day is not None and day >= until:
                continue
            found.append(Delivery(folder.name, path, mapping))
    found.sort(key=lambda d: (partition_date(d.path) or date.min, d.source, d.path.name))
    return found, unusable


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _reader(mapping: Mapping, path: Path) -> str | None:
    ext = file_format(path)
    if mapping.format == "canonical":
        return ext if ext in ("csv", "jsonl", "parquet") else None
    if mapping.format in READERS and ext in (None, "text", mapping.format):
        return mapping.format
    return ext


def _canonical_select(stream: str, incoming: list[str], file_name: str) -> tuple[str, list[str]]:
    by_lower = {c.lower(): c for c in incoming if c != "_source_row"}
    wanted = canonical.columns(stream)
    missing = [c for c in canonical.REQUIRED[stream] if c not in by_lower]
    identity = canonical.IDENTITY_ANY.get(stream)
    if identity and not any(c in by_lower for c in identity):
        missing.append(" or ".join(identity))
    if missing:
        raise MappingError(
            f"{file_name} has no column {', '.join(missing)} of segflow's canonical {stream!r} schema (its "
            f"columns: {', '.join(c for c in incoming if c != '_source_row')}). Describe the file with a mapping: "
            "put a _mapping.yml in its folder or run `segflow load PATH --mapping FILE` (see `segflow load --help`).")
    cols = ", ".join(f"{_quote(by_lower[c])} as {_quote(c)}" if c in by_lower else f"null as {_quote(c)}"
                     for c in wanted)
    dropped = [c for low, c in by_lower.items() if low not in wanted]
    return f"select _source_row, {cols} from _incoming", dropped


def _write_stream(con: duckdb.DuckDBPyConnection, stream: str, load_id: str, file_name: str, select: str) -> int:
    cols = ", ".join(_quote(c) for c in canonical.columns(stream))
    # fetchall, not fetchone: DuckDB 2.0 keeps an unfinished result open and refuses the next unregister
    before = con.execute(f"select count(*) from raw.{stream} where _load_id = ?", [load_id]).fetchall()[0][0]
    con.execute(f"insert into raw.{stream} (_load_id, _source_file, _source_row, {cols}) "
                f"select ?, ?, _source_row, {cols} from ({select})", [load_id, file_name])
    return con.execute(f"select count(*) from raw.{stream} where _load_id = ?", [load_id]).fetchall()[0][0] - before


def _stage_and_write(con: duckdb.DuckDBPyConnection, delivery: Delivery, load_id: str
                     ) -> tuple[list, int, dict[str, int], list[str]]:
    """Read the file and write its rows: (rejects, records loaded, rows per stream, dropped columns)."""
    mapping, path = delivery.mapping, delivery.path
    if mapping.format in ("segment", "ga4"):
        import pyarrow as pa

        from segflow.sources.formats import ADAPTERS

        fmt = file_format(path)
        if fmt not in ("jsonl", "parquet"):
            raise MappingError(f"{path.name}: {mapping.format} files are JSON lines or Parquet")
        rows_by_stream, rejects, converted = read_builtin(path, fmt, ADAPTERS[mapping.format])
        written = {}
        for stream, rows in rows_by_stream.items():
            columns = canonical.columns(stream)
            table = pa.table({"_source_row": pa.array([r["_source_row"] for r in rows], type=pa.int64()),
                              **{c: pa.array([r.get(c) for r in rows], type=pa.string()) for c in columns}})
            con.register("_converted", table)
            written[stream] = _write_stream(con, stream, load_id, path.name, "select * from _converted")
            con.unregister("_converted")
        return rejects, converted, written, []
    reader = _reader(mapping, path)
    if reader is None:
        raise MappingError(f"unsupported file type {''.join(path.suffixes) or '(none)'}; use .csv, .jsonl, "
                           ".parquet (optionally .gz), or a mapping with format: text for whitespace-separated files")
    rejects = READERS[reader](con, path, mapping.csv)
    if not con.execute("select 1 from duckdb_tables() where temporary and table_name = '_incoming'").fetchall():
        return rejects, 0, {}, []  # nothing parseable: every line is a reject
    incoming = [c for (c,) in con.execute("select column_name from (describe _incoming)").fetchall()]
    if mapping.format == "canonical":
        select, dropped = _canonical_select(mapping.stream, incoming, path.name)
    else:
        select = compile_select(mapping, incoming, file_name=path.name)
        used = mapping.referenced_columns()
        dropped = [c for c in incoming if c != "_source_row" and c.lower() not in used]
        bad = timestamp_failures(con, mapping)
        if bad:
            target, row, text = bad[0]
            raise MappingError(f"{path.name}: {target} matches no row (first offending row {row}: {text!r}); "
                               "check timestamp_format in the mapping")
    loaded = con.execute("select count(*) from _incoming").fetchone()[0]
    written = {mapping.stream: _write_stream(con, mapping.stream, load_id, path.name, select)}
    return rejects, loaded, written, dropped


def _unload(con: duckdb.DuckDBPyConnection, load_id: str) -> None:
    """Remove everything one earlier load wrote (inside the caller's transaction)."""
    for stream in canonical.STREAMS:
        con.execute(f"delete from raw.{stream} where _load_id = ?", [load_id])
    # erased_rows too: the reload drops an erased person's rows again and counts them itself
    for table in ("load_rejects", "load_outputs", "erased_rows"):
        con.execute(f"delete from meta.{table} where load_id = ?", [load_id])
    con.execute("delete from meta.load_manifest where load_id = ?", [load_id])


def _known_loaded(con: duckdb.DuckDBPyConnection, path: Path, stat) -> bool:
    """A file whose path, size and modification time (ns) match one hashed before, with that checksum loaded:
    known without reading it again, so a daily load does not re-hash the whole landing history."""
    return bool(con.execute(
        "select count(*) from meta.file_index as i inner join meta.load_manifest as m on i.checksum = m.checksum "
        "where i.file_path = ? and i.size_bytes = ? and i.mtime_ns = ?",
        [str(path), stat.st_size, stat.st_mtime_ns]).fetchall()[0][0])


def _remember(con: duckdb.DuckDBPyConnection, path: Path, stat, checksum: str) -> None:
    con.execute("delete from meta.file_index where file_path = ?", [str(path)])
    con.execute("insert into meta.file_index values (?, ?, ?, ?)",
                [str(path), stat.st_size, stat.st_mtime_ns, checksum])


def load_file(con: duckdb.DuckDBPyConnection, delivery: Delivery, replace: bool = False,
              settings: Settings | None = None) -> FileResult:
    """Load one file in one transaction. With ``replace``, a file loaded before (same bytes) is loaded again:
    its earlier rows are removed in the same transaction, so a failed reload leaves the earlier load intact.
    Rows of a person erased before (meta.erasure_list) are dropped and counted as erased."""
    path, mapping = delivery.path, delivery.mapping
    result = FileResult(file=path.name, source=delivery.source, status="rejected")
    stat = path.stat()
    if not replace and _known_loaded(con, path, stat):
        result.status, result.reason = "skipped", "already loaded (same checksum)"
        return result
    checksum = _sha256(path)
    _remember(con, path, stat, checksum)
    earlier = con.execute("select load_id from meta.load_manifest where checksum = ?", [checksum]).fetchall()
    if earlier and not replace:
        result.status, result.reason = "skipped", "already loaded (same checksum)"
        return result
    load_id = f"{delivery.source}:{checksum[:16]}"
    con.execute("begin transaction")
    try:
        for (old,) in earlier:
            _unload(con, old)
        rejects, loaded, written, dropped = _stage_and_write(con, delivery, load_id)
        erased, rejects_kept = filter_erased(con, load_id, written, rejects, erasure_key(settings or get_settings()))
        if rejects_kept:
            con.executemany("insert into meta.load_rejects values (?, ?, ?, ?, ?, ?)",
                            [(load_id, delivery.source, path.name, line, reason, text)
                             for line, reason, text in rejects_kept])
        if written:
            con.executemany("insert into meta.load_outputs values (?, ?, ?)",
                            [(load_id, stream, rows) for stream, rows in written.items()])
        seq = con.execute("select coalesce(max(load_seq), 0) + 1 from meta.load_manifest").fetchone()[0]
        con.execute(
            "insert into meta.load_manifest values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [load_id, seq, delivery.source, mapping.stream, path.name, str(path), checksum,
             _reader(mapping, path) if mapping.format not in ("segment", "ga4") else mapping.format,
             None if mapping.format == "canonical" else mapping.name,
             None if mapping.format == "canonical" else mapping.checksum(), partition_date(path),
             loaded + len(rejects), loaded, len(rejects), ", ".join(dropped) or None, _utc_now()])
        con.execute("commit")
    except MappingError as exc:
        con.execute("rollback")
        result.reason = f"mapping does not fit, nothing written: {exc}"
        return result
    except (duckdb.Error, InputError, OSError, UnicodeError, EOFError) as exc:
        con.execute("rollback")
        result.reason = f"file not loaded: {str(exc).splitlines()[0]}"
        return result
    finally:
        con.execute("drop table if exists _incoming")
    result.status = "loaded"
    result.rows_loaded, result.rows_rejected = loaded, len(rejects)
    result.rows_in_file = loaded + len(rejects)
    result.streams, result.columns_dropped = written, dropped
    result.rows_erased = sum(erased.values())
    return result


def _run(settings: Settings, deliveries: list[Delivery], unusable: list[FileResult], stop_on_mapping_error: bool,
         replace: bool = False) -> LoadReport:
    report = LoadReport(files=list(unusable))
    with connect(settings) as con:
        ensure_schema(con)
        for delivery in deliveries:
            result = load_file(con, delivery, replace=replace, settings=settings)
            report.files.append(result)
            if stop_on_mapping_error and result.reason and result.reason.startswith("mapping does not fit"):
                _record_rejected_files(con, report)
                raise MappingError(f"{delivery.path}: {result.reason}")
        _record_rejected_files(con, report)
    return report


def load_landing(settings: Settings | None = None, until: date | None = None) -> LoadReport:
    """Load every landing file not loaded before (with ``until``: partitions before that date only)."""
    settings = settings or get_settings()
    deliveries, unusable = discover(settings.landing_dir, until)
    return _run(settings, deliveries, unusable, stop_on_mapping_error=False)


def load_paths(paths: list[Path], mapping_file: Path | None = None, settings: Settings | None = None,
               stream: str = "events", replace: bool = False) -> LoadReport:
    """Load the given files with one mapping (or as canonical ``stream`` files); stops at the first file the
    mapping does not fit (that file is not written). ``replace`` reloads files loaded before (e.g. after a
    mapping fix), removing what their earlier load wrote."""
    settings = settings or get_settings()
    mapping = load_mapping(mapping_file) if mapping_file else canonical_mapping(stream)
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise InputError(f"no such file: {', '.join(missing)}")
    deliveries = [Delivery(mapping.name, Path(p).resolve(), mapping) for p in paths]
    return _run(settings, deliveries, [], stop_on_mapping_error=True, replace=replace)


def _record_rejected_files(con: duckdb.DuckDBPyConnection, report: LoadReport) -> None:
    """A file not loaded as a whole stays visible (one row per file, refreshed; retried on the next load)."""
    for f in report.files:
        if f.status in ("rejected", "ignored"):
            con.execute("delete from meta.file_rejects where file_name = ? and source = ?", [f.file, f.source])
            con.execute("insert into meta.file_rejects values (?, ?, ?, ?)",
                        [f.file, f.source, f.reason, _utc_now()])
