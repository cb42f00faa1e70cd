"""Finding and removing a person's identifiers: shared by erasure (segflow.jobs.erase), consent redaction
(segflow.jobs.consent) and the loader's erasure filter (segflow.jobs.load).

* **Which raw rows are a person's.** One rule for every stream, used when erasing and again at load time:
  a row with a user id belongs to that user (events, identities), a profile or consent row to its
  customer id; a row without a user id belongs to the person whose device (anonymous id) or e-mail it carries;
  an alias statement also belongs to the person whose earlier id it names.
* **Identifiers in values and text.** A value (a table cell, an export's cell) matches when it equals an
  identifier (trimmed, case-insensitive). Free text (a rejected line, a log, a message) is searched for
  identifiers long enough to be told apart from other numbers (:func:`distinctive`) as whole tokens, so
  ``C00004`` never matches inside ``C000041`` but ``a-1f2e3d`` matches inside ``anon:a-1f2e3d``. The same
  pattern runs in DuckDB (RE2) and in Python.
* **The erasure list** keeps a keyed hash (HMAC-SHA-256 over kind and value) of every erased raw identifier,
  never the identifier: the loader drops re-delivered rows of an erased person without the warehouse holding
  who they were. The key is the deployment's PII secret (a setting, never stored in the warehouse); the list
  records a key id so a changed key fails loudly instead of silently letting erased people back.
"""

from __future__ import annotations

import csv
import getpass
import hashlib
import hmac
import json
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from segflow.errors import InputError
from segflow.settings import Settings

REDACTED = "[erased]"
# characters that continue an identifier (ids, devices, e-mail addresses): a match must not be part of a longer one
_ID_CHARS = "A-Za-z0-9_.@+-"
_TOKEN_SPLIT = re.compile(f"[^{_ID_CHARS}]+")

# identity columns of each raw stream, by kind: user (a user / customer id), anon (a device), email (plain)
EVENT_IDENTITY = {"user": ("user_id",), "anon": ("anonymous_id",), "email": ("email",)}
RAW_IDENTITY: dict[str, dict[str, tuple[str, ...]]] = {
    "events": EVENT_IDENTITY, "orders": EVENT_IDENTITY, "support_tickets": EVENT_IDENTITY,
    "email_events": EVENT_IDENTITY,
    "customers": {"user": ("customer_id",)},
    "consent": {"user": ("customer_id",)},
    "identities": {"user": ("user_id", "previous_id"), "anon": ("previous_id",)},
}
DIGEST_KINDS = {"user": "user_id", "anon": "anonymous_id", "email": "email"}


class ErasureKeyMismatch(InputError):
    """The erasure list was keyed with another PII key than the one configured now."""


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def who() -> str:
    """The OS user and host running this process (for the audit log)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def normalize(kind: str, value: str | None) -> str | None:
    """An identifier as staging compares it: trimmed, empty = none; e-mail addresses lower-cased."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    return text.lower() if kind == "email" else text


def raw_row_predicate(stream: str, user: str, anon: str, email: str) -> str:
    """SQL condition (over a raw.<stream> row) for "this row is one of the person's", given three one-column
    tables ``user``, ``anon``, ``email`` (column ``v``) holding the person's identifiers."""
    def t(col: str) -> str:
        return f"nullif(trim({col}), '')"

    def member(expr: str, table: str) -> str:
        return f"{expr} in (select v from {table})"

    if stream == "customers" or stream == "consent":
        return member(t("customer_id"), user)
    if stream == "identities":
        return (f"{member(t('user_id'), user)} or {member(t('previous_id'), user)} "
                f"or {member(t('previous_id'), anon)}")
    return (f"{member(t('user_id'), user)} or ({t('user_id')} is null and "
            f"({member(t('anonymous_id'), anon)} or {member('lower(' + t('email') + ')', email)}))")


def token_regex(values: Iterable[str]) -> str | None:
    """A regular expression (RE2 and Python) matching any of ``values`` as a whole token; None when empty.
    Group 2 is the identifier; groups 1 and 3 the characters around it."""
    tokens = sorted({v for v in values if v}, key=len, reverse=True)
    if not tokens:
        return None
    alternatives = "|".join(re.escape(v) for v in tokens)
    return f"(^|[^{_ID_CHARS}])({alternatives})($|[^{_ID_CHARS}])"


def redact_text(text: str, pattern: re.Pattern) -> tuple[str, int]:
    """Replace every token match by ``[erased]``; returns the text and the number of replacements. Runs until
    stable: adjacent matches share a separator that the first replacement consumed."""
    total = 0
    while True:
        text, count = pattern.subn(lambda m: m.group(1) + REDACTED + m.group(3), text)
        total += count
        if not count:
            return text, total


# --- files ------------------------------------------------------------------------------------------------------

def distinctive(value: str) -> bool:
    """Whether an identifier can be searched for in free text (log lines, rejected lines, messages): short
    numbers (CDNOW's customer 1234) are indistinguishable there from a quantity or a price."""
    return len(value) >= 10 or (len(value) >= 6 and not value.isdigit())


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


# --- the erasure list -------------------------------------------------------------------------------------------

def erasure_key(settings: Settings) -> bytes:
    """The secret the erasure list is keyed with: the deployment's PII secret (never stored in the warehouse)."""
    return settings.pii_salt.encode()


def key_id(key: bytes) -> str:
    """Names the key without revealing it (an HMAC of a fixed label)."""
    return hmac.new(key, b"segflow erasure key id", hashlib.sha256).hexdigest()[:16]


def digest(key: bytes, kind: str, value: str) -> str:
    return hmac.new(key, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()


def erasure_list(con: duckdb.DuckDBPyConnection, key: bytes) -> set[tuple[str, str]]:
    """The erasure list as (kind, digest) pairs; refuses a list keyed with another key."""
    rows = con.execute("select identifier_kind, digest, key_id from meta.erasure_list").fetchall()
    other = {k for _, _, k in rows} - {key_id(key)}
    if other:
        raise ErasureKeyMismatch(
            "the erasure list (meta.erasure_list) was keyed with a different PII key than the one configured now "
            "(SEGFLOW_PII_SALT), so erased people could come back with a re-delivered file: nothing was loaded. "
            "Configure the key the erasures were made with.")
    return {(kind, d) for kind, d, _ in rows}


def _matched(key: bytes, listed: set[tuple[str, str]], kind: str, values: Iterable[str | None]) -> list[str]:
    digest_kind = DIGEST_KINDS[kind]
    out = []
    for value in values:
        norm = normalize(kind, value)
        if norm is not None and (digest_kind, digest(key, digest_kind, norm)) in listed:
            out.append(norm)
    return out


def filter_erased(con: duckdb.DuckDBPyConnection, load_id: str, streams: Iterable[str], rejects: list,
                  key: bytes) -> tuple[dict[str, int], list]:
    """Drop what a load just wrote that belongs to an erased person, inside the caller's transaction: raw rows
    (the same rule as the erasure itself) and rejected lines that name them. Records the counts in
    meta.erased_rows; returns them per stream ('load_rejects' for lines) and the rejects to keep."""
    listed = erasure_list(con, key)
    if not listed:
        return {}, rejects
    erased: dict[str, int] = {}
    for stream in streams:
        count = _drop_rows(con, load_id, stream, key, listed)
        if count:
            erased[stream] = count
    kept = [r for r in rejects if not line_names_erased(r[2], key, listed)]
    if len(kept) < len(rejects):
        erased["load_rejects"] = len(rejects) - len(kept)
    for stream, count in erased.items():
        con.execute("insert into meta.erased_rows values (?, ?, ?, null, ?)", [load_id, stream, count, utc_now()])
    return erased, kept


def _drop_rows(con: duckdb.DuckDBPyConnection, load_id: str, stream: str, key: bytes,
               listed: set[tuple[str, str]]) -> int:
    identity = RAW_IDENTITY.get(stream)
    if not identity:
        return 0
    for kind in ("user", "anon", "email"):
        found: set[str] = set()
        for column in identity.get(kind, ()):
            values = [v for (v,) in con.execute(
                f'select distinct "{column}" from raw.{stream} where _load_id = ? and "{column}" is not null',
                [load_id]).fetchall()]
            found.update(_matched(key, listed, kind, values))
        con.execute(f"create or replace temp table _erased_{kind} (v varchar)")
        if found:
            con.executemany(f"insert into _erased_{kind} values (?)", [(v,) for v in found])
    predicate = raw_row_predicate(stream, "_erased_user", "_erased_anon", "_erased_email")
    count = con.execute(f"select count(*) from raw.{stream} where _load_id = ? and ({predicate})",
                        [load_id]).fetchall()[0][0]
    if count:
        con.execute(f"delete from raw.{stream} where _load_id = ? and ({predicate})", [load_id])
    for kind in ("user", "anon", "email"):
        con.execute(f"drop table _erased_{kind}")
    return count


def line_names_erased(line: str | None, key: bytes, listed: set[tuple[str, str]]) -> bool:
    """Whether a rejected line (unparseable, so no columns) holds a token of an erased person."""
    if not line or not listed:
        return False
    for token in set(_TOKEN_SPLIT.split(line)):
        if not token or not distinctive(token):
            continue
        for kind in ("user_id", "anonymous_id"):
            if (kind, digest(key, kind, token)) in listed:
                return True
        if "@" in token and ("email", digest(key, "email", token.lower())) in listed:
            return True
    return False


def detail_json(data: dict) -> str:
    return json.dumps(data, sort_keys=True, default=str)
