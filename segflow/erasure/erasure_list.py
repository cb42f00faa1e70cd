"""The erasure list: keyed hashes of erased identifiers, and the loader's filter that keeps them out."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

import duckdb

from segflow.erasure.rules import (
    DIGEST_KINDS,
    RAW_IDENTITY,
    TOKEN_SPLIT,
    distinctive,
    normalize,
    raw_row_predicate,
    utc_now,
)
from segflow.errors import InputError
from segflow.settings import Settings


class ErasureKeyMismatch(InputError):
    """The erasure list was keyed with another PII key than the one configured now."""


def erasure_key(settings: Settings) -> bytes:
    """The secret the erasure list is keyed with: the deployment's PII key (segflow.privacy; never stored in the
    warehouse). Refused like everywhere else when it is the public demo key outside a demo home."""
    from segflow.privacy import resolve_pii_key

    return resolve_pii_key(settings).secret


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
            "(SEGFLOW_PII_KEY / SEGFLOW_PII_KEY_FILE), so erased people could come back with a re-delivered file: "
            "nothing was loaded. Configure the key the erasures were made with.")
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
                  settings: Settings) -> tuple[dict[str, int], list]:
    """Drop what a load just wrote that belongs to an erased person, inside the caller's transaction: raw rows
    (the same rule as the erasure itself) and rejected lines (tuples whose last item is the line's text) that
    name them. Records the counts in meta.erased_rows; returns them per stream ('load_rejects' for lines) and
    the rejects to keep. The key is resolved only when something was erased before."""
    if not con.execute("select count(*) from meta.erasure_list").fetchall()[0][0]:
        return {}, rejects
    key = erasure_key(settings)
    listed = erasure_list(con, key)
    erased: dict[str, int] = {}
    for stream in streams:
        count = _drop_rows(con, load_id, stream, key, listed)
        if count:
            erased[stream] = count
    kept = [r for r in rejects if not line_names_erased(r[-1], key, listed)]
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
    for token in set(TOKEN_SPLIT.split(line)):
        if not token or not distinctive(token):
            continue
        for kind in ("user_id", "anonymous_id"):
            if (kind, digest(key, kind, token)) in listed:
                return True
        if "@" in token and ("email", digest(key, "email", token.lower())) in listed:
            return True
    return False
