"""Load landing files verbatim into the warehouse's ``raw`` schema.

* Every column is stored as text exactly as delivered (typing and validation happen in dbt staging);
  columns a file adds are added to the raw table, columns it lacks stay NULL.
* Each file is loaded once: ``meta.load_manifest`` keys it by SHA-256, so re-running a load (or dropping
  the same file again under another name) changes nothing.
* Nothing is lost: a line that cannot be parsed (wrong column count, invalid JSON) goes to
  ``meta.load_rejects`` with its line number, text and reason. Per file,
  ``rows_in_file = rows_loaded + rows_rejected`` is recorded in the manifest.
* A file is loaded in one transaction: raw rows, rejects and manifest row land together or not at all.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from segflow.errors import InputError
from segflow.settings import Settings, get_settings
from segflow.warehouse import connect

SOURCES = ("events", "customers")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
META_COLUMNS = ("_load_id", "_source_file", "_source_row")

_DDL = """
create schema if not exists raw;
create schema if not exists meta;
create table if not exists meta.load_manifest (
    load_id varchar primary key,
    source varchar not null,
    file_name varchar not null,
    file_path varchar not null,
    checksum varchar not null unique,
    file_format varchar not null,
    partition_date date,
    rows_in_file bigint not null,
    rows_loaded bigint not null,
    rows_rejected bigint not null,
    loaded_at timestamp not null
);
create table if not exists meta.load_rejects (
    load_id varchar not null,
    source varchar not null,
    file_name varchar not null,
    line_number bigint,
    reason varchar not null,
    raw_line varchar
);
"""


@dataclass
class FileResult:
    file: str
    source: str
    status: str  # loaded | skipped (already loaded) | rejected (whole file unreadable)
    rows_in_file: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    reason: str | None = None


@dataclass
class LoadReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files if f.status == "loaded")

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files if f.status == "loaded")

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    def as_dict(self) -> dict:
        return {
            "files_loaded": self.count("loaded"),
            "files_skipped": self.count("skipped"),
            "files_rejected": self.count("rejected"),
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "files": [asdict(f) for f in self.files],
        }


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_DDL)


def _file_format(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return FORMATS.get(suffixes[-1]) if suffixes else None


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


def discover(landing_dir: Path, until: date | None = None) -> list[tuple[str, Path]]:
    """Landing files per source, oldest partition first; with ``until``, only partitions before it."""
    if not landing_dir.is_dir():
        raise InputError(
            f"Landing folder {landing_dir} does not exist. Put files under landing/events/ and "
            "landing/customers/ (or run `segflow generate` for demo data)."
        )
    found = []
    for source in SOURCES:
        folder = landing_dir / source
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            day = partition_date(path)
            if until is not None and day is not None and day >= until:
                continue
            found.append((source, path))
    return sorted(found, key=lambda item: (partition_date(item[1]) or date.min, item[0], item[1].name))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_empty(path: Path) -> bool:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        return not fh.read(4096).strip()


def _stage_csv(con: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[int | None, str, str | None]]:
    """Read a CSV (optionally gzipped) into temp table ``_incoming``; returns rejected lines."""
    if _is_empty(path):
        return []  # nothing delivered: no _incoming table, no columns invented
    # reject tables accumulate per connection: start each file with empty ones
    con.execute("drop table if exists reject_errors; drop table if exists reject_scans")
    con.execute(
        "create or replace temp table _incoming as "
        "select * from read_csv(?, all_varchar = true, header = true, store_rejects = true, "
        "null_padding = false, auto_detect = true)",
        [str(path)],
    )
    rejects = con.execute(
        "select line, any_value(error_type || ': ' || error_message), any_value(csv_line) "
        "from reject_errors group by line order by line"
    ).fetchall()
    return [(line, f"unparseable CSV line ({reason})", text.strip("\r\n") if text else text)
            for line, reason, text in rejects]


def _stage_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[int | None, str, str | None]]:
    """Parse JSON lines in Python so every bad line is kept with its number and text."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    records: list[dict[str, str | None]] = []
    rejects: list[tuple[int | None, str, str | None]] = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                rejects.append((number, f"invalid JSON ({exc.msg} at column {exc.colno})", text))
                continue
            if not isinstance(obj, dict):
                rejects.append((number, "JSON line is not an object", text))
                continue
            records.append({str(k): (None if v is None else v if isinstance(v, str) else json.dumps(v))
                            for k, v in obj.items()})
    if not records:
        return rejects  # every line was bad: they are all kept as rejects, no _incoming table
    columns: list[str] = []
    for record in records:
        for key in record:
            if key not in columns:
                columns.append(key)
    import pyarrow as pa

    table = pa.table({c: pa.array([r.get(c) for r in records], type=pa.string()) for c in columns})
    con.register("_incoming_arrow", table)
    con.execute("create or replace temp table _incoming as select * from _incoming_arrow")
    con.unregister("_incoming_arrow")
    return rejects


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[int | None, str, str | None]]:
    con.execute("create or replace temp table _incoming as select * from read_parquet(?)", [str(path)])
    cols = con.execute("select column_name from (describe _incoming)").fetchall()
    casts = ", ".join(f"cast({_quote(c)} as varchar) as {_quote(c)}" for (c,) in cols)
    con.execute(f"create or replace temp table _incoming as select {casts} from _incoming")
    return []


_STAGERS = {"csv": _stage_csv, "jsonl": _stage_jsonl, "parquet": _stage_parquet}


def _append_raw(con: duckdb.DuckDBPyConnection, source: str, load_id: str, file_name: str) -> int:
    if not con.execute("select 1 from duckdb_tables() where temporary and table_name = '_incoming'").fetchall():
        return 0  # the file held no parseable row
    incoming = [c for (c,) in con.execute("select column_name from (describe _incoming)").fetchall()]
    bad = [c for c in incoming if not _IDENT.match(c) or c.lower() in META_COLUMNS]
    if bad:
        raise InputError(f"{file_name}: column names {bad} are not valid identifiers or are reserved")
    table = f"raw.{source}"
    con.execute(
        f"create table if not exists {table} "
        "(_load_id varchar not null, _source_file varchar not null, _source_row bigint not null)"
    )
    existing = {c.lower() for (c,) in con.execute(
        "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ?",
        [source],
    ).fetchall()}
    for column in incoming:
        if column.lower() not in existing:  # DuckDB identifiers are case-insensitive
            con.execute(f"alter table {table} add column {_quote(column)} varchar")
    names = ", ".join(_quote(c) for c in incoming)
    con.execute(
        f"insert into {table} (_load_id, _source_file, _source_row, {names}) "
        f"select ?, ?, row_number() over (), {names} from _incoming",
        [load_id, file_name],
    )
    return con.execute("select count(*) from _incoming").fetchone()[0]


def load_file(con: duckdb.DuckDBPyConnection, source: str, path: Path) -> FileResult:
    fmt = _file_format(path)
    result = FileResult(file=path.name, source=source, status="rejected")
    if fmt is None:
        result.reason = f"unsupported file type {''.join(path.suffixes) or '(none)'}; use .csv, .jsonl, .parquet"
        return result
    checksum = _sha256(path)
    if con.execute("select 1 from meta.load_manifest where checksum = ?", [checksum]).fetchall():
        result.status = "skipped"
        result.reason = "already loaded (same checksum)"
        return result
    load_id = f"{source}:{checksum[:16]}"
    con.execute("begin transaction")
    try:
        rejects = _STAGERS[fmt](con, path)
        loaded = _append_raw(con, source, load_id, path.name)
        if rejects:
            con.executemany(
                "insert into meta.load_rejects values (?, ?, ?, ?, ?, ?)",
                [(load_id, source, path.name, line, reason, text) for line, reason, text in rejects],
            )
        con.execute(
            "insert into meta.load_manifest values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [load_id, source, path.name, str(path), checksum, fmt, partition_date(path),
             loaded + len(rejects), loaded, len(rejects), datetime.now()],
        )
        con.execute("commit")
    except (duckdb.Error, InputError, OSError, UnicodeError) as exc:
        con.execute("rollback")
        result.reason = f"file not loaded: {str(exc).splitlines()[0]}"
        return result
    finally:
        con.execute("drop table if exists _incoming")
    result.status = "loaded"
    result.rows_loaded = loaded
    result.rows_rejected = len(rejects)
    result.rows_in_file = loaded + len(rejects)
    return result


def load_landing(settings: Settings | None = None, until: date | None = None) -> LoadReport:
    """Load every landing file not loaded before (with ``until``: partitions before that date only)."""
    settings = settings or get_settings()
    files = discover(settings.landing_dir, until)
    report = LoadReport()
    with connect(settings) as con:
        ensure_schema(con)
        for source, path in files:
            report.files.append(load_file(con, source, path))
        _record_rejected_files(con, report)
    return report


def _record_rejected_files(con: duckdb.DuckDBPyConnection, report: LoadReport) -> None:
    """A wholly unreadable file is kept visible as a reject row (it is retried on the next load)."""
    con.execute(
        "create table if not exists meta.file_rejects "
        "(file_name varchar, source varchar, reason varchar, seen_at timestamp)"
    )
    for f in report.files:
        if f.status == "rejected":
            con.execute("insert into meta.file_rejects values (?, ?, ?, ?)",
                        [f.file, f.source, f.reason, datetime.now()])
