"""The load's accounting: one result per landing entry, the run's report, and ``meta.landing_entries``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from segflow.jobs.landing import Entry


@dataclass
class FileResult:
    file: str
    source: str
    # loaded | damaged | unbalanced | skipped (already loaded) | rejected (whole file) | pending | deferred
    # | ignored
    # | marker | mapping
    status: str
    rows_in_file: int | None = None  # records counted in the file, independently of the parser
    rows_loaded: int = 0
    rows_rejected: int = 0
    streams: dict[str, int] = field(default_factory=dict)
    columns_dropped: list[str] = field(default_factory=list)
    reason: str | None = None
    path: str = ""
    load_id: str | None = None
    rows_erased: int = 0  # of the loaded / rejected: an erased person's rows and lines, dropped (segflow.erasure)

    @property
    def unaccounted(self) -> int:
        return (self.rows_in_file or 0) - self.rows_loaded - self.rows_rejected


LOADED = ("loaded", "damaged", "unbalanced")


@dataclass
class LoadReport:
    files: list[FileResult] = field(default_factory=list)
    # entries that are not data: ready markers and folder mappings (in meta.landing_entries, not in `files`)
    config: list[FileResult] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files if f.status in LOADED)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files if f.status in LOADED)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    def as_dict(self) -> dict:
        loaded = [f for f in self.files if f.status in LOADED]
        return {"files_loaded": len(loaded), "files_skipped": self.count("skipped"),
                "files_rejected": self.count("rejected"), "files_ignored": self.count("ignored"),
                "files_pending": self.count("pending"), "files_damaged": self.count("damaged"),
                "rows_in_files": sum(f.rows_in_file or 0 for f in loaded),
                "rows_loaded": self.rows_loaded, "rows_rejected": self.rows_rejected,
                "rows_erased": sum(f.rows_erased for f in loaded),
                "balanced": all(f.unaccounted == 0 for f in loaded),
                "unbalanced_files": [f"{f.source}/{f.file}: {f.reason}" for f in loaded if f.unaccounted],
                "files": [asdict(f) for f in self.files]}


def record_entries(con: duckdb.DuckDBPyConnection, report: LoadReport) -> None:
    """One row per entry seen by this run, replacing what an earlier run said about the same path."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for f in [*report.files, *report.config]:
        path = Path(f.path) if f.path else None
        size = None
        if path is not None:
            try:
                size = path.lstat().st_size
            except OSError:
                size = None
        rows.append((f.path, f.source, f.file, f.status, f.reason, size, f.rows_in_file,
                     f.rows_loaded if f.status in LOADED else None, f.rows_rejected if f.status in LOADED else None,
                     f.load_id, now))
    if not rows:
        return
    con.executemany("delete from meta.landing_entries where entry_path = ?", [(r[0],) for r in rows])
    con.executemany("insert into meta.landing_entries values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def entry_result(entry: Entry) -> FileResult:
    return FileResult(file=entry.path.name, source=entry.source, status=entry.status, reason=entry.reason,
                      path=str(entry.path))
