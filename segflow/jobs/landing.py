"""What is in ``landing/``: which entries are deliveries ready to load, and a status for every other entry.

**Every entry is accounted for.** Each file or folder under ``landing/`` gets one row in
``meta.landing_entries`` per load run with a status: ``loaded``, ``skipped`` (already loaded), ``damaged`` (the readable
part loaded, the damage recorded), ``unbalanced`` (loaded, but the records counted in the file differ from
loaded + rejected), ``rejected`` (the file as a whole), ``pending`` (not complete yet), ``deferred`` (a partition after the
run's interval), ``ignored`` (with the reason), ``marker`` / ``mapping`` (a producer's ready marker, a folder's
mapping).

**Only complete files are claimed** (the producer contract, also in docs/data-contract.md):

* a file with a ready marker beside it (``<name>.ready``, written after the file is complete) is complete;
* a file without one is complete once it has not changed for ``SEGFLOW_LOAD_MIN_FILE_AGE_SECONDS``;
* names starting with ``.`` or ``_`` are never loaded: write a file under such a name and rename it into place.

A file that changes after it was loaded is a new delivery (new checksum, new load), never a second half of
the first one: its records are loaded again and staging counts the repeats as duplicates.
Symbolic links are followed only to files inside ``landing/``.
"""

from __future__ import annotations

import os
import re
import stat as stat_mod
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from segflow.errors import InputError
from segflow.sources import canonical
from segflow.sources.mapping import Mapping, MappingError, load_mapping

MAPPING_FILES = ("_mapping.yml", "_mapping.yaml")
READY_SUFFIX = ".ready"
_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


@dataclass
class Delivery:
    source: str
    path: Path
    mapping: Mapping


@dataclass
class Entry:
    """A landing entry that is not (or not yet) a delivery, with its status and reason."""

    source: str
    path: Path
    status: str
    reason: str | None = None


def canonical_mapping(stream: str) -> Mapping:
    return Mapping(name=stream, stream=stream, format="canonical")


def folder_mapping(folder: Path) -> Mapping | None:
    for name in MAPPING_FILES:
        if (folder / name).is_file():
            return load_mapping(folder / name)
    return canonical_mapping(folder.name) if folder.name in canonical.STREAMS else None


def _kind(path: Path) -> tuple[str, str | None]:
    """("file" | "folder" | "other", reason when it cannot be read) without following links outside."""
    try:
        info = path.lstat()
    except OSError as exc:
        return "other", f"cannot be inspected ({exc.strerror})"
    if stat_mod.S_ISLNK(info.st_mode):
        return "link", None
    if stat_mod.S_ISDIR(info.st_mode):
        return "folder", None
    if stat_mod.S_ISREG(info.st_mode):
        return "file", None
    return "other", "not a regular file (a pipe, socket or device is never read)"


def _link_target(path: Path, landing: Path) -> tuple[str, str | None]:
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return "other", f"broken symbolic link (to {os.readlink(path)!r})"
    if not target.is_relative_to(landing.resolve()):
        return "other", (f"symbolic link to {target}, outside landing/: not followed (copy the file in, or link "
                         "to a file inside landing/)")
    if target.is_dir():
        return "folder", None
    return ("file", None) if target.is_file() else ("other", "symbolic link to something that is not a file")


def partition_date(path: Path) -> date | None:
    """The date a drop-zone file belongs to, from a ``YYYY-MM-DD`` in its name (None if absent)."""
    match = _DATE_IN_NAME.search(path.name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def is_complete(path: Path, min_age_seconds: float, now: float | None = None) -> tuple[bool, str | None]:
    """The claim rule: a ready marker, or unchanged for ``min_age_seconds``."""
    if path.with_name(path.name + READY_SUFFIX).exists():
        return True, None
    age = (now or time.time()) - path.stat().st_mtime
    if age >= min_age_seconds:
        return True, None
    return False, (f"written {max(age, 0):.0f} s ago: a file is loaded once it is unchanged for "
                   f"{min_age_seconds:.0f} s (SEGFLOW_LOAD_MIN_FILE_AGE_SECONDS) or has a {path.name}{READY_SUFFIX} "
                   "marker beside it")


def _source_entries(folder: Path, landing: Path, until: date | None, min_age: float
                    ) -> tuple[list[Delivery], list[Entry]]:
    source = folder.name
    entries: list[Entry] = []
    names = sorted(folder.iterdir())
    try:
        mapping = folder_mapping(folder)
        mapping_error = None
    except MappingError as exc:
        mapping, mapping_error = None, str(exc)
    found: list[Delivery] = []
    for path in names:
        if path.name in MAPPING_FILES:
            entries.append(Entry(source, path, "mapping", "how this folder's files map onto a stream"))
            continue
        kind, problem = _kind(path)
        if kind == "link":
            kind, problem = _link_target(path, landing)
        if path.name.startswith((".", "_")):
            entries.append(Entry(source, path, "ignored", "names starting with '.' or '_' are never loaded (write a "
                                 "file under such a name, then rename it into place)"))
            continue
        if problem:
            entries.append(Entry(source, path, "ignored", problem))
            continue
        if kind == "folder":
            entries.append(Entry(source, path, "ignored", "a folder inside a source folder is not read: put the "
                                 f"files directly in landing/{source}/"))
            continue
        if path.name.endswith(READY_SUFFIX):
            data_file = path.name[: -len(READY_SUFFIX)]
            status = "marker" if (folder / data_file).exists() else "ignored"
            entries.append(Entry(source, path, status, f"ready marker of {data_file}" if status == "marker"
                                 else f"ready marker of {data_file}, which is not here"))
            continue
        if mapping_error:
            entries.append(Entry(source, path, "rejected", mapping_error))
            continue
        if mapping is None:
            entries.append(Entry(source, path, "ignored", (
                f"folder {source!r} is neither a canonical stream ({', '.join(canonical.STREAMS)}) nor has "
                "a _mapping.yml")))
            continue
        if not path.match(mapping.file_pattern):
            entries.append(Entry(source, path, "ignored",
                                 f"does not match the mapping's file_pattern {mapping.file_pattern!r}"))
            continue
        day = partition_date(path)
        if until is not None and day is not None and day >= until:
            entries.append(Entry(source, path, "deferred", f"partition {day} is not before this run's as-of {until}"))
            continue
        complete, why = is_complete(path, min_age)
        if not complete:
            entries.append(Entry(source, path, "pending", why))
            continue
        found.append(Delivery(source, path, mapping))
    return found, entries


def discover(landing: Path, until: date | None = None, min_age_seconds: float = 0.0
             ) -> tuple[list[Delivery], list[Entry]]:
    """Deliveries ready to load (oldest partition first) and every other landing entry with its status."""
    if not landing.is_dir():
        raise InputError(
            f"Landing folder {landing} does not exist. Put files under landing/<stream>/ (events, orders, "
            "customers, ...) or landing/<source>/ with a _mapping.yml, or run `segflow generate` for demo data.")
    found: list[Delivery] = []
    entries: list[Entry] = []
    for path in sorted(landing.iterdir()):
        kind, problem = _kind(path)
        if kind == "link":
            kind, problem = _link_target(path, landing)
        if path.name.startswith("."):
            entries.append(Entry("", path, "ignored", "hidden entry (name starts with '.')"))
        elif problem:
            entries.append(Entry("", path, "ignored", problem))
        elif kind != "folder":
            entries.append(Entry("", path, "ignored", "files belong in a source folder: landing/<source>/<file>"))
        else:
            more, others = _source_entries(path, landing, until, min_age_seconds)
            found += more
            entries += others
    found.sort(key=lambda d: (partition_date(d.path) or date.min, d.source, d.path.name))
    return found, entries
