"""The warehouse's own tables (raw landing tables and load bookkeeping): the one place their DDL lives.

dbt owns staging, intermediate and marts; jobs own ``ml.*`` and ``meta.dq_results`` next to the code that
writes them. Every raw table has every canonical column of its stream (as text), so a source that lacks
optional columns still builds.
"""

from __future__ import annotations

import duckdb

from segflow.sources import canonical

META_COLUMNS = ("_load_id", "_source_file", "_source_row")

_META_DDL = """
create schema if not exists raw;
create schema if not exists meta;
create table if not exists meta.load_manifest (
    load_id varchar primary key,
    load_seq bigint not null,
    source varchar not null,
    stream varchar not null,
    file_name varchar not null,
    file_path varchar not null,
    checksum varchar not null unique,
    file_format varchar not null,
    mapping_name varchar,
    mapping_checksum varchar,
    partition_date date,
    rows_in_file bigint not null,
    rows_loaded bigint not null,
    rows_rejected bigint not null,
    columns_dropped varchar,
    loaded_at timestamp not null
);
create table if not exists meta.load_outputs (
    load_id varchar not null,
    stream varchar not null,
    rows_written bigint not null
);
create table if not exists meta.load_rejects (
    load_id varchar not null,
    source varchar not null,
    file_name varchar not null,
    line_number bigint,
    reason varchar not null,
    raw_line varchar
);
create table if not exists meta.file_index (
    file_path varchar not null,
    size_bytes bigint not null,
    mtime_ns bigint not null,
    checksum varchar not null
);
create table if not exists meta.build_state (
    build_seq bigint primary key,
    as_of timestamp,
    mode varchar not null,
    reason varchar not null,
    max_load_seq bigint not null,
    loads_count bigint not null,
    fingerprint varchar not null,
    status varchar not null,
    started_at timestamp not null,
    finished_at timestamp
);
create table if not exists meta.file_rejects (
    file_name varchar,
    source varchar,
    reason varchar,
    seen_at timestamp
);
"""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def raw_table_ddl(stream: str) -> str:
    cols = ", ".join(f"{_quote(c)} varchar" for c in canonical.columns(stream))
    return (f"create table if not exists raw.{stream} (_load_id varchar not null, _source_file varchar not null, "
            f"_source_row bigint not null, {cols})")


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and meta tables (idempotent)."""
    con.execute(_META_DDL)
    for stream in canonical.STREAMS:
        con.execute(raw_table_ddl(stream))
