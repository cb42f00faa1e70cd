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
  de-duplicates by delivery order, never by a timestamp inside the data). Only complete files are claimed
  and every landing entry gets a status in ``meta.landing_entries`` (see :mod:`segflow.jobs.landing`).
* **Nothing lost, counted independently.** Each file's records are counted by a second reader
  (:mod:`segflow.sources.scan`) before the parser runs; the manifest records that count beside loaded and
  rejected, and a file whose numbers disagree is reported ``unbalanced``. A record that cannot be parsed or
  converted goes to ``meta.load_rejects`` with its line number, reason code, reason and text. A damaged file
  (a truncated ``.gz``) loads what can be read and records the damage; it never blocks other files.
  ``meta.load_outputs`` has the rows written per stream. A file is loaded in one transaction.
* **Data errors reject, infrastructure errors stop.** A file the format cannot read is rejected with the
  reason and the run goes on; running out of memory or disk, or a file segflow may not read, stops the run
  with :class:`LoadFailed` (nothing of the file is written).
* **A mapping that does not fit fails before writing**, naming the column and the first offending row.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import zlib
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from pyarrow import ArrowInvalid

from segflow import progress
from segflow.ddl import META_COLUMNS, ensure_schema
from segflow.erasure import filter_erased
from segflow.errors import InputError, LoadFailed
from segflow.jobs.landing import Delivery, Entry, canonical_mapping, discover, partition_date
from segflow.jobs.load_audit import FileResult, LoadReport, entry_result, record_entries
from segflow.jobs.load_write import reader_for, stage_and_write
from segflow.redaction import redact_rejects
from segflow.settings import Settings, get_settings
from segflow.sources import canonical
from segflow.sources.mapping import MappingError, load_mapping
from segflow.sources.read_common import FileRejected, shown
from segflow.sources.scan import Scan, scan
from segflow.warehouse import connect

__all__ = ["META_COLUMNS", "Delivery", "FileResult", "LoadReport", "canonical_mapping", "discover",
           "ensure_schema", "load_file", "load_landing", "load_paths", "partition_date"]

# what a file can do wrong (it is rejected, the run goes on); anything else is the machine's problem
_DATA_ERRORS = (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.BinderException,
                UnicodeError, EOFError, gzip.BadGzipFile, zlib.error, ArrowInvalid, FileRejected)


def _utc_now() -> datetime:
    """The load's own time (UTC, naive like every warehouse timestamp): when the file was delivered to us."""
    return datetime.now(UTC).replace(tzinfo=None)


def file_checksum(path: Path) -> str:
    """SHA-256 of the file's bytes (its identity in meta.load_manifest)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unload(con: duckdb.DuckDBPyConnection, load_id: str) -> None:
    """Remove everything one earlier load wrote (inside the caller's transaction)."""
    for stream in canonical.STREAMS:
        con.execute(f"delete from raw.{stream} where _load_id = ?", [load_id])
    # erased_rows too: the reload drops an erased person's rows again and counts them itself
    for table in ("load_rejects", "load_outputs", "erased_rows"):
        con.execute(f"delete from meta.{table} where load_id = ?", [load_id])
    con.execute("delete from meta.load_manifest where load_id = ?", [load_id])


def _known_loaded(con: duckdb.DuckDBPyConnection, path: Path, stat) -> str | None:
    """The load of a file whose path, size and modification time (ns) match one hashed before, with that
    checksum loaded: known without reading it again, so a daily load does not re-hash the landing history."""
    rows = con.execute(
        "select m.load_id from meta.file_index as i inner join meta.load_manifest as m on i.checksum = m.checksum "
        "where i.file_path = ? and i.size_bytes = ? and i.mtime_ns = ?",
        [str(path), stat.st_size, stat.st_mtime_ns]).fetchall()
    return rows[0][0] if rows else None


def _remember(con: duckdb.DuckDBPyConnection, path: Path, stat, checksum: str) -> None:
    con.execute("delete from meta.file_index where file_path = ?", [str(path)])
    con.execute("insert into meta.file_index values (?, ?, ?, ?)",
                [str(path), stat.st_size, stat.st_mtime_ns, checksum])


def _previous_version(con: duckdb.DuckDBPyConnection, path: Path, checksum: str) -> str | None:
    """The load of an earlier, different content delivered under the same path (a changed file)."""
    rows = con.execute(
        "select load_id from meta.load_manifest where file_path = ? and checksum <> ? order by load_seq desc limit 1",
        [str(path), checksum]).fetchall()
    return rows[0][0] if rows else None


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 2000 else text[:2000] + " ..."


def _scan(delivery: Delivery, settings: Settings) -> Scan:
    mapping, path = delivery.mapping, delivery.path
    reader = reader_for(mapping, path)
    if reader is None and mapping.format in ("segment", "ga4"):
        raise MappingError(f"{path.name}: {mapping.format} files are JSON lines or Parquet")
    if reader is None:
        raise MappingError(f"unsupported file type {''.join(path.suffixes) or '(none)'}; use .csv, .jsonl, "
                           ".parquet (optionally .gz), or a mapping with format: text for whitespace-separated files")
    return scan(path, reader, mapping.csv, settings.home / "tmp" / "load")


def load_file(con: duckdb.DuckDBPyConnection, delivery: Delivery, replace: bool = False,
              settings: Settings | None = None) -> FileResult:
    """Load one file in one transaction. With ``replace``, a file loaded before (same bytes) is loaded again:
    its earlier rows are removed in the same transaction, so a failed reload leaves the earlier load intact."""
    settings = settings or get_settings()
    path, mapping = delivery.path, delivery.mapping
    result = FileResult(file=path.name, source=delivery.source, status="rejected", path=str(path))
    stat = path.stat()
    known = None if replace else _known_loaded(con, path, stat)
    if known:
        result.status, result.reason, result.load_id = "skipped", "already loaded (same checksum)", known
        return result
    checksum = file_checksum(path)
    _remember(con, path, stat, checksum)
    earlier = con.execute("select load_id, file_name from meta.load_manifest where checksum = ?",
                          [checksum]).fetchall()
    if earlier and not replace:
        result.status, result.load_id = "skipped", earlier[0][0]
        result.reason = f"already loaded (same content as {earlier[0][1]})"
        return result
    previous = _previous_version(con, path, checksum)
    load_id = f"{delivery.source}:{checksum[:16]}"
    counted: Scan | None = None
    con.execute("begin transaction")
    try:
        counted = _scan(delivery, settings)
        result.rows_in_file = counted.records
        # taken before an earlier load of the same file is removed: a sequence number is never reused, so a
        # reload always comes after what the last build saw (and that build's next run rebuilds in full)
        seq = con.execute("select coalesce(max(load_seq), 0) + 1 from meta.load_manifest").fetchall()[0][0]
        for old, _ in earlier:
            _unload(con, old)
        rejects, loaded, written, dropped = stage_and_write(con, delivery, counted.readable, load_id,
                                                             settings.load_max_record_bytes)
        if counted.cut_line:
            line, text = counted.cut_line
            rejects.append((line, "truncated_record", "the line was cut off where the file is damaged (its end is "
                            "missing, so none of its values can be trusted)", shown(text)))
        # an erased person's rows and rejected lines are dropped here and counted as erased (segflow.erasure);
        # the manifest still counts them as loaded / rejected: that is what the file delivered
        erased, rejects_kept = filter_erased(con, load_id, written, rejects, settings)
        _write_rejects(con, load_id, delivery, rejects_kept)
        if written:
            con.executemany("insert into meta.load_outputs values (?, ?, ?)",
                            [(load_id, stream, rows) for stream, rows in written.items()])
        now = path.stat()
        if (now.st_size, now.st_mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            con.execute("rollback")
            result.status = "pending"
            result.reason = "the file changed while it was being loaded: nothing written, loaded on a later run"
            return result
        con.execute(
            "insert into meta.load_manifest (load_id, load_seq, source, stream, file_name, file_path, checksum, "
            "file_format, mapping_name, mapping_checksum, partition_date, rows_in_file, rows_loaded, rows_rejected, "
            "columns_dropped, loaded_at, damage, previous_load_id) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [load_id, seq, delivery.source, mapping.stream, path.name, str(path), checksum,
             reader_for(mapping, path) if mapping.format not in ("segment", "ga4") else mapping.format,
             None if mapping.format == "canonical" else mapping.name,
             None if mapping.format == "canonical" else mapping.checksum(), partition_date(path),
             counted.records, loaded, len(rejects), ", ".join(dropped) or None, _utc_now(), counted.damage,
             previous])
        con.execute("commit")
    except MappingError as exc:
        con.execute("rollback")
        what = "file does not fit segflow's canonical schema" if mapping.format == "canonical" else "mapping does not fit"
        result.reason = f"{what}, nothing written: {exc}"
        return result
    except _DATA_ERRORS as exc:
        con.execute("rollback")
        result.reason = f"file not loaded: {_describe(exc)}"
        return result
    except (duckdb.Error, OSError, MemoryError) as exc:
        con.execute("rollback")
        raise LoadFailed(
            f"loading {path} failed for a reason that is not the file's content ({type(exc).__name__}: "
            f"{_describe(exc)}). Nothing of this file was written and the run stopped; fix the cause (disk space, "
            "memory: SEGFLOW_DUCKDB_MEMORY_LIMIT, file permissions) and run the load again.") from None
    finally:
        con.execute("drop table if exists _incoming")
        if counted is not None and counted.temporary:
            counted.readable.unlink(missing_ok=True)
    result.load_id = load_id
    result.rows_loaded, result.rows_rejected = loaded, len(rejects)
    result.streams, result.columns_dropped = written, dropped
    result.rows_erased = sum(erased.values())
    result.status = "loaded"
    notes = []
    if previous:
        notes.append(f"a new version of a file loaded before (load {previous}); both are kept, repeated events "
                     "count as duplicates in staging")
    if counted.damage:
        result.status = "damaged"
        notes.append(counted.damage)
    if result.unaccounted:
        result.status = "unbalanced"
        notes.append(f"{counted.records:,} records counted in the file, but {loaded:,} loaded + {len(rejects):,} "
                     f"rejected = {loaded + len(rejects):,}")
    result.reason = "; ".join(notes) or None
    return result


def _write_rejects(con: duckdb.DuckDBPyConnection, load_id: str, delivery: Delivery, rejects: list) -> None:
    if rejects:
        con.executemany(
            "insert into meta.load_rejects (load_id, source, file_name, line_number, reason, raw_line, reason_code) "
            "values (?, ?, ?, ?, ?, ?, ?)",
            [(load_id, delivery.source, delivery.path.name, line, reason, text, code)
             for line, code, reason, text in redact_rejects(rejects, delivery.mapping, delivery.path)])


def _run(settings: Settings, deliveries: list[Delivery], entries: list[Entry], stop_on_mapping_error: bool,
         replace: bool = False) -> LoadReport:
    config = ("marker", "mapping")
    report = LoadReport(files=[entry_result(e) for e in entries if e.status not in config],
                        config=[entry_result(e) for e in entries if e.status in config])
    with connect(settings) as con:
        ensure_schema(con)
        try:
            for done, delivery in enumerate(deliveries, start=1):
                result = load_file(con, delivery, replace=replace, settings=settings)
                report.files.append(result)
                progress.step("load", done, len(deliveries), f"{delivery.path.name} {result.status}")
                if stop_on_mapping_error and result.reason and result.reason.startswith("mapping does not fit"):
                    raise MappingError(f"{delivery.path}: {result.reason}")
        except BaseException:
            try:  # what was decided before the stop is still recorded; the stop's own error is what the user sees
                record_entries(con, report)
            except duckdb.Error:
                pass
            raise
        record_entries(con, report)
    shutil.rmtree(settings.home / "tmp" / "load", ignore_errors=True)
    return report


def load_landing(settings: Settings | None = None, until=None) -> LoadReport:
    """Load every complete landing file not loaded before (with ``until``: partitions before that date only)."""
    settings = settings or get_settings()
    deliveries, entries = discover(settings.landing_dir, until, settings.load_min_file_age_seconds)
    return _run(settings, deliveries, entries, stop_on_mapping_error=False)


def load_paths(paths: list[Path], mapping_file: Path | None = None, settings: Settings | None = None,
               stream: str = "events", replace: bool = False) -> LoadReport:
    """Load the given files with one mapping (or as canonical ``stream`` files); stops at the first file the
    mapping does not fit (that file is not written). ``replace`` reloads files loaded before (e.g. after a
    mapping fix), removing what their earlier load wrote. Files named explicitly are taken as complete."""
    settings = settings or get_settings()
    mapping = load_mapping(mapping_file) if mapping_file else canonical_mapping(stream)
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise InputError(f"no such file: {', '.join(missing)}")
    deliveries = [Delivery(mapping.name, Path(p).resolve(), mapping) for p in paths]
    return _run(settings, deliveries, [], stop_on_mapping_error=True, replace=replace)
