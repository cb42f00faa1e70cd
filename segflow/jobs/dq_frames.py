"""The rows the data-quality gate hands to GX: one bounded frame per suite.

Each suite reads a relation (a table, or a query over raw and meta tables for the profile and load suites)
registered as a temporary view on the gate's read-only connection. A relation with at most
``sample_rows`` rows is read whole. A larger one is read as a repeatable reservoir sample plus every row that
decides a strict check: the rows holding each range-checked column's minimum and maximum, one row per value
of a set-checked column, and up to ten rows breaking each not-null rule and each row rule of the suite
(``FLAGGED``, e.g. a session that ends before it starts). Range, set, not-null and row-rule checks are
therefore exact on the whole relation; ``mostly`` shares and standard deviations are estimated from the
sample. Memory stays bounded whatever the history.

Columns a suite lists in ``MASKED`` (customer and session ids) reach GX as per-run tokens (a salted hash
whose salt is never stored): uniqueness and null checks work the same, and a failed check's examples in
results and Data Docs hold no identifier that outlives the run.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FrameScope:
    """What a run's relations depend on: its as-of bound and the loads it covers (load_seq > ``since_load_seq``)."""

    as_of: datetime
    since_load_seq: int = 0
    salt: str = ""


def _ts(value: datetime) -> str:
    return f"timestamp '{value:%Y-%m-%d %H:%M:%S.%f}'"


def _relation_sql(name: str, module, scope: FrameScope) -> str:
    """The SQL of a suite's relation (literals only from the run's own values, never from data)."""
    if name == "raw_loads":
        return ("select load_id, load_seq, source, stream, file_name, rows_in_file, rows_loaded, rows_rejected, "
                "rows_in_file - rows_loaded - rows_rejected as unaccounted_rows from meta.load_manifest "
                f"where load_seq > {int(scope.since_load_seq)}")
    if name == "customer_profiles":
        age = module.AGE_PATTERN.replace("'", "''")
        # profile versions delivered before the as-of: landing files dated before it, and files loaded by path
        return f"""
            select s._load_id || ':' || s._source_row as profile_version, s.customer_id,
                regexp_replace(regexp_replace(r.email, '[A-Za-z]', 'a', 'g'), '[0-9]', '9', 'g') as email_shape,
                r.age_band,
                case when regexp_full_match(r.age_band, '{age}')
                     then try_cast(regexp_extract(r.age_band, '^\\s*([0-9]+)', 1) as integer) end as age_min,
                case when regexp_full_match(r.age_band, '{age}') and not contains(r.age_band, '+')
                     then try_cast(coalesce(nullif(regexp_extract(r.age_band, '-\\s*([0-9]+)\\s*$', 1), ''),
                                            regexp_extract(r.age_band, '^\\s*([0-9]+)', 1)) as integer)
                end as age_max,
                s.signup_at, s.updated_at
            from staging.stg_raw__customers s
            join raw.customers r on r._load_id = s._load_id and r._source_row = s._source_row
            join meta.load_manifest m on m.load_id = s._load_id
            where m.partition_date is null or m.partition_date < {_ts(scope.as_of)}"""
    return f"select * from {module.TABLE}"


def _projection(module, salt: str) -> str:
    columns = ", ".join(module.COLUMNS) if module.COLUMNS else "*"
    if not module.MASKED:
        return columns
    if module.COLUMNS:
        return ", ".join(_masked(c, salt) if c in module.MASKED else c for c in module.COLUMNS)
    return f"* replace ({', '.join(_masked(c, salt) for c in module.MASKED)})"


def _masked(column: str, salt: str) -> str:
    return f"case when {column} is not null then 't' || md5('{salt}' || {column}) end as {column}"


def read_frame(con, module, sample_rows: int, seed: int, scope: FrameScope | None = None
               ) -> tuple[pd.DataFrame, int]:
    """The rows GX validates for ``module``, and the relation's row count (see the module docstring)."""
    name = module.NAME
    scope = scope or FrameScope(as_of=datetime.max, salt=secrets.token_hex(16))
    view = f"gate_{name}"
    con.execute(f"create or replace temp view {view} as {_relation_sql(name, module, scope)}")
    columns = _projection(module, scope.salt or secrets.token_hex(16))
    key = module.KEY
    total = con.execute(f"select count(*) from {view}").fetchall()[0][0]
    if total <= sample_rows:
        return con.execute(f"select {columns} from {view}").df(), total
    keys = [f"select {key} from (select {key} from {view} using sample reservoir({int(sample_rows)} rows) "
            f"repeatable ({int(seed)})) as sample"]
    for column in module.RANGED:
        keys.append(f"select arg_min({key}, {column}) from {view}")
        keys.append(f"select arg_max({key}, {column}) from {view}")
    for column in module.IN_SET:
        keys.append(f"select min({key}) from {view} group by {column}")
    # the deciding keys once, in a temporary table (the connection is read-only; temp objects live in memory)
    con.execute(f"create or replace temp table {view}_keys as {' union '.join(keys)}")
    parts = [f"select {columns} from {view} where {key} in (select * from {view}_keys)"]
    for rule in [f"{column} is null" for column in module.NOT_NULL] + list(module.FLAGGED):
        parts.append(f"(select {columns} from {view} where ({rule}) "
                     f"and coalesce({key} not in (select * from {view}_keys where {key} is not null), true) "
                     "limit 10)")
    frame = con.execute(" union all ".join(parts)).df()
    con.execute(f"drop table {view}_keys")
    return frame, total
