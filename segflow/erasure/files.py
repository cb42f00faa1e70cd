"""Removing a person from files: export rows dropped, identifiers in artifacts replaced, caches deleted."""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from segflow.erasure.rules import distinctive, redact_text, token_regex


@dataclass
class FileChange:
    path: str
    action: str  # rows_removed | redacted | deleted
    count: int  # rows removed, identifiers replaced, or 1 for a deleted file

    def as_dict(self) -> dict:
        return {"path": self.path, "action": self.action, "count": self.count}


def _is_binary(path: Path) -> bool:
    with open(path, "rb") as fh:
        return b"\0" in fh.read(8192)


def _replace(path: Path, write) -> None:
    """Write through a temporary file and rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.redact-tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _cell_hit(value, exact: set[str]) -> bool:
    return value is not None and str(value).strip().lower() in exact


def _redact_csv(path: Path, exact: set[str], apply: bool) -> int:
    with open(path, newline="", encoding="utf-8", errors="surrogateescape") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return 0
    header, body = rows[0], rows[1:]
    keep = [r for r in body if not any(_cell_hit(cell, exact) for cell in r)]
    removed = len(body) - len(keep)
    if removed and apply:
        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as out:
                writer = csv.writer(out)
                writer.writerow(header)
                writer.writerows(keep)
        _replace(path, write)
    return removed


def _json_hit(line: str, exact: set[str], pattern: re.Pattern | None) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return bool(pattern and pattern.search(line))
    stack = [record]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
        elif _cell_hit(item, exact):
            return True
    return False


def _redact_jsonl(path: Path, exact: set[str], pattern: re.Pattern | None, apply: bool) -> int:
    lines = path.read_text(encoding="utf-8", errors="surrogateescape").splitlines(keepends=True)
    keep = [line for line in lines if not (line.strip() and _json_hit(line, exact, pattern))]
    removed = len(lines) - len(keep)
    if removed and apply:
        _replace(path, lambda tmp: tmp.write_text("".join(keep), encoding="utf-8", errors="surrogateescape"))
    return removed


def _redact_parquet(path: Path, exact: set[str], apply: bool) -> int:
    import pyarrow.parquet as pq

    frame = pq.read_table(path).to_pandas()
    text_cols = [c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype).startswith("str")]
    if not text_cols:
        return 0
    hit = frame[text_cols].apply(lambda col: col.map(lambda v: _cell_hit(v, exact))).any(axis=1)
    removed = int(hit.sum())
    if removed and apply:
        _replace(path, lambda tmp: frame[~hit].to_parquet(tmp, index=False))
    return removed


def _redact_text(path: Path, pattern: re.Pattern, apply: bool) -> int:
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    new, count = redact_text(text, pattern)
    if count and apply:
        _replace(path, lambda tmp: tmp.write_text(new, encoding="utf-8", errors="surrogateescape"))
    return count


def redact_files(root: Path, values: Iterable[str], *, rows: bool, apply: bool = True) -> list[FileChange]:
    """Remove the identifiers from every file under ``root`` (symlinks are not followed).

    ``rows=True`` (exports): a CSV / JSON-lines / Parquet file loses every row with a value equal to one of
    the identifiers (trimmed, case-insensitive). Everywhere else (other text files, and ``rows=False`` for
    artifacts: logs, dbt target, data-quality results) the identifiers that can be found in free text
    (:func:`distinctive`) are replaced by ``[erased]``; a binary file that holds one (a cache such as dbt's
    partial_parse.msgpack) is deleted - its tool rebuilds it. ``apply=False`` only counts."""
    values = {v for v in values if v}
    exact = {v.lower() for v in values}
    regex = token_regex(v for v in values if distinctive(v))
    pattern = re.compile(regex, re.IGNORECASE) if regex else None
    needles = [v.lower().encode() for v in values if distinctive(v)]
    if not values or not root.is_dir():
        return []
    changes: list[FileChange] = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file() or path.name.endswith(".redact-tmp"):
            continue
        suffix = path.suffix.lower()
        if rows and suffix in (".csv", ".jsonl", ".ndjson", ".parquet"):
            if suffix == ".csv":
                count = _redact_csv(path, exact, apply)
            elif suffix == ".parquet":
                count = _redact_parquet(path, exact, apply)
            else:
                count = _redact_jsonl(path, exact, pattern, apply)
            action = "rows_removed"
        else:
            # cheap byte scan first: most files never mention the person
            if pattern is None or not any(n in path.read_bytes().lower() for n in needles):
                continue
            if _is_binary(path):
                if apply:
                    path.unlink()
                count, action = 1, "deleted"
            else:
                count, action = _redact_text(path, pattern, apply), "redacted"
        if count:
            changes.append(FileChange(str(path.relative_to(root.parent)), action, count))
    return changes
