"""Right to erasure: remove a person from the whole warehouse and its files, keep them out, and log it.

``erase()`` (CLI ``segflow erase``, DAG ``segflow_erase``):

1. **Who.** :func:`segflow.jobs.erase_resolve.resolve` collects every id and pseudonym of the person from the
   warehouse (identity graph, staging lineage, raw rows).
2. **Files first.** Exports lose the person's rows (CSV / JSON lines / Parquet); artifacts (dbt target and
   logs, data-quality results) have the identifiers replaced by ``[erased]``, and a binary cache that holds one
   is deleted. Files go first so an interrupted erasure can be run again: the warehouse still knows the person.
3. **Warehouse, one transaction.** The person's raw rows (the one rule in :mod:`segflow.erasure`); rejected
   lines that name them (``meta.load_rejects``); every row of every dbt table and ``ml`` table whose identity
   column (customer_id, user_id, anonymous_id, person_key, email_hash, identifier, ...) or raw lineage is theirs
   - staging, quarantine, identity graph, marts, feature snapshots, segment assignments; any other mention in
   ``meta`` / ``ml`` text is replaced. Aggregates without ids (daily totals, journeys) are recomputed by the next
   build, which is a full refresh after an erasure (see segflow.jobs.build_state).
4. **Kept out.** Keyed hashes of the person's raw identifiers go to ``meta.erasure_list``; the loader drops a
   re-delivered row of theirs and counts it as erased (``meta.erased_rows``, ``marts.fct_load_audit``).
5. **Checked and logged.** Every varchar column of every table and view is searched for any of the person's
   identifiers; ``meta.erasure_log`` records who, when, the request reference, rows per table and file
   (``meta.erasure_log_detail``) and the outcome - never the identifiers (a keyed hash of each customer id).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass, field

import duckdb

from segflow.activation.store import forget as forget_activation
from segflow.ddl import ensure_schema
from segflow.erasure import (
    REDACTED,
    digest,
    distinctive,
    erasure_key,
    key_id,
    redact_files,
    token_regex,
    utc_now,
    who,
)
from segflow.errors import InputError, SegflowError
from segflow.jobs.erase_resolve import Person, fill, person_rows, resolve
from segflow.privacy import install_pseudonymizer
from segflow.settings import Settings, get_settings
from segflow.sources import canonical
from segflow.warehouse import connect, table_exists
from segflow.warehouse_lock import warehouse_step

# identity columns of dbt and ml tables, and which of the person's sets they hold
ID_COLUMNS = {
    "customer_id": ("user",), "user_id": ("user",), "charged_customer_id": ("user",), "previous_id": ("user", "anon"),
    "anonymous_id": ("anon",), "person_key": ("user", "anon_key"), "email_hash": ("hash",),
    "identifier": ("user", "anon", "hash"),
}
_OWN_TABLES = {"erasure_log", "erasure_log_detail", "erasure_list", "erased_rows"}


class ErasureIncomplete(SegflowError):
    """Something still holds an identifier of the person after the erasure (recorded in meta.erasure_log)."""


@dataclass
class ErasureResult:
    erasure_id: str
    status: str  # done | incomplete | dry_run
    subjects: int
    identifiers: int
    tables: dict[str, int] = field(default_factory=dict)
    files: list[dict] = field(default_factory=list)
    landing_files: list[str] = field(default_factory=list)
    remaining: dict[str, int] = field(default_factory=dict)
    unchecked: dict[str, str] = field(default_factory=dict)

    @property
    def rows_erased(self) -> int:
        """Rows deleted (rows whose text only had the identifiers replaced are listed, not counted)."""
        return sum(n for table, n in self.tables.items() if not table.endswith("(redacted)"))

    def as_dict(self) -> dict:
        return {**asdict(self), "rows_erased": self.rows_erased}


def default_requester() -> str:
    return f"{who()} (segflow erase)"


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute("select column_name, data_type from information_schema.columns where table_schema = ? and "
                       "table_name = ? order by ordinal_position", [schema, table]).fetchall()


def _tables(con: duckdb.DuckDBPyConnection, *, views: bool = False) -> list[tuple[str, str]]:
    kinds = "'BASE TABLE', 'VIEW'" if views else "'BASE TABLE'"
    return con.execute(
        "select table_schema, table_name from information_schema.tables where table_catalog = current_database() "
        f"and table_type in ({kinds}) and table_schema not in ('information_schema', 'pg_catalog') order by 1, 2"
    ).fetchall()


def _text_regex(values: set[str]) -> str | None:
    """Token pattern for free text: only identifiers that can be told apart there (redaction.distinctive)."""
    return token_regex(v for v in values if distinctive(v))


def _erase_raw(con: duckdb.DuckDBPyConnection, tables: dict[str, int], per_load: dict[tuple[str, str], int]) -> None:
    con.execute("create or replace temp table _erase_rows (stream varchar, load_id varchar, source_row bigint)")
    for stream in canonical.STREAMS:
        if not table_exists(con, "raw", stream):
            continue
        predicate = person_rows(con, stream)
        con.execute(f"insert into _erase_rows select '{stream}', _load_id, _source_row from raw.{stream} "
                    f"where {predicate}")
        for load_id, count in con.execute("select load_id, count(*) from _erase_rows where stream = ? group by 1",
                                          [stream]).fetchall():
            per_load[(load_id, stream)] = count
        con.execute(f"delete from raw.{stream} where {predicate}")
        tables[f"raw.{stream}"] = sum(c for (_, s), c in per_load.items() if s == stream)


def _erase_rejects(con, regex: str | None, tables: dict, per_load: dict) -> None:
    if regex is None or not table_exists(con, "meta", "load_rejects"):
        return
    rows = con.execute("select load_id, count(*) from meta.load_rejects where regexp_matches(raw_line, ?, 'i') "
                       "group by 1", [regex]).fetchall()
    for load_id, count in rows:
        per_load[(load_id, "load_rejects")] = count
    con.execute("delete from meta.load_rejects where regexp_matches(raw_line, ?, 'i')", [regex])
    tables["meta.load_rejects"] = sum(c for _, c in rows)


def _erase_modelled(con, tables: dict) -> None:
    """Rows of dbt's and the ML jobs' tables whose identity column or raw lineage is the person's."""
    sources = {"user": "_p_user", "anon": "_p_anon", "hash": "_p_hash", "anon_key": "_p_anon_key"}
    for schema, table in _tables(con):
        if schema in ("raw", "meta"):
            continue
        columns = dict(_columns(con, schema, table))
        parts = [f'"{c}" in (select v from {sources[s]})' for c, sets in ID_COLUMNS.items() if c in columns
                 for s in sets]
        if {"_stream", "_load_id", "_source_row"} <= columns.keys():
            parts.append("exists (select 1 from _erase_rows as e where e.stream = t._stream and e.load_id = t._load_id "
                         "and e.source_row = t._source_row)")
        if not parts:
            continue
        where = " or ".join(parts)
        count = con.execute(f'select count(*) from "{schema}"."{table}" as t where {where}').fetchall()[0][0]
        if count:
            con.execute(f'delete from "{schema}"."{table}" as t where {where}')
            tables[f"{schema}.{table}"] = count


def _redact_bookkeeping(con, regex: str | None, tables: dict) -> None:
    """Any other mention in meta / ml text (a data-quality failure message, a build reason) is replaced."""
    if regex is None:
        return
    for schema, table in _tables(con):
        if schema not in ("meta", "ml") or table in _OWN_TABLES or table == "load_rejects":
            continue
        for column, data_type in _columns(con, schema, table):
            if data_type != "VARCHAR":
                continue
            where = f"regexp_matches(\"{column}\", ?, 'i')"
            count = con.execute(f'select count(*) from {schema}."{table}" where {where}', [regex]).fetchall()[0][0]
            for _ in range(count and 3):  # adjacent identifiers share a separator: repeat until none is left
                con.execute(f'update {schema}."{table}" set "{column}" = regexp_replace("{column}", ?, ?, \'gi\') '
                            f"where {where}", [regex, f"\\1{REDACTED}\\3", regex])
            if count:
                key = f"{schema}.{table}.{column} (redacted)"
                tables[key] = tables.get(key, 0) + count


def verify(con: duckdb.DuckDBPyConnection, person: Person, key: bytes | None = None
           ) -> tuple[dict[str, int], dict[str, str]]:
    """Search every varchar column of every table and view for the person's identifiers: identity columns for
    any of them, every other column for those that cannot be a coincidence (exact, trimmed, case-insensitive),
    meta and ml text also for tokens. Returns what remains and what could not be read. With the PII key the
    staging views that pseudonymize are read as dbt reads them (segflow.privacy's session macro)."""
    if key is not None:
        install_pseudonymizer(con, key)
    every = {v.lower() for v in person.all_identifiers()}
    fill(con, "_p_all", every)
    fill(con, "_p_distinctive", {v for v in every if distinctive(v)})
    identity_columns = set(ID_COLUMNS) | {"email"}
    regex = _text_regex(person.raw_identifiers() | person.email_hashes)
    remaining: dict[str, int] = {}
    unchecked: dict[str, str] = {}
    for schema, table in _tables(con, views=True):
        if schema == "meta" and table in _OWN_TABLES:
            continue
        text = [c for c, t in _columns(con, schema, table) if t == "VARCHAR"]
        if not text:
            continue
        checks = [f"count(*) filter (where lower(trim(\"{c}\")) in (select v from "
                  f"{'_p_all' if c in identity_columns else '_p_distinctive'}))" for c in text]
        params: list = []
        if schema in ("meta", "ml") and regex:
            checks += [f"count(*) filter (where regexp_matches(\"{c}\", ?, 'i'))" for c in text]
            params = [regex] * len(text)
        try:
            counts = con.execute(f'select {", ".join(checks)} from "{schema}"."{table}"', params).fetchall()[0]
        except duckdb.Error as exc:
            unchecked[f"{schema}.{table}"] = str(exc).splitlines()[0]
            continue
        for i, count in enumerate(counts):
            if count:
                column = text[i % len(text)]
                remaining[f"{schema}.{table}.{column}"] = remaining.get(f"{schema}.{table}.{column}", 0) + count
    return remaining, unchecked


@warehouse_step("erase", detail=False)
def erase(settings: Settings | None = None, customers: list[str] | tuple = (), emails: list[str] | tuple = (),
          anonymous_ids: list[str] | tuple = (), requested_by: str | None = None, reference: str | None = None,
          dry_run: bool = False) -> ErasureResult:
    """Erase the people named (see the module docstring). ``dry_run`` counts everything and changes nothing.
    Raises :class:`InputError` for an unknown identifier (nothing erased) and :class:`ErasureIncomplete` when
    the final check still finds one (the log says where)."""
    settings = settings or get_settings()
    if not (customers or emails or anonymous_ids):
        raise InputError("name at least one person: --customer ID, --email ADDRESS or --anonymous-id ID")
    if not settings.warehouse_path.exists():
        raise InputError(f"No warehouse at {settings.warehouse_path}: there is nothing to erase.")
    key = erasure_key(settings)
    erasure_id = f"er-{uuid.uuid4().hex[:16]}"
    started = utc_now()
    with connect(settings) as con:
        ensure_schema(con)
        person = resolve(con, customers, emails, anonymous_ids, erased_by=lambda kind, value: _erased_by(
            con, key, kind, value))
        fill(con, "_p_anon_key", {f"anon:{a}" for a in person.anonymous_ids})
        file_ids = person.all_identifiers()
        files = [c.as_dict() for root, rows in ((settings.exports_dir, True), (settings.artifacts_dir, False))
                 for c in redact_files(root, file_ids, rows=rows, apply=not dry_run)]
        files += forget_activation(settings, set(person.customer_ids) | file_ids, apply=not dry_run)
        result = ErasureResult(erasure_id, "dry_run" if dry_run else "done", len(person.customer_ids) or 1,
                               person.size(), files=files)
        per_load: dict[tuple[str, str], int] = {}
        con.execute("begin transaction")
        try:
            _erase_raw(con, result.tables, per_load)
            result.landing_files = sorted(v for (v,) in con.execute(
                "select distinct m.file_path from _erase_rows as e inner join meta.load_manifest as m "
                "on e.load_id = m.load_id").fetchall())
            _erase_rejects(con, _text_regex(person.raw_identifiers()), result.tables, per_load)
            _erase_modelled(con, result.tables)
            _redact_bookkeeping(con, _text_regex(person.raw_identifiers() | person.email_hashes), result.tables)
            result.tables = {k: v for k, v in result.tables.items() if v}
            result.remaining, result.unchecked = verify(con, person, key)
            if result.remaining and not dry_run:
                result.status = "incomplete"
            _record(con, result, person, key, per_load, requested_by or default_requester(), reference, started)
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("rollback" if dry_run else "commit")
    if result.status == "incomplete":
        where = ", ".join(f"{k} ({v})" for k, v in sorted(result.remaining.items()))
        raise ErasureIncomplete(f"erasure {erasure_id}: identifiers of the person remain in {where}. Everything "
                                "else was erased; meta.erasure_log records it. Please report this as a bug.")
    return result


def _erased_by(con: duckdb.DuckDBPyConnection, key: bytes, kind: str, value: str) -> str | None:
    digest_kind = {"user": "user_id", "anon": "anonymous_id", "email": "email"}[kind]
    row = con.execute("select min(erasure_id) from meta.erasure_list where identifier_kind = ? and digest = ?",
                      [digest_kind, digest(key, digest_kind, value)]).fetchall()
    return row[0][0] if row else None


def _record(con, result: ErasureResult, person: Person, key: bytes, per_load: dict, requested_by: str,
            reference: str | None, started) -> None:
    now = utc_now()

    def insert(sql: str, rows: list) -> None:
        if rows:  # DuckDB's executemany refuses an empty list
            con.executemany(sql, rows)

    kinds = {"user_id": {u for u in person.user_ids if not u.startswith("email:")},
             "anonymous_id": person.anonymous_ids, "email": person.emails}
    insert("insert into meta.erasure_list values (?, ?, ?, ?, ?)", [
        (digest(key, kind, value), kind, key_id(key), result.erasure_id, now)
        for kind, values in kinds.items() for value in sorted(values)])
    insert("insert into meta.erased_rows values (?, ?, ?, ?, ?)", [
        (load_id, stream, count, result.erasure_id, now) for (load_id, stream), count in sorted(per_load.items())])
    insert("insert into meta.erasure_log_detail values (?, ?, ?, ?)", [
        *((result.erasure_id, "table", table, count) for table, count in sorted(result.tables.items())),
        *((result.erasure_id, "file", f["path"], f["count"]) for f in result.files)])
    detail = None
    if result.remaining or result.unchecked:
        detail = re.sub(r"\s+", " ", f"remaining: {result.remaining}; unchecked: {sorted(result.unchecked)}")
    con.execute("insert into meta.erasure_log values (?, 'erase', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        result.erasure_id, requested_by, reference, result.subjects,
        ",".join(sorted(digest(key, "subject", c) for c in person.customer_ids)) or None, result.identifiers,
        result.rows_erased, len(result.files), result.status, detail, started, now])
